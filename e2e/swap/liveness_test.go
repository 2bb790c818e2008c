package swap

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHealth runs entrypoint with a health listener and returns its
// address; the process is killed when the test ends.
func startHealth(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("systemd-notify"); err != nil {
		t.Skip("systemd-notify not found (apt-get install systemd; scripts/test.sh does)")
	}
	health := freeAddr(t)
	socket := filepath.Join(t.TempDir(), "control.sock")
	cmd := exec.Command(entrypointBin, append([]string{"--health-listen", health, "--control-socket", socket}, args...)...)
	logs := &logLines{}
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // apps of a killed init hold stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("entrypoint stderr:\n%s", logs.String())
		}
	})
	return health
}

// waitProbe polls url until it answers want, and returns the body.
func waitProbe(t *testing.T, url string, want int) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == want {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d; last body %q", url, want, last)
	return ""
}

// An app that enabled the sd_notify watchdog (WATCHDOG_USEC) and stops
// sending WATCHDOG=1 fails liveness; one that keeps sending stays live.
func TestWatchdogLiveness(t *testing.T) {
	silent := startHealth(t, "--readiness", "notify", "--watchdog", "1s", "--", "sh", "-c", "systemd-notify --ready; exec sleep 100")
	waitProbe(t, "http://"+silent+"/readyz", 200)
	body := waitProbe(t, "http://"+silent+"/livez?verbose", 500)
	if !strings.Contains(body, "watchdog") {
		t.Fatalf("livez does not say why: %q", body)
	}

	// A period that a fork and exec of systemd-notify every 50 ms meets
	// even on a loaded machine; sampled over four periods.
	alive := startHealth(t, "--readiness", "notify", "--watchdog", "2s", "--", "sh", "-c",
		"systemd-notify --ready; while :; do systemd-notify WATCHDOG=1; sleep 0.05; done")
	waitProbe(t, "http://"+alive+"/readyz", 200)
	c := &http.Client{Timeout: 2 * time.Second}
	for i := 0; i < 40; i++ {
		if code := probe(c, "http://"+alive+"/livez"); code != 200 {
			t.Fatalf("livez = %d while the app sends WATCHDOG=1", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A crash loop: not ready while the app is down in backoff, and liveness
// fails after the restart policy's crash-loop count.
func TestCrashLoopFailsLiveness(t *testing.T) {
	h := startHealth(t, "--restart", "restart", "--restart-backoff", "50ms", "--restart-max-backoff", "100ms", "--", "sh", "-c", "exit 3")
	body := waitProbe(t, "http://"+h+"/livez?verbose", 500)
	if !strings.Contains(body, "crash loop") {
		t.Fatalf("livez does not say crash loop: %q", body)
	}
	if code := probe(&http.Client{Timeout: 2 * time.Second}, "http://"+h+"/readyz"); code != 500 {
		t.Fatalf("readyz = %d during a crash loop", code)
	}
}
