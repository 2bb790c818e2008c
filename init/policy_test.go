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

// Signals that arrive before the first generation is ready are queued
// and delivered once it is.
func TestSignalsQueuedUntilReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		h.sigs <- syscall.SIGWINCH
		synctest.Wait()
		if s := g1.signals(); len(s) != 0 {
			t.Fatalf("delivered before ready: %v", s)
		}
		g1.becomeReady()
		synctest.Wait()
		if s := g1.signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGWINCH}) {
			t.Fatalf("after ready: %v", s)
		}
		h.stop()
	})
}

// A run that stayed ready for StableAfter resets the backoff and the
// crash-loop count.
func TestStableRunResetsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g := run(t, "--restart", "restart", "--restart-backoff", "1s")
		g.becomeReady()
		synctest.Wait()
		for range 2 { // quick failures: 1s, then 2s
			g.exitWith(1)
			g = h.w.next()
		}
		g.becomeReady()
		synctest.Wait()
		time.Sleep(11 * time.Second) // past the 10 s StableAfter
		g.exitWith(1)
		died := time.Now()
		g = h.w.next()
		if d := g.started.Sub(died); d != time.Second {
			t.Fatalf("after a stable run the backoff was %v, want 1s", d)
		}
		g.becomeReady()
		synctest.Wait()
		if a := h.app(); a.CrashLoop {
			t.Fatalf("crash loop after a stable run: %+v", a)
		}
		h.stop()
	})
}

// A first generation that misses its gate is killed and, with the exit
// policy, ends the container with 137.
func TestFirstGenerationMissesGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--readiness-timeout", "5s")
		start := time.Now()
		code := <-h.code
		if code != 137 || time.Since(start) != 5*time.Second {
			t.Fatalf("exit code %d after %v, want 137 after the 5s gate", code, time.Since(start))
		}
		if s := g1.signals(); !slices.Contains(s, syscall.SIGKILL) {
			t.Fatalf("signals %v", s)
		}
	})
}

// Shutdown in the middle of a full restart's drain: the drain goes on
// under the shutdown's deadline and the init exits with that generation's
// code.
func TestShutdownDuringRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		g1.set(false, 3*time.Second)
		res := call(h.s.Restart)
		time.Sleep(time.Second)
		h.sigs <- syscall.SIGTERM
		if r := <-res; r.OK {
			t.Fatalf("restart succeeded during shutdown: %+v", r)
		}
		if code := <-h.code; code != 0 {
			t.Fatalf("exit code %d", code)
		}
		h.w.none(t)
		if a := h.app(); a.State != status.StateExited {
			t.Fatalf("state %s", a.State)
		}
	})
}

// A reload asked for during a restart waits for it, then swaps.
func TestReloadDuringRestartRunsAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		restart := call(h.s.Restart)
		g2 := h.w.next()
		reload := call(h.s.Reload)
		synctest.Wait()
		g2.becomeReady()
		if r := <-restart; !r.OK || r.To != 2 {
			t.Fatalf("restart %+v", r)
		}
		g3 := h.w.next()
		g3.becomeReady()
		if r := <-reload; !r.OK || r.From != 2 || r.To != 3 {
			t.Fatalf("reload %+v", r)
		}
		h.stop()
	})
}

// The app gets the signal that started the shutdown, and a second one
// cuts the pre-stop delay short.
func TestSecondShutdownSignalCutsPreStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--pre-stop-delay", "20s")
		g1.becomeReady()
		synctest.Wait()
		start := time.Now()
		h.sigs <- syscall.SIGINT
		time.Sleep(2 * time.Second)
		h.sigs <- syscall.SIGINT
		code := <-h.code
		g1.mu.Lock()
		at := slices.Clone(g1.sigAt)
		g1.mu.Unlock()
		if s := g1.signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGINT}) || at[0].Sub(start) != 2*time.Second {
			t.Fatalf("signals %v at %v, want SIGINT when the second signal came", s, at)
		}
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	})
}

// A failed swap uses a generation number; the next one gets the one after.
func TestFailedSwapUsesANumber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		res := call(h.s.Reload)
		h.w.next().exitWith(1)
		<-res
		res = call(h.s.Reload)
		g3 := h.w.next()
		g3.becomeReady()
		if r := <-res; !r.OK || r.To != 3 {
			t.Fatalf("second swap %+v, want generation 3", r)
		}
		h.stop()
	})
}

// A request whose caller gave up while it waited behind a swap never
// starts.
func TestGivenUpRequestNeverStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t)
		g1.becomeReady()
		synctest.Wait()
		first := call(h.s.Reload)
		g2 := h.w.next()
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan error, 1)
		go func() {
			_, err := h.s.Restart(ctx, "")
			gaveUp <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-gaveUp; err == nil {
			t.Fatal("the restart answered after its caller left")
		}
		g2.becomeReady()
		<-first
		synctest.Wait()
		h.w.none(t)
		if a := h.app(); a.Current.N != 2 || !a.Ready {
			t.Fatalf("after: %+v", a)
		}
		h.stop()
	})
}

// A full restart whose new generation misses its gate fails, and so does
// a restart that joined it; nothing serves, so the restart policy takes
// over: with "restart" the next generation starts after the backoff.
func TestRestartMissesGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, g1 := run(t, "--readiness-timeout", "5s", "--restart", "restart", "--restart-backoff", "1s")
		g1.becomeReady()
		synctest.Wait()
		first := call(h.s.Restart)
		g2 := h.w.next()
		second := call(h.s.Restart)
		start := time.Now()
		for _, c := range []chan status.Result{first, second} {
			r := <-c
			if r.OK || !strings.Contains(r.Reason, "generation 2") || r.Pid != 0 {
				t.Fatalf("result %+v, want a failure naming generation 2 and no serving pid", r)
			}
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("answered after %v, want the 5s gate", d)
		}
		if s := g2.signals(); !slices.Contains(s, syscall.SIGKILL) {
			t.Fatalf("generation 2 got %v, want SIGKILL", s)
		}
		g3 := h.w.next()
		if d := time.Since(start); d != 6*time.Second {
			t.Fatalf("generation 3 started %v after the restart, want the gate and a 1s backoff", d)
		}
		g3.becomeReady()
		synctest.Wait()
		if a := h.app(); !a.Ready || a.Current == nil || a.Current.N != 3 || a.Restarts != 1 {
			t.Fatalf("after the policy's restart: %+v", a)
		}
		h.stop()
	})
}

// A restart asked for while a generation that failed its gate is still
// being ended (a stray using its grace) does not join that failed start:
// it waits for the backoff, cuts it short and gets the next start's
// outcome.
func TestRestartAfterFailedGateCutsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := build(t, newWorld(), webArgs("--readiness-timeout", "5s", "--restart", "restart", "--restart-backoff", "10s")...)
		if err != nil {
			t.Fatal(err)
		}
		h.s.procs.leftovers = func(*app, *gen, []procID) { time.Sleep(2 * time.Second) }
		h.start()
		h.w.next()                  // generation 1 never becomes ready
		time.Sleep(6 * time.Second) // its gate failed at 5 s; it is ended by 7 s
		asked := time.Now()
		res := call(h.s.Restart)
		g2 := h.w.next()
		if d := g2.started.Sub(asked); d > time.Second {
			t.Errorf("generation 2 started %v after the restart was asked for, want the backoff cut short", d)
		}
		g2.becomeReady()
		if r := <-res; !r.OK || strings.Contains(r.Reason, "generation 1") {
			t.Errorf("restart answered %+v, want generation 2's outcome", r)
		}
		h.stop()
	})
}
