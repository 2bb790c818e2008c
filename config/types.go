package config

import (
	"time"
)

// Config is the whole, validated configuration of one entrypoint process.
// YAML keys are the json tags (sigs.k8s.io/yaml); env vars are ENTRYPOINT_
// plus the envconfig name; flags are listed in the README.
type Config struct {
	// LogFormat is "text" (default) or "json".
	LogFormat string `json:"logFormat,omitempty"`
	// LogLevel is "debug", "info" (default), "warn" or "error".
	LogLevel string `json:"logLevel,omitempty"`
	// SignalTarget is "group" (default: the app's process group) or "child".
	SignalTarget string `json:"signalTarget,omitempty"`
	// Rewrite maps a received signal to the one the apps get instead
	// (dumb-init's --rewrite): {"SIGTERM": "SIGQUIT"}.
	Rewrite map[Signal]Signal `json:"rewrite,omitempty"`
	// SuccessExitCodes are app exit codes that the init reports as 0
	// (tini -e): [143].
	SuccessExitCodes []int `json:"successExitCodes,omitempty"`
	// PreStopDelay is how long the apps keep serving after a shutdown
	// signal, with readiness already false (endpoint propagation).
	PreStopDelay Duration `json:"preStopDelay,omitempty"`
	// Health is the probes/metrics/admin HTTP listener.
	Health Health `json:"health,omitempty"`
	// ControlSocket is the unix socket the CLI talks to; "@name" is an
	// abstract socket. Default "@entrypoint-control-{ns}" (works on a
	// read-only root filesystem; NamespaceToken makes it the container's
	// own); "" after defaults means off only if set to "off".
	ControlSocket string `json:"controlSocket,omitempty"`
	// ControlAllowOtherPidns serves control socket callers whose PID
	// namespace is not ours or below it (SO_PEERCRED shows them as pid 0).
	ControlAllowOtherPidns bool `json:"controlAllowOtherPidns,omitempty"`
	// Apps run side by side; the first is the "main" app the command line
	// describes.
	Apps []App `json:"apps,omitempty"`

	// Source names where the config came from, for messages (not YAML).
	Source string `json:"-"`
	// Notes are defaults Load chose that the user should hear about once
	// (a known server's graceful stop signal); the caller logs each at
	// info level. Not YAML.
	Notes []string `json:"-"`
}

// Health configures the HTTP endpoints.
type Health struct {
	// Listen is the address for /livez /readyz /healthz /metrics and
	// /debug/admin. Default ":9090"; "off" disables it.
	Listen string `json:"listen,omitempty"`
	// TLSCert and TLSKey serve HTTPS, re-read when the files change.
	TLSCert string `json:"tlsCert,omitempty"`
	TLSKey  string `json:"tlsKey,omitempty"`
	// Admin enables /debug/admin.
	Admin bool `json:"admin,omitempty"`
	// AdminTokenFile holds the bearer token the admin routes require when
	// Listen is not loopback. ENTRYPOINT_ADMIN_TOKEN is the env twin of the
	// token itself.
	AdminTokenFile string `json:"adminTokenFile,omitempty"`
	AdminToken     string `json:"-"`
}

