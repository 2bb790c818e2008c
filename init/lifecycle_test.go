package supervisor

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// These tests run the rules of README "How it works" and "Decisions" that
// concern the supervisor on fake generations in virtual time; e2e/ runs
// them again on real processes.

// Hot swap: N+1 starts, N keeps serving (ready throughout) until N+1
// passed its gate, then N gets its stop signal and drains.
func TestSwap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		if a := h.app(); !a.Ready || a.State != status.StateRunning {
			t.Fatalf("after start: %+v", a)
		}
		res := call(h.s.Reload)
		g2 := h.w.next()
		synctest.Wait()
		if a := h.app(); !a.Ready || a.State != status.StateSwapping || len(g1.signals()) != 0 {
			t.Fatalf("during the swap: %+v, old got %v", a, g1.signals())
		}
		g2.becomeReady()
		synctest.Wait()
		r := <-res
		if !r.OK || r.From != 1 || r.To != 2 {
			t.Fatalf("result %+v", r)
		}
		<-g1.gone
		if s := g1.signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGTERM}) {
			t.Fatalf("old generation got %v, want SIGTERM", s)
		}
		synctest.Wait()
		if a := h.app(); !a.Ready || a.Current.N != 2 || len(a.Others) != 0 {
			t.Fatalf("after the swap: %+v", a)
		}
		if code := h.stop(); code != 0 {
			t.Fatalf("exit code %d", code)
		}
	})
}

// A generation that does not drain in its drain timeout is SIGKILLed then,
// not earlier, not later.
func TestSwapDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--drain-timeout", "7s")
		g1.becomeReady()
		synctest.Wait()
		g1.set(true, 0)
		res := call(h.s.Reload)
		g2 := h.w.next()
		g2.becomeReady()
		synctest.Wait()
		<-res
		start := time.Now()
		<-g1.gone
		if d := time.Since(start); d != 7*time.Second {
			t.Fatalf("old generation killed after %v, want the 7s drain timeout", d)
		}
		if s := g1.signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Fatalf("signals %v", s)
		}
		h.stop()
	})
}

// Rollback: N+1 exits before its gate; N keeps serving, untouched.
func TestSwapRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		res := call(h.s.Reload)
		g2 := h.w.next()
		g2.exitWith(2)
		r := <-res
		if r.OK || !strings.Contains(r.Reason, "exited before it was ready") || r.To != 1 {
			t.Fatalf("result %+v", r)
		}
		synctest.Wait()
		if a := h.app(); !a.Ready || a.Current.N != 1 || a.State != status.StateRunning || len(g1.signals()) != 0 {
			t.Fatalf("after rollback: %+v, old got %v", a, g1.signals())
		}
		h.stop()
	})
}

// Swaps asked for during a swap collapse into one more swap after it.
func TestSwapsCollapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		first := call(h.s.Reload)
		g2 := h.w.next()
		var more []chan status.Result
		for range 3 {
			more = append(more, call(h.s.Reload))
		}
		h.sigs <- syscall.SIGUSR1
		synctest.Wait()
		g2.becomeReady()
		synctest.Wait()
		if r := <-first; !r.OK || r.To != 2 {
			t.Fatalf("first swap %+v", r)
		}
		g3 := h.w.next()
		g3.becomeReady()
		for _, c := range more {
			if r := <-c; !r.OK || r.To != 3 {
				t.Fatalf("collapsed swap %+v", r)
			}
		}
		synctest.Wait()
		// The signal's swap came after the three requests were taken:
		// at most one more.
		if a := h.app(); a.Current.N > 3 {
			g4 := h.w.next()
			g4.becomeReady()
		}
		synctest.Wait()
		h.w.none(t)
		h.stop()
	})
}

// Full restart: N drains first (not ready meanwhile), then N+1 starts.
func TestRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		g1.set(false, 2*time.Second)
		res := call(h.s.Restart)
		synctest.Wait()
		if a := h.app(); a.Ready || a.State != status.StateRestarting {
			t.Fatalf("during the drain: %+v", a)
		}
		g2 := h.w.next()
		if !g2.started.Equal(g1.exitedAt) {
			t.Fatalf("generation 2 started at %v, generation 1 ended at %v", g2.started, g1.exitedAt)
		}
		g2.becomeReady()
		synctest.Wait()
		if r := <-res; !r.OK || r.To != 2 {
			t.Fatalf("result %+v", r)
		}
		h.stop()
	})
}

// Issue 12: a restart asked for while a restart brings its generation up
// joins it; it never stops that generation right after it became ready.
func TestRestartJoinsStartInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		first := call(h.s.Restart)
		g2 := h.w.next()
		second := call(h.s.Restart)
		h.sigs <- syscall.SIGUSR2
		h.sigs <- syscall.SIGUSR2
		synctest.Wait()
		g2.becomeReady()
		synctest.Wait()
		for _, c := range []chan status.Result{first, second} {
			if r := <-c; !r.OK || r.To != 2 {
				t.Fatalf("result %+v", r)
			}
		}
		synctest.Wait()
		h.w.none(t)
		if s := g2.signals(); len(s) != 0 {
			t.Fatalf("the new generation got %v", s)
		}
		h.stop()
	})
}

