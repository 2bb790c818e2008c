package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/kelseyhightower/envconfig"
	"sigs.k8s.io/yaml"
)

// Duration and Signal read env values the same way under envconfig as here.
var (
	_ envconfig.Decoder = (*Duration)(nil)
	_ envconfig.Decoder = (*Signal)(nil)
)

// YAML writes the effective config (defaults filled in) in the file format,
// for `entrypoint validate`; Load accepts it back unchanged. The admin token
// is never written.
func (c *Config) YAML() ([]byte, error) {
	out := *c
	if out.ControlSocket == "" {
		out.ControlSocket = Off
	}
	j, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	// yaml.Marshal goes through JSON and parses that JSON as YAML, whose
	// reader refuses DEL, the C1 controls and U+FFFE/U+FFFF even inside a
	// quoted string, while encoding/json leaves them raw. A flag or env
	// value may hold any of them; escaped, the YAML writer double-quotes
	// and escapes them again, and Load reads the same string back.
	b, err := yaml.JSONToYAML(escapeYAMLUnreadable(j))
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b, nil
}

// escapeYAMLUnreadable rewrites every rune of JSON text that YAML 1.1's
// reader does not accept as a \uXXXX escape. JSON's own syntax is ASCII,
// so such runes only occur inside strings, where the escape means the same.
func escapeYAMLUnreadable(j []byte) []byte {
	var b strings.Builder
	for _, r := range string(j) {
		if yamlReadable(r) {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return []byte(b.String())
}

// yamlReadable is the YAML 1.1 printable set that go-yaml's reader checks.
func yamlReadable(r rune) bool {
	switch {
	case r == 0x09, r == 0x0A, r == 0x0D:
	case r >= 0x20 && r <= 0x7E:
	case r == 0x85:
	case r >= 0xA0 && r <= 0xD7FF:
	case r >= 0xE000 && r <= 0xFFFD:
	case r >= 0x10000 && r <= 0x10FFFF:
	default:
		return false
	}
	return true
}

// Usage is the -h text: every flag with its env twin and default.
func Usage() string {
	var b strings.Builder
	b.WriteString(`Usage: entrypoint [flags] [--] command [args...]

Runs command as a supervised app: reaps zombies, forwards signals, holds its
listening sockets and hot-swaps it on SIGUSR1. Flags override ENTRYPOINT_*
variables, which override the config file, which overrides defaults.

Flags:
`)
	for _, o := range options() {
		if o.envOnly {
			fmt.Fprintf(&b, "  (env only) %s\n", o.env())
		} else {
			arg := ""
			if o.arg != "" {
				arg = " " + o.arg
			}
			fmt.Fprintf(&b, "  --%s%s\n", o.name, arg)
		}
		fmt.Fprintf(&b, "        %s\n", o.help)
		extra := []string{}
		if !o.envOnly {
			extra = append(extra, "env "+o.env())
		}
		if o.list {
			extra = append(extra, "repeatable, or comma-separated")
		}
		extra = append(extra, "default "+o.def)
		fmt.Fprintf(&b, "        (%s)\n", strings.Join(extra, "; "))
	}
	return b.String()
}

// envRows renders one line per ENTRYPOINT_* variable with
// envconfig.Usaget over the env layer's specification (envSpec): row gets
// each variable's option and the name envconfig reads it under.
func envRows(opts []option, row func(o *option, key string) string) (string, error) {
	byName := map[string]*option{}
	for i := range opts {
		byName[opts[i].name] = &opts[i]
	}
	tmpl, err := template.New("env").Funcs(template.FuncMap{
		"row": func(name, key string) (string, error) {
			o, ok := byName[name]
			if !ok {
				return "", fmt.Errorf("env spec field %s: no option %q", key, name)
			}
			return row(o, key), nil
		},
	}).Parse(`{{range .}}{{row (.Tags.Get "option") .Key}}{{end}}`)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := envconfig.Usaget(envconfigPrefix, envSpec(opts).Interface(), &b, tmpl); err != nil {
		return "", fmt.Errorf("env usage: %w", err)
	}
	return b.String(), nil
}

// reference renders REFERENCE.md from the option table; the rows come from
// envconfig's usage of the env specification, so the Env column is the
// name envconfig.Process reads.
func reference() (string, error) {
	var b strings.Builder
	b.WriteString(`<!-- Generated from config/options.go by "go test ./config -run TestReference -update"; do not edit. -->
| Flag | Env | YAML key | Default | Meaning |
| --- | --- | --- | --- | --- |
`)
	rows, err := envRows(options(), func(o *option, env string) string {
		flag := "—"
		if !o.envOnly {
			flag = "`--" + o.name
			if o.arg != "" {
				flag += " " + o.arg
			}
			flag += "`"
			if o.list {
				flag += " (repeatable)"
			}
		}
		yamlKey := "—"
		if o.yaml != "" {
			yamlKey = "`" + o.yaml + "`"
			if o.app {
				yamlKey = "`apps[]." + o.yaml + "`"
			}
		}
		help := o.help
		if o.list {
			help += "; env: comma-separated"
		}
		return fmt.Sprintf("| %s | `%s` | %s | %s | %s |\n", mdEscape(flag), env, yamlKey, mdEscape(o.def), mdEscape(help))
	})
	if err != nil {
		return "", err
	}
	b.WriteString(rows)
	b.WriteString(`
Precedence: flags, then env, then the file, then defaults. An empty env var counts as unset; a zero
duration counts as unset and gets the default. List flags replace the whole list of a lower layer.

The command after ` + "`--`" + ` and the per-app rows (` + "`apps[].`" + `) describe the first app: with no ` + "`apps:`" + ` in the
file they create it, otherwise the command replaces ` + "`apps[0].command`" + ` and the flags override ` + "`apps[0]`" + `'s
fields. Further apps are configured in the file only; every app needs a unique ` + "`name`" + ` (lowercase letters,
digits and ` + "`-`" + `, like ` + "`web`" + `; the first defaults to ` + "`app`" + `) and a ` + "`command`" + `.

File-only keys: ` + "`apps[].command`" + ` (argv list), ` + "`apps[].env`" + `, ` + "`apps[].dir`" + `, ` + "`apps[].restart.crashLoop`" + ` (default 5),
` + "`apps[].restart.stableAfter`" + ` (default 10s), ` + "`apps[].listen[].mode`" + ` (octal, unix only), ` + "`.owner`" + ` (numeric
` + "`uid[:gid]`" + `, unix only), ` + "`.backlog`" + ` (default SOMAXCONN). In the file a listener may be written as the flag's
string (` + "`\"https=:8443\"`" + `) or as a mapping.

Listener addresses: ` + "`:8080`, `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock`, `unix:@abstract`" + `. A listener
without a ` + "`name=`" + ` is named after its address (` + "`tcp-8080`, `unix-app.sock`" + `; ` + "`-2`" + `, ` + "`-3`" + ` on a clash); names go
into ` + "`LISTEN_FDNAMES`" + `. No address may be bound twice, across apps and the health listener.

Readiness type, when not set: ` + "`exec`" + ` if a readiness command is given, ` + "`http`" + ` for an address with a scheme,
` + "`tcp`" + ` for another address, else ` + "`auto`" + ` when the app has listeners and ` + "`none`" + ` without.

Durations are written like "30s" or "1m30s" (a bare number in the file is seconds); signals like "SIGTERM", "TERM",
"15" or "SIGRTMIN+3". The file is decoded strictly: an unknown key is an error naming the key and the file.
`)
	return b.String(), nil
}

func mdEscape(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
