package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// gracefulStop is the stop signal of servers whose SIGTERM is a hard
// stop that drops requests in flight; their graceful stop lets workers
// finish and close. Taken from each server's manual:
//   - nginx: QUIT is "graceful shutdown" (nginx.org/en/docs/control.html)
//   - haproxy: USR1 is the soft stop (management.txt, "Stopping")
//   - lighttpd: INT is the graceful shutdown (wiki: Server.graceful-shutdown-timeout)
//   - apache2/httpd: WINCH is graceful-stop (httpd.apache.org/docs/2.4/stopping.html)
var gracefulStop = map[string]syscall.Signal{
	"nginx":            syscall.SIGQUIT,
	"haproxy":          syscall.SIGUSR1,
	"lighttpd":         syscall.SIGINT,
	"apache2":          syscall.SIGWINCH,
	"httpd":            syscall.SIGWINCH,
	"httpd-foreground": syscall.SIGWINCH, // the official httpd image's command
}

// knownServerStop sets a's stop signal when no layer set one and its
// command is a server from the table above, and returns the line to log
// once about it ("" when it changed nothing). uWSGI has no signal that
// stops it gracefully by default (SIGTERM reloads it, INT and QUIT kill
// it), so for uwsgi it only says how to get one, unless the command
// already has the hook.
func knownServerStop(a *App) string {
	if len(a.Command) == 0 {
		return ""
	}
	base := filepath.Base(a.Command[0])
	if sig, ok := gracefulStop[base]; ok {
		a.StopSignal = Signal(sig)
		return fmt.Sprintf("app %s: stop signal %s, the graceful stop of %s (its SIGTERM drops requests in flight); set --stop-signal to choose another",
			a.Name, SignalName(sig), base)
	}
	if base == "uwsgi" && !slices.ContainsFunc(a.Command, func(s string) bool { return strings.Contains(s, "gracefully_kill_them_all") }) {
		return fmt.Sprintf("app %s: uWSGI reloads on SIGTERM instead of stopping; for a graceful stop add --hook-master-start \"unix_signal:15 gracefully_kill_them_all\" to its command and set --signal-target child (docs/recipes.md)",
			a.Name)
	}
	return ""
}
