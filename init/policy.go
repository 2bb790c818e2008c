package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// onExit handles the current generation ending on its own. It returns
// false when the app ended for good.
func (a *app) onExit() bool {
	g := a.current()
	a.lastExitCode = g.code()
	a.busy(func() { a.endGroup(g) })
	a.release(g)
	return a.afterFailure(g)
}

// endGroup ends what an exited generation left: workers in its group
// would hold the app's sockets and state, so SIGTERM, a short grace, then
// SIGKILL; then what escaped the group.
func (a *app) endGroup(g *gen) {
	a.signalGroup(g, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), StrayGrace)
	gone := a.s.procs.groupGone(g.pid, ctx.Done())
	cancel()
	if !gone {
		// Never after the group was seen gone: its pgid may be someone
		// else's by now.
		a.signalGroup(g, syscall.SIGKILL)
	}
	a.s.procs.leftovers(a, g, nil)
}

// afterFailure applies the restart policy after g (nil: a failed spawn)
// ended or failed its gate. It returns false when the app ended for good.
// During the backoff a reload is answered at once (nothing runs to swap)
// and a restart cuts the wait short and joins the start that follows.
func (a *app) afterFailure(g *gen) bool {
	a.setCurrent(nil)
	if a.cfg.Restart.Policy != "restart" {
		a.busy(func() { a.stopOthers(0) })
		a.end(a.lastExitCode, true)
		return false
	}
	for {
		// A run counts as stable when it was ready for StableAfter; one
		// that never passed its gate is a quick failure.
		stable := g != nil && !g.readyAt.IsZero() && time.Since(g.readyAt) >= a.cfg.Restart.StableAfter.D()
		if stable {
			a.backoff = a.cfg.Restart.Backoff.D()
		}
		delay := a.backoff
		a.backoff = min(2*a.backoff, a.cfg.Restart.MaxBackoff.D())
		a.s.mu.Lock()
		if stable {
			a.consecutive = 0
		}
		a.consecutive++
		a.restarts++
		a.transitionLocked(status.StateBackoff)
		attempt := a.consecutive
		a.s.mu.Unlock()
		a.s.events.AppRestarted(a.cfg.Name)
		a.log.Warn("restarting app", "in", delay, "attempt", attempt, "last_code", a.lastExitCode)
		if !a.backoffWait(delay) {
			a.stopInBackoff()
			return false
		}
		ng, err := a.startGen()
		switch {
		case errors.Is(err, errStopping):
			return false
		case err != nil:
			g = ng
			continue
		}
		return true
	}
}

// backoffWait waits out the restart backoff delay and says whether to
// start again (false: shutdown began). Requests parked before it and read
// during it are answered here: a restart cuts the wait short and joins
// the start that follows, a reload is told at once that nothing runs.
func (a *app) backoffWait(delay time.Duration) bool {
	ctx, cancel := context.WithTimeout(a.ctx, delay)
	defer cancel()
	cut := false
	parked := a.parked
	a.parked = nil
	for _, r := range parked {
		cut = a.duringBackoff(r) || cut
	}
	for !cut {
		select {
		case <-ctx.Done():
			return !a.stopping()
		case reply := <-a.ping:
			close(reply)
		case r := <-a.reqs:
			cut = a.duringBackoff(r)
		}
	}
	return true
}

// duringBackoff answers or keeps one request read during the backoff and
// says whether it cuts the backoff short.
func (a *app) duringBackoff(r request) bool {
	if !r.begins(a.cfg.Name) {
		return false
	}
	if r.op == opRestart {
		a.joined = append(a.joined, r)
		return true
	}
	r.reply <- a.finish(a.result("reload", false, fmt.Sprintf("app is not running (restart backoff after exit code %d)", a.lastExitCode), nil, time.Now()))
	return false
}

// stopInBackoff is shutdown reaching an app that waits to restart: the
// generations still draining get the stop signal and their drain timeout;
// the app's code stays its own failure's.
func (a *app) stopInBackoff() {
	a.answerJoined(status.Result{App: a.cfg.Name, Action: "restart", Reason: errStopping.Error(), At: time.Now()})
	a.s.mu.Lock()
	a.transitionLocked(status.StateStopping)
	sig := a.stopSig
	a.s.mu.Unlock()
	if sig == 0 {
		sig = a.cfg.StopSignal.Sys()
	}
	a.busy(func() { a.stopOthers(sig) })
	a.end(a.lastExitCode, false)
	a.s.mu.Lock()
	a.failedWhenStopped = a.lastExitCode != 0
	a.s.mu.Unlock()
}

// end records that the app is over; endedContainer says its own end (not
// a shutdown) ends the container.
func (a *app) end(code int, endedContainer bool) {
	a.s.mu.Lock()
	a.exitCode = &code
	a.endedContainer = endedContainer
	to := status.StateExited
	if code != 0 && endedContainer {
		to = status.StateFailed
	}
	a.transitionLocked(to)
	a.s.mu.Unlock()
}

// stopAll is the app's part of shutdown: every generation gets the stop
// signal, then all share one drain deadline, then SIGKILL.
func (a *app) stopAll() {
	a.s.mu.Lock()
	a.transitionLocked(status.StateStopping)
	sig := a.stopSig
	gens := slices.Clone(a.others)
	cur := a.cur
	if cur != nil {
		gens = append(gens, cur)
	}
	a.s.mu.Unlock()
	if sig == 0 {
		sig = a.cfg.StopSignal.Sys()
	}
	for _, g := range gens {
		if g.alive() {
			a.send(g, sig)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout.D())
	a.busy(func() { a.finishGens(gens, sig, ctx.Done()) })
	cancel()
	// The code is the serving generation's; without one (shutdown during a
	// full restart) the newest generation's.
	code := a.lastExitCode
	if cur == nil && len(gens) > 0 {
		cur = slices.MaxFunc(gens, func(x, y *gen) int { return x.n - y.n })
	}
	if cur != nil {
		code = cur.code()
	}
	a.end(code, false)
}

// finishGens waits for each of gens to settle by deadline and SIGKILLs,
// right then, only those that did not: a group seen gone is never
// signalled again, since its pgid may already be someone else's.
func (a *app) finishGens(gens []*gen, sig syscall.Signal, deadline <-chan struct{}) {
	for _, g := range gens {
		if !a.settle(g, sig, deadline) {
			a.log.Warn("drain timeout, killing", "generation", g.n, "pid", g.pid)
			a.kill(g)
		}
	}
}

// stopOthers ends the generations still draining beside a current one
// that is gone, when the app itself ends: they keep their drain timeout
// (not the stray grace) and get sig first unless it is 0. It blocks: the
// run loop calls it through busy.
func (a *app) stopOthers(sig syscall.Signal) {
	a.s.mu.Lock()
	gens := slices.Clone(a.others)
	a.s.mu.Unlock()
	if len(gens) == 0 {
		return
	}
	for _, g := range gens {
		if sig != 0 && g.alive() {
			a.send(g, sig)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout.D())
	defer cancel()
	a.finishGens(gens, sig, ctx.Done())
}
