package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var errNoCommand = errors.New("no command: give one after --, like `entrypoint -- /app/server`, or define apps in the config file")

// minWatchdog is the shortest --watchdog: below it an app's WATCHDOG=1
// (sent every half period, by sd_notify convention) cannot keep up.
const minWatchdog = time.Second

// maxBacklog bounds listen(2)'s backlog: the kernel's somaxconn is a u16
// before 5.4 and caps every backlog anyway.
const maxBacklog = 65535

// validAppName reports whether s matches ^[a-z0-9][a-z0-9-]*$: what metric
// labels and URL paths accept without escaping. Written out rather than a
// package-level regexp, whose compilation every start-up would pay for in
// a package init (issue 13).
func validAppName(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r == '-' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// setDefaults fills what no layer set. A zero duration counts as unset.
func setDefaults(c *Config) {
	c.LogFormat = strings.ToLower(or(c.LogFormat, "text"))
	c.LogLevel = strings.ToLower(or(c.LogLevel, "info"))
	c.SignalTarget = strings.ToLower(or(c.SignalTarget, "group"))
	c.Health.Listen = or(c.Health.Listen, DefaultHealthListen)
	c.ControlSocket = or(c.ControlSocket, DefaultControlSocket)
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.Name == "" && i == 0 {
			a.Name = DefaultAppName
		}
		if a.StopSignal == 0 {
			a.StopSignal = Signal(syscall.SIGTERM)
			if note := knownServerStop(a); note != "" {
				c.Notes = append(c.Notes, note)
			}
		}
		orDuration(&a.DrainTimeout, defaultDrainTimeout)
		a.Restart.Policy = strings.ToLower(or(a.Restart.Policy, "exit"))
		orDuration(&a.Restart.Backoff, defaultRestartBackoff)
		orDuration(&a.Restart.MaxBackoff, max(defaultRestartMax, a.Restart.Backoff.D()))
		if a.Restart.CrashLoop == 0 {
			a.Restart.CrashLoop = defaultCrashLoop
		}
		orDuration(&a.Restart.StableAfter, defaultStableAfter)
		orDuration(&a.WatchDebounce, defaultWatchDebounce)
		orDuration(&a.ValidateTimeout, defaultValidateTimeout)
		a.OnChange = or(a.OnChange, "swap")
		if s, ok := strings.CutPrefix(a.OnChange, "signal:"); ok {
			if sig, err := ParseSignal(s); err == nil {
				a.OnChange = "signal:" + SignalName(sig)
			}
		} else {
			a.OnChange = strings.ToLower(a.OnChange)
		}

		r := &a.Readiness
		r.Type = strings.ToLower(r.Type)
		if r.Type == "" {
			switch {
			case len(r.Command) > 0:
				r.Type = "exec"
			case strings.Contains(r.Address, "://"):
				r.Type = "http"
			case r.Address != "":
				r.Type = "tcp"
			case len(a.Listen) > 0:
				r.Type = "auto"
			default:
				r.Type = "none"
			}
		}
		a.Takeover = strings.ToLower(a.Takeover)
		if a.Takeover == "" {
			a.Takeover = "auto"
		}
		orDuration(&r.Timeout, DefaultReadinessTimeout)
		if r.Type == "exec" || r.Type == "http" || r.Type == "tcp" {
			orDuration(&r.Delay, DefaultReadinessRetry)
		}

		named := map[string]bool{}
		for _, l := range a.Listen {
			named[l.Name] = true
		}
		for j := range a.Listen {
			l := &a.Listen[j]
			if l.Name != "" {
				continue
			}
			base := defaultListenerName(l.Address)
			name := base
			for n := 2; named[name]; n++ {
				name = base + "-" + strconv.Itoa(n)
			}
			l.Name = name
			named[name] = true
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func oneOf(p *problems, path, v string, choices ...string) {
	for _, c := range choices {
		if v == c {
			return
		}
	}
	p.at(path, "%q is not allowed; write one of %s", v, strings.Join(choices, ", "))
}

func nonNegative(p *problems, path string, d Duration) {
	if d < 0 {
		p.at(path, "%s is negative; write a duration like \"30s\"", d)
	}
}

// validate checks the merged, defaulted config; p labels every problem.
func validate(c *Config, p *problems) {
	oneOf(p, "logFormat", c.LogFormat, "text", "json")
	oneOf(p, "logLevel", c.LogLevel, "debug", "info", "warn", "error")
	oneOf(p, "signalTarget", c.SignalTarget, "group", "child")
	for from, to := range c.Rewrite {
		switch from.Sys() {
		case syscall.SIGKILL, syscall.SIGSTOP:
			p.at("rewrite", "%s cannot be caught, so it cannot be rewritten; remove it", from)
		case syscall.SIGUSR1, syscall.SIGUSR2:
			p.at("rewrite", "%s is the init's own (hot swap, full restart), so it is never forwarded and a rewrite of it would do nothing; remove it", from)
		case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGURG, syscall.SIGPROF:
			p.at("rewrite", "%s is never forwarded (it belongs to the init or the Go runtime), so a rewrite of it would do nothing; remove it", from)
		}
		switch to.Sys() {
		case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG:
			p.at("rewrite", "%s:%s would send the app %s, which only the kernel should send; rewrite to a signal such as SIGQUIT", from, to, to)
		}
	}
	for i, code := range c.SuccessExitCodes {
		if code < 0 || code > 255 {
			p.at(fmt.Sprintf("successExitCodes[%d]", i), "%d is not an exit code; use 0-255", code)
		}
	}
	nonNegative(p, "preStopDelay", c.PreStopDelay)
	validateHealth(c, p)
	switch cs := c.ControlSocket; {
	case cs == Off, strings.HasPrefix(cs, "/"), strings.HasPrefix(cs, "@") && len(cs) > 1:
		// The namespace inodes are 32-bit: at most 10 digits each.
		if len(strings.ReplaceAll(cs, NamespaceToken, "4294967295-4294967295")) > sunPathMax {
			p.at("controlSocket", "%q is longer than %d bytes; use a shorter path", cs, sunPathMax)
		}
	default:
		p.at("controlSocket", "%q is not a socket path; write an absolute path, \"@name\" for an abstract socket, or \"off\"", cs)
	}

	if len(c.Apps) == 0 {
		if !p.fileBroken {
			p.errs = append(p.errs, errNoCommand)
		}
		return
	}
	seenName := map[string]string{}
	type bound struct {
		addr address
		path string
	}
	var all []bound
	if a, err := parseAddress(c.Health.Listen); err == nil && c.Health.Listen != Off {
		all = append(all, bound{a, "health.listen"})
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		ap := fmt.Sprintf("apps[%d]", i)
		validateApp(a, ap, p)
		if prev, dup := seenName[a.Name]; dup && a.Name != "" {
			p.at(ap+".name", "%q is already the name of %s; give each app a unique name", a.Name, prev)
		}
		seenName[a.Name] = ap
		for j, l := range a.Listen {
			lp := fmt.Sprintf("%s.listen[%d]", ap, j)
			addr, err := parseAddress(l.Address)
			if err != nil {
				continue // reported by validateApp
			}
			for _, b := range all {
				if addr.conflicts(b.addr) {
					p.at(lp+".address", "%q overlaps %s; each socket can be bound once, give it another port or path", l.Address, p.label(b.path))
				}
			}
			all = append(all, bound{addr, lp})
		}
	}
}

func validateHealth(c *Config, p *problems) {
	h := &c.Health
	if h.Listen != Off {
		a, err := parseAddress(h.Listen)
		switch {
		case err != nil:
			p.at("health.listen", "%v, or \"off\"", err)
		case a.unix:
			p.at("health.listen", "%q is a unix socket; kubelet probes need TCP, write it like \":9090\"", h.Listen)
		}
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		p.at("health.tlsCert", "HTTPS needs both a certificate and a key; set both --health-tls-cert and --health-tls-key, or neither")
	}
	if !h.Admin {
		return
	}
	if h.Listen == Off {
		p.at("health.admin", "the admin page is served on the health listener, which is off; set --health-listen or turn --admin off")
		return
	}
	if h.AdminToken == "" && h.AdminTokenFile == "" && !IsLoopback(h.Listen) {
		p.at("health.admin", "the admin page on %q is reachable from the network and needs a token; set --admin-token-file or ENTRYPOINT_ADMIN_TOKEN, or bind --health-listen to 127.0.0.1", h.Listen)
	}
}

// IsLoopback reports whether a TCP listen address ("host:port") only
// accepts connections from this network namespace. An empty host (":9090")
// means every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateApp(a *App, ap string, p *problems) {
	switch {
	case a.Name == "":
		p.at(ap+".name", "missing; give every app after the first a unique name, like \"worker\"")
	case len(a.Name) > 63 || !validAppName(a.Name):
		p.at(ap+".name", "%q is not a valid app name; use at most 63 lowercase letters, digits and '-', starting with a letter or digit, like \"web\"", a.Name)
	}
	switch {
	case len(a.Command) == 0 && ap == "apps[0]" && !p.fromFile[ap]:
		p.errs = append(p.errs, errNoCommand)
	case len(a.Command) == 0:
		p.at(ap+".command", "missing; give the program and its arguments as a list, like [\"/app/worker\", \"--queue\", \"jobs\"]")
	case a.Command[0] == "":
		p.at(ap+".command[0]", "the program is empty; write the path or name of the program to run")
	}
	if a.Dir != "" {
		// Checked here, not left to the first start, where a missing dir
		// reads as a command problem (exit 127).
		switch fi, err := os.Stat(a.Dir); {
		case err != nil:
			p.at(ap+".dir", "%q: %v; create the directory or fix the path", a.Dir, unwrapPathErr(err))
		case !fi.IsDir():
			p.at(ap+".dir", "%q is not a directory; give the app's working directory", a.Dir)
		}
	}
	for k := range a.Env {
		if strings.ContainsAny(k, "=\x00") {
			p.at(ap+".env."+k, "%q is not a variable name; names may not contain '='", k)
		}
	}
	if !validSignal(a.StopSignal.Sys()) {
		p.at(ap+".stopSignal", "%d is not a signal; write it like \"SIGTERM\" or \"15\"", int(a.StopSignal))
	}
	nonNegative(p, ap+".drainTimeout", a.DrainTimeout)
	nonNegative(p, ap+".watchDebounce", a.WatchDebounce)
	nonNegative(p, ap+".validateTimeout", a.ValidateTimeout)
	nonNegative(p, ap+".watchdog", a.Watchdog)
	if a.Watchdog > 0 && a.Watchdog.D() < minWatchdog {
		p.at(ap+".watchdog", "%s is shorter than %s: an app cannot send WATCHDOG=1 that often and would fail liveness at once; write it like \"30s\"", a.Watchdog, minWatchdog)
	}

	r := &a.Restart
	oneOf(p, ap+".restart.policy", r.Policy, "exit", "restart")
	switch {
	case r.Backoff < 0:
		nonNegative(p, ap+".restart.backoff", r.Backoff)
	case r.MaxBackoff < r.Backoff:
		p.at(ap+".restart.maxBackoff", "%s is less than restart.backoff %s; make it at least as long", r.MaxBackoff, r.Backoff)
	}
	if r.CrashLoop < 1 {
		p.at(ap+".restart.crashLoop", "%d is not a count of restarts; write a number of at least 1, like 5", r.CrashLoop)
	}
	nonNegative(p, ap+".restart.stableAfter", r.StableAfter)

	names := map[string]bool{}
	for j, l := range a.Listen {
		lp := fmt.Sprintf("%s.listen[%d]", ap, j)
		addr, err := parseAddress(l.Address)
		if err != nil {
			p.at(lp+".address", "%v", err)
		}
		if !validListenerName(l.Name) {
			p.at(lp+".name", "%q is not a listener name; use letters, digits, '-', '_' and '.', like \"https\"", l.Name)
		} else if names[l.Name] {
			p.at(lp+".name", "%q names two listeners of app %q; give each its own name, like \"https=:8443\"", l.Name, a.Name)
		}
		names[l.Name] = true
		if err == nil && !addr.unix && (l.Mode != "" || l.Owner != "") {
			p.at(lp, "mode and owner apply to unix sockets only; remove them for %q", l.Address)
		}
		if l.Mode != "" {
			if m, err := strconv.ParseUint(l.Mode, 8, 32); err != nil || m > 0o777 {
				p.at(lp+".mode", "%q is not a file mode; write it in octal like \"0660\"", l.Mode)
			}
		}
		if l.Owner != "" && !validOwner(l.Owner) {
			p.at(lp+".owner", "%q is not an owner; write numeric ids like \"1000\" or \"1000:1000\" (scratch images have no user names)", l.Owner)
		}
		switch {
		case l.Backlog < 0:
			p.at(lp+".backlog", "%d is negative; leave it out for SOMAXCONN", l.Backlog)
		case l.Backlog > maxBacklog:
			p.at(lp+".backlog", "%d is larger than %d (the kernel caps it at net.core.somaxconn anyway); leave it out for SOMAXCONN or write a number like 4096", l.Backlog, maxBacklog)
		}
	}

	validateReadiness(a, ap, p)
	oneOf(p, ap+".takeover", a.Takeover, "auto", "on", "off")

	for j, w := range a.Watch {
		if w == "" {
			p.at(fmt.Sprintf("%s.watch[%d]", ap, j), "empty path; write the file or directory to watch")
		}
	}
	if len(a.Validate) > 0 && a.Validate[0] == "" {
		p.at(ap+".validate[0]", "the program is empty; write the command that checks the new config")
	}
	if len(a.Validate) > 0 && len(a.Watch) == 0 {
		p.at(ap+".validate", "is only run when a watched path changes, and nothing is watched; add --watch PATH or remove it")
	}
	if s, ok := strings.CutPrefix(a.OnChange, "signal:"); ok {
		if _, err := ParseSignal(s); err != nil {
			p.at(ap+".onChange", "%v after \"signal:\"; write it like \"signal:SIGHUP\"", err)
		}
	} else {
		oneOf(p, ap+".onChange", a.OnChange, "swap", "restart", "signal:SIGHUP")
	}
}

func validateReadiness(a *App, ap string, p *problems) {
	r := &a.Readiness
	rp := ap + ".readiness"
	nonNegative(p, rp+".timeout", r.Timeout)
	nonNegative(p, rp+".delay", r.Delay)
	switch r.Type {
	case "exec":
		if len(r.Command) == 0 || r.Command[0] == "" {
			p.at(rp+".type", "the exec gate needs a command; set --readiness-command or readiness.command")
		}
	case "http":
		u, err := url.Parse(r.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.at(rp+".address", "%q is not an http URL; write it like \"http://127.0.0.1:8081/ready\"", r.Address)
		} else {
			sharedPort(a, u.Host, rp, p)
		}
	case "tcp":
		if _, err := parseAddress(r.Address); err != nil || strings.HasPrefix(r.Address, "unix:") {
			p.at(rp+".address", "%q is not a host:port to probe; write it like \"127.0.0.1:8081\"", r.Address)
		} else {
			sharedPort(a, r.Address, rp, p)
		}
	case "delay":
		if r.Delay <= 0 {
			p.at(rp+".type", "the delay gate needs a delay; set --readiness-delay or readiness.delay, like \"5s\"")
		}
	case "listen":
		if len(a.Listen) == 0 {
			p.at(rp+".type", "the listen gate waits for listen() on the app's listeners, and it has none; add --listen or use another gate")
		} else if a.Takeover == "off" {
			p.at(rp+".type", "the listen gate needs the bind takeover, which is off; set --takeover auto or use another gate")
		}
	case "auto", "notify", "none":
	default:
		p.at(rp+".type", "%q is not a readiness gate; write one of auto, notify, listen, exec, http, tcp, delay, none", r.Type)
		return
	}
	if r.Type != "exec" && len(r.Command) > 0 {
		p.at(rp+".command", "is set but the gate is %q, which ignores it; set the type to exec or remove the command", r.Type)
	}
	if r.Type != "http" && r.Type != "tcp" && r.Address != "" {
		p.at(rp+".address", "is set but the gate is %q, which ignores it; set the type to http or tcp or remove the address", r.Type)
	}
}

// sharedPort rejects a probe address that one of the app's own listeners
// serves: old and new generation accept on that socket, so the old one
// could answer the probe for the new (DESIGN rule 4).
func sharedPort(a *App, hostport, rp string, p *problems) {
	probe, err := parseAddress(hostport)
	if err != nil {
		return // "http://host" without a port: nothing to compare
	}
	for _, l := range a.Listen {
		if la, err := parseAddress(l.Address); err == nil && !la.unix && la.port == probe.port && probe.port != 0 {
			p.at(rp+".address", "%q is served by listener %q, which the old generation also accepts on, so it cannot tell when the new one is ready; probe a port only the new generation serves, or use the notify gate", hostport, l.Address)
			return
		}
	}
}

func validOwner(s string) bool {
	uid, gid, hasGid := strings.Cut(s, ":")
	if _, err := strconv.ParseUint(uid, 10, 32); err != nil {
		return false
	}
	if hasGid {
		if _, err := strconv.ParseUint(gid, 10, 32); err != nil {
			return false
		}
	}
	return true
}