// Restart policy: exponential backoff from --restart-backoff, capped,
// and liveness fails after --crash-loop quick failures in a row.
func TestBackoffAndCrashLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g := run(t, "--restart", "restart", "--restart-backoff", "1s", "--restart-max-backoff", "4s")
		g.becomeReady()
		synctest.Wait()
		var delays []time.Duration
		for range 6 {
			g.exitWith(1)
			died := time.Now()
			g = h.w.next()
			delays = append(delays, g.started.Sub(died))
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
		if !slices.Equal(delays, want) {
			t.Fatalf("backoff %v, want %v", delays, want)
		}
		synctest.Wait()
		if a := h.app(); !a.CrashLoop || a.State != status.StateStarting && a.State != status.StateBackoff {
			t.Fatalf("after 6 quick failures: %+v", a)
		}
		if ok, _ := h.s.Status().Live(); ok {
			t.Fatal("live during a crash loop")
		}
		g.becomeReady()
		synctest.Wait()
		if a := h.app(); !a.Ready || a.Restarts != 6 {
			t.Fatalf("back up: %+v", a)
		}
		h.stop()
	})
}

// During the backoff a reload is answered at once and a restart cuts the
// wait short.
func TestRequestsDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--restart", "restart", "--restart-backoff", "10s")
		g1.becomeReady()
		synctest.Wait()
		g1.exitWith(1)
		synctest.Wait()
		if a := h.app(); a.State != status.StateBackoff || a.Ready {
			t.Fatalf("after exit: %+v", a)
		}
		if r := <-call(h.s.Reload); r.OK || !strings.Contains(r.Reason, "not running") {
			t.Fatalf("reload during backoff: %+v", r)
		}
		start := time.Now()
		res := call(h.s.Restart)
		g2 := h.w.next()
		if d := time.Since(start); d != 0 {
			t.Fatalf("restart waited %v of the backoff", d)
		}
		g2.becomeReady()
		synctest.Wait()
		if r := <-res; !r.OK || r.To != 2 {
			t.Fatalf("restart %+v", r)
		}
		h.stop()
	})
}

// Policy exit: the app's own end ends the container with its code.
func TestExitPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		g1.exitWith(3)
		if code := <-h.code; code != 3 {
			t.Fatalf("exit code %d, want 3", code)
		}
		if a := h.app(); a.State != status.StateFailed {
			t.Fatalf("state %s", a.State)
		}
	})
}

// Shutdown: not ready at once, the app keeps serving for the pre-stop
// delay, then gets the signal, then SIGKILL after the drain timeout; the
// code is 128+9.
func TestShutdownOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--pre-stop-delay", "5s", "--drain-timeout", "3s")
		g1.becomeReady()
		synctest.Wait()
		g1.set(true, 0)
		start := time.Now()
		h.sigs <- syscall.SIGTERM
		synctest.Wait()
		if ok, _ := h.s.Status().Ready(); ok || len(g1.signals()) != 0 {
			t.Fatalf("ready during shutdown, or signalled early: %v", g1.signals())
		}
		code := <-h.code
		g1.mu.Lock()
		at := slices.Clone(g1.sigAt)
		g1.mu.Unlock()
		if len(at) != 2 || at[0].Sub(start) != 5*time.Second || at[1].Sub(start) != 8*time.Second {
			t.Fatalf("signals %v at %v after start; want TERM at 5s, KILL at 8s", g1.signals(), at)
		}
		if code != 137 {
			t.Fatalf("exit code %d, want 137", code)
		}
	})
}

// Liveness: an app loop waiting on purpose (a long drain) answers; one
// stuck in a call fails Ping, which names the app.
func TestPingPerApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--drain-timeout", "30s")
		g1.becomeReady()
		synctest.Wait()
		g1.set(true, 0)
		res := call(h.s.Restart)
		time.Sleep(10 * time.Second) // well inside the drain
		ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
		if err := h.s.Ping(ctx); err != nil {
			t.Fatalf("ping during a drain: %v", err)
		}
		cancel()
		g2 := h.w.next()
		g2.becomeReady()
		synctest.Wait()
		<-res

		h.w.stuckKill = make(chan struct{})
		res = call(h.s.Restart) // its loop blocks signalling generation 2
		synctest.Wait()
		ctx, cancel = context.WithTimeout(context.Background(), 900*time.Millisecond)
		err := h.s.Ping(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "app web") {
			t.Fatalf("ping with a stuck app loop: %v", err)
		}
		close(h.w.stuckKill)
		g3 := h.w.next()
		g3.becomeReady()
		<-res
		h.stop()
	})
}
