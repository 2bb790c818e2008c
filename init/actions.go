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

// request queues op for the run goroutine and waits for its outcome.
func (a *app) request(ctx context.Context, op opKind, reason string) (status.Result, error) {
	r := request{ctx: ctx, op: op, reason: reason, reply: make(chan status.Result, 1)}
	stopped := func() error { return fmt.Errorf("%s %s: %w", op, a.cfg.Name, errStopping) }
	select {
	case a.reqs <- r:
	case <-a.ctx.Done():
		return status.Result{}, stopped()
	case <-a.done:
		return status.Result{}, stopped()
	case <-ctx.Done():
		return status.Result{}, ctx.Err()
	}
	select {
	case res := <-r.reply:
		return res, nil
	case <-a.ctx.Done():
		return status.Result{}, stopped()
	case <-a.done:
		return status.Result{}, stopped()
	case <-ctx.Done():
		return status.Result{}, ctx.Err()
	}
}

// handle runs one request. Requests of the same kind that queued up
// meanwhile collapse into it and all get its result: a burst of SIGUSR1s
// is one swap, a burst of SIGUSR2s one restart. Requests of the other
// kind keep their turn in parked.
func (a *app) handle(r request) {
	if !r.begins(a.cfg.Name) {
		return
	}
	for pulled := true; pulled; {
		select {
		case q := <-a.reqs:
			a.parked = append(a.parked, q)
		default:
			pulled = false
		}
	}
	batch := []request{r}
	a.parked = slices.DeleteFunc(a.parked, func(q request) bool {
		if q.op != r.op {
			return false
		}
		if q.begins(a.cfg.Name) {
			batch = append(batch, q)
		}
		return true
	})
	var res status.Result
	if r.op == opSwap {
		res = a.swap(r.reason)
	} else {
		// Restarts asked for while this one brings its generation up
		// join it (issue 12): run afterwards, each would stop a
		// generation that had only just become ready.
		a.joinable, a.joined = true, slices.Clone(batch[1:])
		res = a.restart(r.reason)
		a.joinable = false
		batch = append([]request{r}, a.joined...)
		a.joined = nil
	}
	for _, q := range batch {
		q.reply <- res
	}
}

func (a *app) result(op string, ok bool, reason string, from *gen, start time.Time) status.Result {
	r := status.Result{App: a.cfg.Name, Action: op, OK: ok, Reason: reason, Duration: time.Since(start), At: time.Now()}
	if from != nil {
		r.From, r.To, r.Pid = from.n, from.n, from.pid
	}
	if cur := a.current(); cur != nil {
		r.To, r.Pid = cur.n, cur.pid
	}
	return r
}

func (a *app) finish(r status.Result) status.Result {
	a.s.mu.Lock()
	a.lastAction = &r
	a.s.mu.Unlock()
	a.s.events.ActionDone(r)
	if r.OK {
		a.log.Info(r.Action+" done", "from", r.From, "to", r.To, "pid", r.Pid, "duration", r.Duration)
	} else {
		a.log.Warn(r.Action+" failed", "reason", r.Reason, "serving", r.Pid, "duration", r.Duration)
	}
	return r
}

