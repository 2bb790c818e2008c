package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable the config reads.
const EnvPrefix = "ENTRYPOINT_"

// option is one setting with its flag, env twin and YAML key. The table
// drives flag parsing, env lookup, -h and REFERENCE.md, so the three
// spellings can never drift apart.
type option struct {
	name string // flag name; the env twin is ENTRYPOINT_ + NAME
	yaml string // key path in the file; per-app keys are under apps[0]
	arg  string // placeholder in -h
	def  string // default, for -h and the reference
	help string
	// list: the flag may repeat and the env value is comma-separated; either
	// replaces the whole list from a lower layer.
	list    bool
	boolean bool
	app     bool // sets a field of the first app
	envOnly bool // a secret: never on the command line, where ps shows it
	// set stores the value (the last one for scalars, every item for lists).
	set func(c *Config, a *App, v []string) error
}

func (o *option) env() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_"))
}

// path is the field path used in messages, "apps[0].drainTimeout".
func (o *option) path() string {
	if o.app {
		return "apps[0]." + o.yaml
	}
	return o.yaml
}

func last(v []string) string { return v[len(v)-1] }

func setString(f func(c *Config, a *App) *string) func(*Config, *App, []string) error {
	return func(c *Config, a *App, v []string) error {
		*f(c, a) = strings.TrimSpace(last(v))
		return nil
	}
}

func setDuration(f func(c *Config, a *App) *Duration) func(*Config, *App, []string) error {
	return func(c *Config, a *App, v []string) error {
		return f(c, a).Decode(last(v))
	}
}

// setCommand splits a command given as one string with shell-style
// quoting (splitCommand); the file takes an argv list instead.
func setCommand(f func(c *Config, a *App) *[]string) func(*Config, *App, []string) error {
	return func(c *Config, a *App, v []string) error {
		argv, err := splitCommand(last(v))
		if err != nil {
			return fmt.Errorf("%w: %q; quote as in a shell, e.g. 'nginx -t -g \"daemon off;\"', or give an argv list in the file", err, last(v))
		}
		*f(c, a) = argv
		return nil
	}
}

func setList(f func(c *Config, a *App) *[]string) func(*Config, *App, []string) error {
	return func(c *Config, a *App, v []string) error {
		*f(c, a) = append([]string(nil), v...)
		return nil
	}
}

// configOption is handled before the others: it picks the file they
// override.
const configOption = "config"

// Defaults, named so code and docs agree.
const (
	DefaultFile         = "/etc/entrypoint/config.yaml"
	DefaultAppName      = "app"
	DefaultHealthListen = ":9090"
	// DefaultControlSocket is abstract and named after the container:
	// NamespaceToken stands for this process's PID and mount namespace
	// inodes, which the init and a CLI run in its container (kubectl
	// exec) share, and which differ between the containers of a pod
	// although they share one network namespace (the abstract names).
	DefaultControlSocket = "@entrypoint-control-" + NamespaceToken
	// NamespaceToken in a control socket name is replaced by the PID and
	// mount namespace inodes of the process using it ("4026532412-4026532410").
	NamespaceToken = "{ns}"
	// Off disables the health listener or the control socket.
	Off = "off"
	// DefaultReadinessTimeout is how long a new generation has to pass its
	// readiness gate (readiness.timeout unset).
	DefaultReadinessTimeout = 60 * time.Second
	// DefaultReadinessRetry is how often the exec, http and tcp gates try
	// again when readiness.delay is unset. graceful.NewGate, the
	// defaults Load fills in, -h and REFERENCE.md all read it.
	DefaultReadinessRetry = 250 * time.Millisecond

	defaultDrainTimeout    = 30 * time.Second
	defaultRestartBackoff  = time.Second
	defaultRestartMax      = 30 * time.Second
	defaultCrashLoop       = 5
	defaultStableAfter     = 10 * time.Second
	defaultWatchDebounce   = time.Second
	defaultValidateTimeout = 30 * time.Second
)

