package config

import (
	"strings"
	"syscall"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`nginx -t`:                       {"nginx", "-t"},
		`nginx -t -g "daemon off;"`:      {"nginx", "-t", "-g", "daemon off;"},
		`haproxy -c -f '/etc/my cfg'`:    {"haproxy", "-c", "-f", "/etc/my cfg"},
		`a\ b "x\"y" 'it''s' "\n" ''`:    {"a b", `x"y`, "its", `\n`, ""},
		"  sh\t-c  'echo $HOME'  ":       {"sh", "-c", "echo $HOME"},
		`pre"mid dle"post`:               {"premid dlepost"},
		`check "back\\slash" "lit\eral"`: {"check", `back\slash`, `lit\eral`},
		``:                               nil,
	} {
		got, err := splitCommand(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`nginx -g "daemon off;`, `echo 'x`, `trailing \`} {
		if got, err := splitCommand(in); err == nil {
			t.Errorf("splitCommand(%q) = %q; want an error", in, got)
		}
	}
}

// A quoted argument reaches the command as one word, from the flag and
// from the env twin; an unbalanced quote is an error naming the flag.
func TestCommandFlagsQuoting(t *testing.T) {
	c := mustLoad(t, []string{"--listen", ":80", "--watch", "/etc/nginx", "--validate", `nginx -t -g "daemon off;"`,
		"--readiness-command", `sh -c 'test -e /proc/$ENTRYPOINT_APP_PID'`, "--", "nginx"}, envOf())
	if got := c.Apps[0].Validate; strings.Join(got, "|") != "nginx|-t|-g|daemon off;" {
		t.Fatalf("validate %q", got)
	}
	if got := c.Apps[0].Readiness.Command; strings.Join(got, "|") != "sh|-c|test -e /proc/$ENTRYPOINT_APP_PID" {
		t.Fatalf("readiness command %q", got)
	}
	c = mustLoad(t, []string{"--watch", "/w", "--", "/app"}, envOf("ENTRYPOINT_VALIDATE", `check --file "a b"`))
	if got := c.Apps[0].Validate; strings.Join(got, "|") != "check|--file|a b" {
		t.Fatalf("validate from env %q", got)
	}
	msg := loadErr(t, []string{"--watch", "/w", "--validate", `nginx -g "daemon off;`, "--", "/app"}, envOf())
	if !strings.Contains(msg, "--validate") || !strings.Contains(msg, "unbalanced double quote") {
		t.Fatalf("error %q does not name the flag and the quote", msg)
	}
	msg = loadErr(t, []string{"--readiness-command", `echo 'x`, "--", "/app"}, envOf())
	if !strings.Contains(msg, "--readiness-command") || !strings.Contains(msg, "unbalanced single quote") {
		t.Fatalf("error %q does not name the flag and the quote", msg)
	}
}

// A known server with no stop signal set gets its graceful one, and one
// note says so; a stop signal from any layer wins; uWSGI only gets advice.
func TestKnownServerStopSignal(t *testing.T) {
	for cmd, want := range map[string]syscall.Signal{
		"/usr/sbin/nginx":  syscall.SIGQUIT,
		"haproxy":          syscall.SIGUSR1,
		"lighttpd":         syscall.SIGINT,
		"apache2":          syscall.SIGWINCH,
		"httpd-foreground": syscall.SIGWINCH,
		"/app/server":      syscall.SIGTERM,
		"nginx-exporter":   syscall.SIGTERM,
	} {
		c := mustLoad(t, []string{"--listen", ":80", "--", cmd, "-x"}, envOf())
		if got := c.Apps[0].StopSignal.Sys(); got != want {
			t.Errorf("%s: stop signal %v, want %v", cmd, got, want)
		}
		if n := len(c.Notes); (want != syscall.SIGTERM) != (n == 1) || n > 1 {
			t.Errorf("%s: notes %q", cmd, c.Notes)
		}
	}
	c := mustLoad(t, []string{"--stop-signal", "SIGTERM", "--", "nginx"}, envOf())
	if c.Apps[0].StopSignal.Sys() != syscall.SIGTERM || len(c.Notes) != 0 {
		t.Fatalf("explicit SIGTERM for nginx: %v, notes %q", c.Apps[0].StopSignal, c.Notes)
	}
	c = mustLoad(t, []string{"--", "nginx"}, envOf("ENTRYPOINT_STOP_SIGNAL", "SIGTERM"))
	if c.Apps[0].StopSignal.Sys() != syscall.SIGTERM {
		t.Fatalf("env SIGTERM for nginx: %v", c.Apps[0].StopSignal)
	}
	c = mustLoad(t, []string{"--", "uwsgi", "--ini", "app.ini"}, envOf())
	if c.Apps[0].StopSignal.Sys() != syscall.SIGTERM || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "gracefully_kill_them_all") {
		t.Fatalf("uwsgi: %v, notes %q", c.Apps[0].StopSignal, c.Notes)
	}
	c = mustLoad(t, []string{"--", "uwsgi", "--hook-master-start", "unix_signal:15 gracefully_kill_them_all"}, envOf())
	if len(c.Notes) != 0 {
		t.Fatalf("uwsgi with the hook: notes %q", c.Notes)
	}
}
