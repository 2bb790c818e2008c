package swap

import (
	"syscall"
	"testing"
	"time"
)

// A restart asked for while a restart is still bringing its generation up
// joins it (issue 12): it must not run afterwards against a generation that
// has just become ready and may still be booting. The app here ignores
// SIGTERM for its first 4 s, as a gunicorn whose workers are still booting
// did; before the fix the second SIGUSR2 stopped such a generation and the
// app sat unready until the drain timeout (30 s) ran out.
func TestRestartDuringRestartJoins(t *testing.T) {
	script := `trap "" TERM; sleep 4; trap "exit 0" TERM; while :; do sleep 0.2; done`
	e := startEP(t, "--drain-timeout", "30s", "--readiness", "delay", "--readiness-delay", "1s",
		"--", "/bin/sh", "-c", script)
	// Past generation 1's deaf window, so the first restart is quick.
	time.Sleep(4500 * time.Millisecond)
	e.signal(syscall.SIGUSR2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := e.app("app")
		if a.Current != nil && a.Current.N == 2 && !a.Ready {
			break // generation 2 is in its gate
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation 2 never seen starting: %+v", a)
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.signal(syscall.SIGUSR2)
	sent := time.Now()
	// Ready again well before the drain timeout, and it stays so.
	var stable time.Time
	for {
		a := e.app("app")
		if a.Ready && len(a.Others) == 0 {
			if stable.IsZero() {
				stable = time.Now()
			}
			if time.Since(stable) >= 3*time.Second {
				break
			}
		} else {
			stable = time.Time{}
		}
		if time.Since(sent) > 12*time.Second {
			t.Fatalf("not ready and settled 12 s after the second restart: %+v", a)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a := e.app("app")
	if a.Current == nil || a.Current.N != 2 {
		t.Fatalf("the second restart should have joined the first: %+v", a.Current)
	}
	// Past generation 2's deaf window before the cleanup's SIGTERM, or its
	// drain takes the whole 30 s drain timeout.
	time.Sleep(time.Until(a.Current.Started.Add(5 * time.Second)))
}
