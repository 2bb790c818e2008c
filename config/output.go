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
				key = "`apps[].` " + key
			}
		}
		help := o.help
		if o.list {
			help += "; env: comma-separated"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", mdEscape(flag), o.env(), key, mdEscape(o.def), mdEscape(help))
	}
	b.WriteString(`
Per-app rows (` + "`apps[].`" + `) set the first app; other apps are configured in the file only.
File-only keys: ` + "`apps[].command`, `apps[].env`, `apps[].dir`, `apps[].restart.crashLoop` (default 5), `apps[].restart.stableAfter` (default 10s), `apps[].listen[].mode`, `.owner`, `.backlog`" + `.
Durations are written like "30s" or "1m30s" (a bare number in the file is seconds); signals like "SIGTERM", "TERM" or "15".
`)
	return b.String()
}

func mdEscape(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