func options() []option {
	return []option{
		{name: configOption, yaml: "", arg: "PATH", def: DefaultFile + " if it exists",
			help: "YAML config file; flags and env override it"},
		{name: "log-format", yaml: "logFormat", arg: "text|json", def: "text",
			help: "log format of the init's own logs",
			set:  setString(func(c *Config, _ *App) *string { return &c.LogFormat })},
		{name: "log-level", yaml: "logLevel", arg: "LEVEL", def: "info",
			help: "debug, info, warn or error",
			set:  setString(func(c *Config, _ *App) *string { return &c.LogLevel })},
		{name: "signal-target", yaml: "signalTarget", arg: "group|child", def: "group",
			help: "forward signals to the app's process group, or only to its main process",
			set:  setString(func(c *Config, _ *App) *string { return &c.SignalTarget })},
		{name: "rewrite", yaml: "rewrite", arg: "FROM:TO", list: true, def: "none",
			help: `deliver signal TO to the apps when FROM arrives, like "TERM:QUIT"; YAML: {SIGTERM: SIGQUIT}`,
			set:  setRewrite},
		{name: "success-exit-codes", yaml: "successExitCodes", arg: "CODES", list: true, def: "none",
			help: `app exit codes the init reports as 0, like "143" (repeat or comma-separate)`,
			set:  setExitCodes},
		{name: "pre-stop-delay", yaml: "preStopDelay", arg: "DURATION", def: "0s",
			help: "on shutdown, keep serving this long with readiness already false",
			set:  setDuration(func(c *Config, _ *App) *Duration { return &c.PreStopDelay })},
		{name: "health-listen", yaml: "health.listen", arg: "ADDR", def: DefaultHealthListen,
			help: `address of /livez /readyz /healthz /metrics and /debug/admin; "off" disables`,
			set:  setString(func(c *Config, _ *App) *string { return &c.Health.Listen })},
		{name: "health-tls-cert", yaml: "health.tlsCert", arg: "FILE", def: "none",
			help: "serve the health listener over HTTPS with this certificate (needs --health-tls-key)",
			set:  setString(func(c *Config, _ *App) *string { return &c.Health.TLSCert })},
		{name: "health-tls-key", yaml: "health.tlsKey", arg: "FILE", def: "none",
			help: "private key for --health-tls-cert",
			set:  setString(func(c *Config, _ *App) *string { return &c.Health.TLSKey })},
		{name: "admin", yaml: "health.admin", boolean: true, def: "false",
			help: "enable /debug/admin (reload, restart, shutdown); needs a token unless the health listener is loopback",
			set: func(c *Config, _ *App, v []string) error {
				b, err := strconv.ParseBool(strings.TrimSpace(last(v)))
				if err != nil {
					return fmt.Errorf("%q is not a boolean; write true or false", last(v))
				}
				c.Health.Admin = b
				return nil
			}},
		{name: "admin-token-file", yaml: "health.adminTokenFile", arg: "FILE", def: "none",
			help: "file holding the bearer token the admin routes require",
			set:  setString(func(c *Config, _ *App) *string { return &c.Health.AdminTokenFile })},
		{name: "admin-token", yaml: "", envOnly: true, def: "none",
			help: "the admin bearer token itself (env only, so it never shows in ps or a ConfigMap)",
			set:  setString(func(c *Config, _ *App) *string { return &c.Health.AdminToken })},
		{name: "control-socket", yaml: "controlSocket", arg: "PATH", def: DefaultControlSocket,
			help: `unix socket for entrypoint reload|restart|shutdown|status; "@name" is abstract; "{ns}" stands for this container's PID and mount namespaces; "off" disables`,
			set:  setString(func(c *Config, _ *App) *string { return &c.ControlSocket })},
		{name: "control-allow-other-pidns", yaml: "controlAllowOtherPidns", boolean: true, def: "false",
			help: "serve control socket callers from another PID namespace (another container, the host); by default they are refused",
			set: func(c *Config, _ *App, v []string) error {
				b, err := strconv.ParseBool(strings.TrimSpace(last(v)))
				if err != nil {
					return fmt.Errorf("%q is not a boolean; write true or false", last(v))
				}
				c.ControlAllowOtherPidns = b
				return nil
			}},

		{name: "name", yaml: "name", arg: "NAME", app: true, def: DefaultAppName,
			help: "name of the app in logs, metrics and commands: lowercase letters, digits and '-'",
			set:  setString(func(_ *Config, a *App) *string { return &a.Name })},
		{name: "listen", yaml: "listen", arg: "[NAME=]ADDR", list: true, app: true, def: "none",
			help: `socket the init binds and passes as fd 3..: ":8080", "https=:8443", "unix:/run/app.sock"`,
			set: func(_ *Config, a *App, v []string) error {
				a.Listen = nil
				for _, s := range v {
					a.Listen = append(a.Listen, splitListen(s))
				}
				return nil
			}},
		{name: "stop-signal", yaml: "stopSignal", arg: "SIGNAL", app: true, def: "SIGTERM; for nginx SIGQUIT, haproxy SIGUSR1, lighttpd SIGINT, apache2/httpd SIGWINCH",
			help: "signal that asks a generation to stop (swap, restart, shutdown)",
			set: func(_ *Config, a *App, v []string) error {
				return a.StopSignal.Decode(last(v))
			}},
		{name: "drain-timeout", yaml: "drainTimeout", arg: "DURATION", app: true, def: defaultDrainTimeout.String(),
			help: "how long a stopped generation may take before its process group is killed",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.DrainTimeout })},
		{name: "restart", yaml: "restart.policy", arg: "exit|restart", app: true, def: "exit",
			help: "when the app exits on its own: end the container with its code, or restart it with backoff",
			set:  setString(func(_ *Config, a *App) *string { return &a.Restart.Policy })},
		{name: "restart-backoff", yaml: "restart.backoff", arg: "DURATION", app: true, def: defaultRestartBackoff.String(),
			help: "first restart delay; doubles after each quick exit",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.Restart.Backoff })},
		{name: "restart-max-backoff", yaml: "restart.maxBackoff", arg: "DURATION", app: true, def: defaultRestartMax.String(),
			help: "cap of the restart delay",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.Restart.MaxBackoff })},
		{name: "readiness", yaml: "readiness.type", arg: "TYPE", app: true, def: "auto with listeners, else none",
			help: "gate a new generation must pass: auto (READY=1 or listen() on every owned socket), notify, listen, exec, http, tcp, delay or none",
			set:  setString(func(_ *Config, a *App) *string { return &a.Readiness.Type })},
		{name: "takeover", yaml: "takeover", arg: "auto|on|off", app: true, def: "auto",
			help: "answer the app's own bind() of a --listen address with the owned socket (seccomp; Linux 5.9+, sets no_new_privs); on: fail at start if unavailable",
			set:  setString(func(_ *Config, a *App) *string { return &a.Takeover })},
		{name: "readiness-command", yaml: "readiness.command", arg: "CMD", app: true, def: "none",
			help: "exec gate's command, split into words like a shell does ('...', \"...\", \\); it gets ENTRYPOINT_APP_PID, the new generation's pid",
			set:  setCommand(func(_ *Config, a *App) *[]string { return &a.Readiness.Command })},
		{name: "readiness-address", yaml: "readiness.address", arg: "ADDR", app: true, def: "none",
			help: "http gate's URL or tcp gate's host:port; one only the new generation serves",
			set:  setString(func(_ *Config, a *App) *string { return &a.Readiness.Address })},
		{name: "readiness-timeout", yaml: "readiness.timeout", arg: "DURATION", app: true, def: DefaultReadinessTimeout.String(),
			help: "a generation not ready by then has failed",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.Readiness.Timeout })},
		{name: "readiness-delay", yaml: "readiness.delay", arg: "DURATION", app: true, def: DefaultReadinessRetry.String() + " for exec/http/tcp",
			help: "delay gate's wait; retry interval of exec, http and tcp",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.Readiness.Delay })},
		{name: "watch", yaml: "watch", arg: "PATH", list: true, app: true, def: "none",
			help: "file or directory (ConfigMap volume) whose content change triggers --on-change",
			set:  setList(func(_ *Config, a *App) *[]string { return &a.Watch })},
		{name: "watch-debounce", yaml: "watchDebounce", arg: "DURATION", app: true, def: defaultWatchDebounce.String(),
			help: "collapse a burst of changes into one",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.WatchDebounce })},
		{name: "validate", yaml: "validate", arg: "CMD", app: true, def: "none",
			help: "command run after a change and before --on-change, split into words like a shell does ('...', \"...\", \\); non-zero exit cancels",
			set:  setCommand(func(_ *Config, a *App) *[]string { return &a.Validate })},
		{name: "validate-timeout", yaml: "validateTimeout", arg: "DURATION", app: true, def: defaultValidateTimeout.String(),
			help: "a validate command still running by then is killed and the change rejected; reloads wait meanwhile",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.ValidateTimeout })},
		{name: "on-change", yaml: "onChange", arg: "ACTION", app: true, def: "swap",
			help: `what a watched change does: "swap", "restart" or "signal:SIGHUP"`,
			set:  setString(func(_ *Config, a *App) *string { return &a.OnChange })},
		{name: "watchdog", yaml: "watchdog", arg: "DURATION", app: true, def: "off",
			help: "passed as WATCHDOG_USEC; a generation silent for that long fails liveness",
			set:  setDuration(func(_ *Config, a *App) *Duration { return &a.Watchdog })},
	}
}

func setRewrite(c *Config, _ *App, v []string) error {
	m := map[Signal]Signal{}
	var errs []string
	for _, s := range v {
		from, to, ok := strings.Cut(s, ":")
		if !ok {
			errs = append(errs, fmt.Sprintf("%q is not a rewrite; write it like \"TERM:QUIT\"", s))
			continue
		}
		f, err1 := ParseSignal(from)
		t, err2 := ParseSignal(to)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Sprintf("%q is not a rewrite of one signal to another; write it like \"TERM:QUIT\" or \"15:3\"", s))
			continue
		}
		m[Signal(f)] = Signal(t)
	}
	c.Rewrite = m
	return joinMsgs(errs)
}

func setExitCodes(c *Config, _ *App, v []string) error {
	c.SuccessExitCodes = nil
	var errs []string
	for _, s := range v {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 255 {
			errs = append(errs, fmt.Sprintf("%q is not an exit code; write numbers 0-255 like \"0,143\"", s))
			continue
		}
		c.SuccessExitCodes = append(c.SuccessExitCodes, n)
	}
	return joinMsgs(errs)
}

func joinMsgs(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// splitList splits a list value on commas, dropping empty items, so
// "TERM:QUIT, INT:QUIT" and a trailing comma from templating both work.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