// App is one supervised program.
type App struct {
	// Name identifies the app in logs, metrics and commands. Default "app".
	Name string `json:"name"`
	// Command is argv; Command[0] is looked up in PATH at each start, so a
	// binary replaced on disk is picked up by the next generation.
	Command []string `json:"command"`
	// Env is added to the init's own environment.
	Env map[string]string `json:"env,omitempty"`
	// Dir is the working directory; default the init's.
	Dir string `json:"dir,omitempty"`
	// StopSignal ends a generation on swap, restart and programmatic
	// shutdown. Default SIGTERM.
	StopSignal Signal `json:"stopSignal,omitempty"`
	// DrainTimeout is how long a stopped generation may take before its
	// process group is SIGKILLed. Default 30s.
	DrainTimeout Duration `json:"drainTimeout,omitempty"`
	// Restart says what happens when the app exits on its own.
	Restart Restart `json:"restart,omitempty"`
	// Listen are the sockets bound by the init and handed to every
	// generation as fds 3.. in this order.
	Listen []Listener `json:"listen,omitempty"`
	// Readiness is the gate a new generation must pass.
	Readiness Readiness `json:"readiness,omitempty"`
	// Takeover is "auto" (default), "on" or "off": whether the app's own
	// bind() of a listened address is answered with the owned socket
	// (seccomp user notification; DESIGN rule 12). "on" fails at start when
	// the kernel or runtime refuses it; "auto" says so once and goes on.
	Takeover string `json:"takeover,omitempty"`
	// Watch are directories or files whose content change triggers OnChange.
	Watch []string `json:"watch,omitempty"`
	// WatchDebounce collapses a burst of changes into one. Default 1s.
	WatchDebounce Duration `json:"watchDebounce,omitempty"`
	// Validate is run (argv) against a changed config before OnChange; a
	// non-zero exit cancels it.
	Validate []string `json:"validate,omitempty"`
	// ValidateTimeout bounds Validate; a command still running then is
	// killed with its process group and the change is rejected. Default
	// 30s.
	ValidateTimeout Duration `json:"validateTimeout,omitempty"`
	// OnChange is "swap" (default), "restart" or "signal:SIGHUP".
	OnChange string `json:"onChange,omitempty"`
	// Watchdog, when set, is passed as WATCHDOG_USEC; a generation that
	// stops sending WATCHDOG=1 for that long fails liveness.
	Watchdog Duration `json:"watchdog,omitempty"`
}

// Restart is the policy for an app that exits on its own.
type Restart struct {
	// Policy is "exit" (default: the container ends with the app's code) or
	// "restart" (in place, with exponential backoff).
	Policy string `json:"policy,omitempty"`
	// Backoff is the first delay; it doubles up to MaxBackoff. Default 1s.
	Backoff Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the delay. Default 30s.
	MaxBackoff Duration `json:"maxBackoff,omitempty"`
	// CrashLoop is how many restarts in a row, each after a run shorter
	// than StableAfter, make liveness fail. Default 5.
	CrashLoop int `json:"crashLoop,omitempty"`
	// StableAfter is how long a run must last to reset the backoff.
	// Default 10s.
	StableAfter Duration `json:"stableAfter,omitempty"`
}

// Listener is one socket the init owns.
type Listener struct {
	// Name goes into LISTEN_FDNAMES. Default: "http" for TCP... see
	// README; derived from the address when empty.
	Name string `json:"name,omitempty"`
	// Address is "host:port", ":port", "[::1]:port", or "unix:/path".
	Address string `json:"address"`
	// Mode and Owner ("uid:gid" or "uid") apply to unix sockets.
	Mode  string `json:"mode,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Backlog is listen(2)'s backlog. Default SOMAXCONN.
	Backlog int `json:"backlog,omitempty"`
}

// Readiness is the gate of a new generation.
type Readiness struct {
	// Type is "auto" (default when the app has listeners: READY=1 or
	// listen() on every owned socket, whichever comes first), "notify"
	// (READY=1 only), "listen" (listen() only), "exec", "http", "tcp",
	// "delay", or "none" (default without listeners: started is ready).
	Type string `json:"type,omitempty"`
	// Command is the exec gate's argv; it gets ENTRYPOINT_APP_PID.
	Command []string `json:"command,omitempty"`
	// Address is the http gate's URL or the tcp gate's host:port; it must
	// be one only the new generation serves.
	Address string `json:"address,omitempty"`
	// Delay is the delay gate's wait, and the retry interval of the others.
	Delay Duration `json:"delay,omitempty"`
	// Timeout bounds every gate. Default 60s.
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration that reads "30s" from YAML and env.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Signal is a signal number that reads "SIGTERM", "TERM" or "15".
type Signal int
