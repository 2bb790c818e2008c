package swap

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/control"
)

// ignoresTerm is an app without listeners (readiness none) that ignores
// SIGTERM: only SIGKILL ends it.
const ignoresTerm = `trap '' TERM; while :; do sleep 0.05; done`

// ignoringTerm returns the arguments that run ignoresTerm behind an exec
// readiness gate passing only once the trap is installed. With readiness
// none a generation counts as ready as soon as it starts, and a SIGTERM
// sent before its sh has run `trap` kills it (exit 143, not the 137 of
// the drain timeout's SIGKILL). script runs before the trap.
func ignoringTerm(t *testing.T, script string) []string {
	t.Helper()
	dir := t.TempDir()
	gate := filepath.Join(dir, "trapped")
	if err := os.WriteFile(gate, []byte("#!/bin/sh\ntest -e \""+dir+"/$ENTRYPOINT_APP_PID\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := script + `trap '' TERM; : > "` + dir + `/$$"; while :; do sleep 0.05; done`
	return []string{"--readiness", "exec", "--readiness-command", gate, "--readiness-delay", "20ms", "--", "sh", "-c", app}
}

// Shutdown during a hot swap, with two generations that both ignore the
// stop signal: one drain deadline for both, then SIGKILL; the init does
// not wait for either to exit by itself.
func TestShutdownDuringSwapIsBounded(t *testing.T) {
	e := startEP(t, append([]string{"--drain-timeout", "1s"}, ignoringTerm(t, "")...)...)
	if r := e.reload("app"); !r.OK { // generation 1 now drains (ignoring TERM) beside 2
		t.Fatalf("reload: %+v", r)
	}
	if len(e.app("app").Others) == 0 {
		t.Fatal("the old generation should still be draining")
	}
	e.signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("shutdown with two generations ignoring SIGTERM did not end (drain timeout 1s):\n%s", e.stderr.String())
	}
	if e.code != 137 {
		t.Fatalf("exit code %d, want 137 (SIGKILL after the drain timeout)", e.code)
	}
}

// A shutdown during a full restart stops the draining generation with its
// own exit code and starts nothing new.
func TestShutdownDuringFullRestart(t *testing.T) {
	e := startEP(t, "--", "sh", "-c", `trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.05; done`)
	e.signal(syscall.SIGUSR2)
	deadline := time.Now().Add(10 * time.Second)
	for e.app("app").State != "restarting" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	e.signal(syscall.SIGTERM)
	<-e.done
	if e.code != 0 {
		t.Fatalf("exit code %d, want 0 (the app's own)", e.code)
	}
	log := e.stderr.String()
	if i := strings.Index(log, "shutting down"); strings.Contains(log[i:], "generation=2") {
		t.Fatalf("a generation started after shutdown began:\n%s", log)
	}
}

// A swap's new generation that dies while the old one drains is noticed
// (the run loop does not wait for the drain): with --restart exit the
// container ends with the new generation's code once the old one had its
// drain timeout.
func TestNewGenerationDyingDuringDrain(t *testing.T) {
	script := `if [ "$ENTRYPOINT_GENERATION" = 2 ]; then sleep 0.3; exit 3; fi; ` + ignoresTerm
	e := startEP(t, "--drain-timeout", "2s", "--", "sh", "-c", script)
	if r := e.reload("app"); !r.OK {
		t.Fatalf("reload: %+v", r)
	}
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the init did not act on the new generation's exit while the old one drained:\n%s", e.stderr.String())
	}
	if e.code != 3 {
		t.Fatalf("exit code %d, want 3 (the new generation's)", e.code)
	}
}

// When a restart cannot start the app (its binary is gone), the restart
// policy applies; a second restart queued meanwhile must not signal
// anyone else: a pid-0 "generation" would be kill(0), our own group.
func TestRestartAfterBinaryRemoved(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	running := filepath.Join(dir, "running")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntrap 'exit 0' TERM\ntouch "+running+"\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startEP(t, "--", bin)
	// Ready (no gate) can come before sh opened its script; removed before
	// that, generation 1 itself fails (exit 2), not the restart.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(running); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never ran its script")
		}
	}
	os.Remove(bin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{}, 2)
	for i := 0; i < 2; i++ {
		go func() {
			control.Call(ctx, e.socket, "restart", "app")
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the init did not end after the app could not be restarted")
	}
	if e.code != 127 {
		t.Fatalf("exit code %d, want 127 (command not found)", e.code)
	}
	if strings.Contains(e.stderr.String(), `reason=SIGTERM`) {
		t.Fatalf("the init signalled its own process group:\n%s", e.stderr.String())
	}
}

// During a restart backoff a reload is answered at once (nothing runs to
// swap) and a restart cuts the backoff short.
func TestRequestsDuringBackoff(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "crash")
	os.WriteFile(marker, nil, 0o644)
	script := fmt.Sprintf(`if [ -e %s ]; then exit 1; fi; trap 'exit 0' TERM; while :; do sleep 0.05; done`, marker)
	e := startEPNoWait(t, "--restart", "restart", "--restart-backoff", "30s", "--", "sh", "-c", script)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := control.Call(ctx(t), e.socket, "status", "")
		if err == nil && resp.Status != nil && resp.Status.Apps[0].State == "backoff" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	out, err := exec.Command(entrypointBin, "reload", "--control-socket", e.socket, "--timeout", "20s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "backoff") {
		t.Fatalf("reload during backoff: %v %s", err, out)
	}
	os.Remove(marker)
	out, err = exec.Command(entrypointBin, "restart", "--control-socket", e.socket, "--timeout", "20s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restart: ok") {
		t.Fatalf("restart during a 30 s backoff: %v %s", err, out)
	}
}

// Liveness fails in a crash loop and recovers once a generation stayed
// ready for stableAfter: a recovered app must not be killed by the kubelet.
func TestCrashLoopClearsAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "runs")
	script := fmt.Sprintf(`echo x >> %[1]s; if [ $(wc -l < %[1]s) -le 5 ]; then exit 1; fi; trap 'exit 0' TERM; while :; do sleep 0.05; done`, counter)
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: app
  command: ["sh", "-c", %q]
  restart: {policy: restart, backoff: 20ms, maxBackoff: 40ms, crashLoop: 3, stableAfter: 1s}
`, script))
	h := startHealth(t, "--config", cfg)
	waitProbe(t, "http://"+h+"/livez", 500)
	waitProbe(t, "http://"+h+"/readyz", 200)
	waitProbe(t, "http://"+h+"/livez", 200)
	if code := probe(&http.Client{Timeout: 2 * time.Second}, "http://"+h+"/readyz"); code != 200 {
		t.Fatalf("readyz = %d after recovery", code)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}