// swap is DESIGN rule 5: start N+1, gate, then drain N; on failure N+1 is
// killed and N keeps serving. Readiness stays true throughout.
func (a *app) swap(reason string) status.Result {
	start := time.Now()
	old := a.current()
	if a.stopping() {
		return a.result("reload", false, errStopping.Error(), old, start)
	}
	if old == nil || !old.alive() {
		return a.finish(a.result("reload", false, "no generation is running", old, start))
	}
	a.transition(status.StateSwapping)
	a.log.Info("hot swap", "from", old.n, "pid", old.pid, "reason", reason)
	g, err := a.spawn(true)
	if err != nil {
		a.transition(status.StateRunning)
		return a.finish(a.result("reload", false, err.Error(), old, start))
	}
	a.addOther(g)
	err = a.await(g)
	if err == nil {
		// New connections go to g's own sockets from now on (steered
		// listeners); old's queues only empty.
		if serr := a.steer(g, old); serr != nil {
			err = serr
		}
	}
	if err != nil {
		if errors.Is(err, errStopping) {
			// stopAll owns g now: it is among the others.
			return a.result("reload", false, err.Error(), old, start)
		}
		a.busy(func() {
			a.kill(g)
			a.endGroup(g)
		})
		a.release(g)
		a.removeOther(g)
		a.transition(status.StateRunning)
		return a.finish(a.result("reload", false, fmt.Sprintf("generation %d (pid %d) %v; generation %d keeps serving", g.n, g.pid, err, old.n), old, start))
	}
	a.markReady(g, old)
	res := a.finish(a.result("reload", true, "", old, start))
	a.drains.Add(1)
	go func() {
		defer a.drains.Done()
		a.drain(old)
	}()
	return res
}

// drain ends an old generation after a swap, in its own goroutine so the
// run loop keeps watching the new one. Shutdown may signal it again
// meanwhile; the drain still runs to its end.
func (a *app) drain(g *gen) {
	a.drainAccepted(g)
	a.stopOld(context.Background(), g, func(f func()) { f() })
}

// stopOld ends old generation g: its stop signal, up to the drain timeout
// for it and its process group to end, then SIGKILL; then what it left
// outside its group. It returns false when ctx ended first (shutdown
// began): stopAll owns g then, as one of the others, with a drain
// deadline of its own. long runs the waits: the run loop passes busy,
// so it keeps answering while it waits (but not while it signals).
func (a *app) stopOld(ctx context.Context, g *gen, long func(func())) bool {
	sig := a.cfg.StopSignal.Sys()
	known := a.s.procs.descendants(g.pid) // while the tree still links them to g
	a.send(g, sig)
	dctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout.D())
	var settled bool
	long(func() { settled = a.settle(g, sig, dctx.Done()) })
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if !settled {
		a.log.Warn("drain timeout, killing", "generation", g.n, "pid", g.pid, "timeout", a.cfg.DrainTimeout.D())
		long(func() { a.kill(g) })
	}
	a.removeOther(g)
	long(func() { a.s.procs.leftovers(a, g, known) })
	a.release(g)
	return true
}

// settle waits until g's leader exited and the rest of its process group
// is gone too (workers finishing their requests), or deadline closes; it
// says whether everything ended in time. With signalTarget "child" only the
// leader got sig; workers it left behind get it once it is gone.
func (a *app) settle(g *gen, sig syscall.Signal, deadline <-chan struct{}) bool {
	select {
	case <-g.exited:
	case <-deadline:
		return false
	}
	if a.s.cfg.SignalTarget == "child" {
		a.signalGroup(g, sig)
	}
	return a.s.procs.groupGone(g.pid, deadline)
}

// restart is DESIGN rule 6: stop N (drain), then start N+1; not ready in
// between, sockets stay open so connections wait in the backlog.
func (a *app) restart(reason string) status.Result {
	start := time.Now()
	old := a.current()
	if a.stopping() {
		return a.result("restart", false, errStopping.Error(), old, start)
	}
	a.transition(status.StateRestarting)
	a.log.Info("full restart", "reason", reason)
	if old != nil && old.alive() {
		a.s.mu.Lock()
		old.phase = status.PhaseDraining
		a.others = append(a.others, old)
		a.cur = nil
		a.s.mu.Unlock()
		if !a.stopOld(a.ctx, old, a.busy) {
			return a.result("restart", false, errStopping.Error(), old, start)
		}
		a.lastExitCode = old.code()
	}
	_, r, err := a.bringUp(old, start)
	switch {
	case errors.Is(err, errStopping):
		return r
	case err != nil:
		// Nothing runs: the run loop applies the restart policy.
		a.needRecover = true
	}
	return a.finish(r)
}
