package config

import (
	"fmt"
	"strings"

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
	b, err := yaml.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b, nil
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

// reference renders REFERENCE.md from the option table.
func reference() string {
	var b strings.Builder
	b.WriteString(`<!-- Generated from config/options.go by "go test ./config -run TestReference -update"; do not edit. -->
| Flag | Env | YAML key | Default | Meaning |
| --- | --- | --- | --- | --- |
`)
	for _, o := range options() {
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
		key := "—"
		if o.yaml != "" {
			key = "`" + o.yaml + "`"
			if o.app {
				key = "`apps[]." + o.yaml + "`"
			}
		}
		help := o.help
		if o.list {
			help += "; env: comma-separated"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", mdEscape(flag), o.env(), key, mdEscape(o.def), mdEscape(help))
	}
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
	return b.String()
}

func mdEscape(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
