package earlysig

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// First and the background rest together are exactly Catchable, once each.
func TestFirstAndRestCoverCatchable(t *testing.T) {
	seen := map[os.Signal]int{}
	for _, s := range append(First(), rest()...) {
		seen[s]++
	}
	for _, s := range Catchable() {
		if seen[s] != 1 {
			t.Errorf("%v registered %d times, want once", s, seen[s])
		}
		delete(seen, s)
	}
	for s := range seen {
		t.Errorf("%v registered but not catchable", s)
	}
}

// Once Wait returns, every catchable signal sent to the process arrives on
// Incoming, none is left to the Go runtime's defaults (which would end this
// test binary on SIGTERM or drop a realtime signal). The test binary runs
// the package's init like the entrypoint binary does.
func TestEverySignalCaughtAfterWait(t *testing.T) {
	Wait()
	for _, s := range Catchable() {
		if err := syscall.Kill(os.Getpid(), s.(syscall.Signal)); err != nil {
			t.Fatalf("kill %v: %v", s, err)
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case got := <-Incoming():
				if got == s {
					break wait
				}
				// A signal from elsewhere (SIGPIPE, SIGWINCH of a
				// terminal): not ours.
			case <-timeout:
				t.Fatalf("%v never arrived on Incoming", s)
			}
		}
	}
}
