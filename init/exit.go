package supervisor

import (
	"context"
	"slices"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
)

// exitCode is the init's exit code: the code of the app whose own end
// ended the container; after a shutdown, the first non-zero code of any
// app (the init never exits 0 while an app failed, one waiting in its
// restart backoff included). --success-exit-codes
// map codes to 0 first.
func (s *Supervisor) exitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ended, endedCode, firstFailed, backoffFailed := false, 0, 0, 0
	for _, a := range s.apps {
		if a.exitCode == nil {
			continue
		}
		c := *a.exitCode
		if slices.Contains(s.cfg.SuccessExitCodes, c) {
			c = 0
		}
		if a.failedWhenStopped && backoffFailed == 0 {
			// It had failed on its own before anyone stopped it.
			backoffFailed = c
		}
		switch {
		case a.endedContainer:
			// Apps that ended on their own speak; the others were
			// stopped by us because of them, and their 143 is ours.
			ended = true
			if endedCode == 0 {
				endedCode = c
			}
		case firstFailed == 0:
			firstFailed = c
		}
	}
	if ended {
		if endedCode == 0 {
			// Never 0 while an app had failed: one waiting in its
			// restart backoff when another ended the container.
			return backoffFailed
		}
		return endedCode
	}
	return firstFailed
}

// reapStrays ends every process still alive after the apps ended, so the
// container never hangs on a stray daemon: SIGTERM, a short grace, SIGKILL.
// As PID 1 that is everyone in the namespace (kill(-1)); as a subreaper
// only our own descendants, never the rest of the machine.
func (s *Supervisor) reapStrays() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := s.reaper.WaitNoChildren(ctx)
	cancel()
	if err == nil {
		return
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		n := signalStrays(sig)
		if n == 0 {
			return
		}
		s.log.Info("signalling leftover processes", "signal", config.SignalName(sig), "count", n)
		s.reaper.Kick()
		ctx, cancel := context.WithTimeout(context.Background(), StrayGrace)
		err := s.reaper.WaitNoChildren(ctx)
		cancel()
		if err == nil {
			return
		}
	}
}
