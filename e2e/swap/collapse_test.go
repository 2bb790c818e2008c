package swap

import (
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// Full restarts collapse as swaps do: six SIGUSR2s while one restart runs
// make at most two restarts, not six that each stop a generation that had
// just come up.
func TestRestartTriggersCollapse(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin, "-ready-delay", "400ms")
	for i := 0; i < 6; i++ {
		e.signal(syscall.SIGUSR2)
	}
	e.waitGeneration("app", 2)
	// Wait until the app has stayed at one running generation for a
	// while: a further restart would have started by then.
	deadline := time.Now().Add(30 * time.Second)
	var a status.AppStatus
	for stable := time.Now(); time.Since(stable) < 1500*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("restarts never settled: %+v", a)
		}
		prev := a
		a = e.app("app")
		if a.State != "running" || a.Current == nil || len(a.Others) > 0 || prev.Current == nil || prev.Current.N != a.Current.N {
			stable = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.Current.N > 3 {
		t.Fatalf("6 restart triggers made %d generations; they should collapse into at most 2 restarts", a.Current.N)
	}
	if a.LastAction == nil || a.LastAction.Action != "restart" || !a.LastAction.OK {
		t.Fatalf("last action %+v", a.LastAction)
	}
}
