package swap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DESIGN rule 13: the validate command and the exec gate's command get the
// listening sockets as the app does (fds 3.., LISTEN_FDS with their own
// LISTEN_PID, SERVER_STARTER_PORT), so a config check that names fd@3
// (haproxy -c) works. Both commands are scripts that fail unless they got
// them; a config change goes through only if both passed.
func TestValidateAndExecGateGetTheSockets(t *testing.T) {
	dir := t.TempDir()
	check := filepath.Join(dir, "check.sh")
	writeFile(t, check, `#!/bin/sh
[ "$LISTEN_FDS" = 1 ] || { echo "LISTEN_FDS=$LISTEN_FDS"; exit 1; }
[ "$LISTEN_PID" = "$$" ] || { echo "LISTEN_PID=$LISTEN_PID, pid $$"; exit 1; }
case "$SERVER_STARTER_PORT" in *=3) ;; *) echo "SERVER_STARTER_PORT=$SERVER_STARTER_PORT"; exit 1;; esac
[ -S /proc/$$/fd/3 ] || { echo "fd 3 is not a socket"; exit 1; }
echo ok >>"$1"
`)
	os.Chmod(check, 0o755)
	conf := filepath.Join(dir, "conf")
	os.Mkdir(conf, 0o755)
	writeFile(t, filepath.Join(conf, "app.conf"), "v1")
	gateLog, validateLog := filepath.Join(dir, "gate.log"), filepath.Join(dir, "validate.log")
	e := startEP(t, "--listen", "127.0.0.1:0",
		"--readiness", "exec", "--readiness-command", check+" "+gateLog,
		"--watch", conf, "--watch-debounce", "100ms",
		"--validate", check+" "+validateLog,
		"--", exampleBin)
	writeFile(t, filepath.Join(conf, "app.conf"), "v2")
	e.waitGeneration("app", 2)
	// The change is recorded once its swap returned, a moment after
	// generation 2 shows as ready.
	deadline := time.Now().Add(10 * time.Second)
	a := e.app("app")
	for a.LastChange == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		a = e.app("app")
	}
	if a.LastChange == nil || !a.LastChange.OK {
		t.Fatalf("config change: %+v", a.LastChange)
	}
	for time.Now().Before(deadline) {
		g, _ := os.ReadFile(gateLog)
		v, _ := os.ReadFile(validateLog)
		if strings.Count(string(g), "ok") >= 2 && strings.Count(string(v), "ok") >= 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g, _ := os.ReadFile(gateLog)
	v, _ := os.ReadFile(validateLog)
	t.Fatalf("gate log %q, validate log %q", g, v)
}
