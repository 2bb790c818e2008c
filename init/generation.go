package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/takeover"
)

// gen is one generation: one start of the app's command.
type gen struct {
	n       int
	pid     int
	started time.Time
	notify  *graceful.Notify
	take    *genTakeover // nil without the bind takeover
	// socks are the sockets g accepts on: the app's own for a steered
	// listener (released once g is gone), the shared ones otherwise.
	socks    *graceful.Sockets
	released sync.Once
	pidfd    *pidfd        // nil without kernel support
	exited   chan struct{} // closed once exit is set
	exit     reaper.Exit

	// guarded by Supervisor.mu
	phase        status.Phase
	status       string
	readyAt      time.Time
	lastWatchdog time.Time
}

func (g *gen) alive() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// code is g's exit code, or 137 when its exit never arrived (a process
// stuck after SIGKILL): never a made-up 0.
func (g *gen) code() int {
	if g.alive() {
		return 128 + int(syscall.SIGKILL)
	}
	return g.exit.Code()
}

// spawn starts the next generation (not yet gated). With swap it gets
// sockets of its own where listeners are steered (a hot swap: the old
// generation keeps the new connections until this one is ready);
// otherwise the ones new connections go to now.
func (a *app) spawn(swap bool) (*gen, error) {
	env := a.env()
	path, err := a.s.procs.lookPath(a.cfg.Command[0], a.cfg.Dir, env)
	if err != nil {
		return nil, err
	}
	var socks *graceful.Sockets
	if swap {
		socks, err = a.sockets.Next()
	} else {
		socks, err = a.sockets.Current()
	}
	if err != nil {
		return nil, err
	}
	var notify *graceful.Notify
	if a.cfg.Readiness.Type == "notify" || a.cfg.Readiness.Type == "auto" || a.cfg.Watchdog > 0 {
		if notify, err = graceful.NewNotify(); err != nil {
			socks.Release()
			return nil, fmt.Errorf("notify socket: %w", err)
		}
		notify.SetLogger(a.log)
	}
	var ch *takeover.Channel
	if a.takeover {
		if ch, err = takeover.NewChannel(); err != nil {
			socks.Release()
			if notify != nil {
				notify.Close()
			}
			return nil, err
		}
	}
	a.genN++
	spec := graceful.Spec{
		Path:       path,
		Argv:       a.cfg.Command,
		Env:        env,
		Dir:        a.cfg.Dir,
		Sockets:    socks,
		Generation: a.genN,
		Notify:     notify,
		Watchdog:   a.cfg.Watchdog.D(),
		Stdin:      a.s.stdio[0],
		Stdout:     a.s.stdio[1],
		Stderr:     a.s.stdio[2],
		Foreground: a.foreground,
	}
	if ch != nil {
		spec.Takeover = ch.Child()
	}
	pid, exitCh, err := a.s.procs.start(spec)
	if err != nil {
		a.genN--
		socks.Release()
		if notify != nil {
			notify.Close()
		}
		if ch != nil {
			ch.Close()
		}
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	g := &gen{n: a.genN, pid: pid, started: time.Now(), notify: notify, socks: socks, exited: make(chan struct{}), phase: status.PhaseStarting}
	g.pidfd = a.s.procs.pidfd(pid, exitCh) // before anyone reads exitCh
	if ch != nil {
		g.take = a.startTakeover(g, ch)
	}
	if notify != nil {
		notify.Attach(pid)
		go a.readNotify(g)
	}
	go func() {
		g.exit = <-exitCh
		// Log before anyone can learn of the exit: the last generation's
		// line must not be lost to the init exiting first.
		a.log.Info("app exited", "generation", g.n, "pid", g.pid, "status", g.exit.String(), "code", g.exit.Code())
		close(g.exited)
		g.pidfd.close()
		if notify != nil {
			notify.Close()
		}
		g.take.close()
	}()
	a.log.Info("app started", "generation", g.n, "pid", pid, "command", a.cfg.Command)
	return g, nil
}

// release gives g's sockets back once none of its processes can accept
// on them any more: its group was seen gone, or killed. Idempotent.
func (a *app) release(g *gen) {
	g.released.Do(g.socks.Release)
}

// steer sends new connections to g's sockets (a hot swap's new
// generation, just ready). If that fails part-way, they go back to old's.
func (a *app) steer(g, old *gen) error {
	err := g.socks.Steer()
	if err != nil {
		if rerr := old.socks.Steer(); rerr != nil {
			a.log.Error("steer back to the old generation", "generation", old.n, "err", rerr)
		}
	}
	return err
}

// drainAccepted runs before a swapped-out generation gets its stop signal:
// with steered listeners no new connection reaches g any more, so wait
// (at most acceptWait) until g took everything already in its accept
// queues, then acceptSettle for it to read what it accepted last. A server
// that closes idle connections at its stop signal (uvicorn) would
// otherwise close one it accepted a moment before, unread.
func (a *app) drainAccepted(g *gen) {
	if !g.socks.Steered() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), acceptWait)
	defer cancel()
	go func() {
		select {
		case <-g.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !g.socks.WaitAccepted(ctx) {
		if g.alive() {
			a.log.Warn("old generation did not accept everything in its queue in time; stopping it anyway", "generation", g.n, "pid", g.pid, "waited", acceptWait)
		}
		return
	}
	select {
	case <-time.After(acceptSettle):
	case <-g.exited:
	}
}

// readNotify keeps the sd_notify state of g current: STATUS= for the
// status page, WATCHDOG=1 for liveness.
func (a *app) readNotify(g *gen) {
	for m := range g.notify.Messages() {
		a.s.mu.Lock()
		if m.Status != "" {
			g.status = m.Status
		}
		if m.Watchdog || m.Ready {
			g.lastWatchdog = time.Now()
		}
		a.s.mu.Unlock()
	}
}

// await races g's readiness gate against its exit and against shutdown.
// The gate's goroutine is cancelled and waited for whichever wins, so it
// never outlives the decision.
func (a *app) await(g *gen) error {
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	t := graceful.Target{Pid: g.pid, Notify: g.notify, Reaper: a.s.reaper, Env: a.env(), Sockets: g.socks, Logger: a.log}
	if g.take != nil {
		t.Listened, t.Unlistened = g.take.listened, g.take.Unlistened
	}
	var gateErr error
	gated := make(chan struct{})
	go func() {
		defer close(gated)
		gateErr = a.gate.Wait(ctx, t)
	}()
	won := a.waitFor(gated, g.exited, true)
	cancel()
	a.waitFor(gated, nil, false)
	switch {
	case won == -1 || a.stopping():
		return errStopping
	case won == 1:
		return fmt.Errorf("exited before it was ready (%s)%s", g.exit, a.bindHint(g))
	case gateErr != nil:
		return fmt.Errorf("readiness gate: %w", gateErr)
	}
	return nil
}

// markReady makes g the serving generation; retire, if not nil, becomes a
// draining one in the same step, so no reader ever sees nobody ready.
func (a *app) markReady(g, retire *gen) {
	now := time.Now()
	a.s.mu.Lock()
	if retire != nil {
		a.removeOtherLocked(g)
		retire.phase = status.PhaseDraining
		a.others = append(a.others, retire)
	}
	g.phase = status.PhaseReady
	g.readyAt, g.lastWatchdog = now, now
	a.cur = g
	a.transitionLocked(status.StateRunning)
	first := !a.everReady
	a.everReady = true
	pending := a.pendingSigs
	a.pendingSigs = nil
	a.s.mu.Unlock()
	a.log.Info("app ready", "generation", g.n, "pid", g.pid, "startup", now.Sub(g.started))
	if first {
		// Signals that arrived before the app could take them.
		for _, sig := range pending {
			a.signal(sig)
		}
	}
}

func (a *app) setCurrent(g *gen) {
	a.s.mu.Lock()
	a.cur = g
	a.s.mu.Unlock()
}

func (a *app) current() *gen {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.cur
}

func (a *app) addOther(g *gen) {
	a.s.mu.Lock()
	a.others = append(a.others, g)
	a.s.mu.Unlock()
}

func (a *app) removeOther(g *gen) {
	a.s.mu.Lock()
	a.removeOtherLocked(g)
	a.s.mu.Unlock()
}

func (a *app) removeOtherLocked(g *gen) {
	a.others = slices.DeleteFunc(a.others, func(o *gen) bool { return o == g })
}

// kill SIGKILLs g's process group (the leftovers of an exited leader too)
// and waits, bounded, for g to be reaped. It blocks: the run loop calls it
// through busy.
func (a *app) kill(g *gen) {
	a.signalGroup(g, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	select {
	case <-g.exited:
	case <-ctx.Done():
		a.log.Error("generation did not die after SIGKILL", "generation", g.n, "pid", g.pid)
	}
}

// send delivers sig to g's process group, or to its leader alone with
// signalTarget "child". ESRCH is a warning, not a failure (tini). A pid
// below 1 would address our own group or every process: never.
func (a *app) send(g *gen, sig syscall.Signal) {
	if g.pid < 1 {
		return
	}
	var err error
	if a.s.cfg.SignalTarget == "child" {
		// Through the pidfd: a leader reaped meanwhile cannot be confused
		// with a process that got its pid.
		if err = g.pidfd.signal(sig); errors.Is(err, errNoPidfd) {
			err = nil
			if g.alive() {
				err = a.s.procs.kill(g.pid, sig)
			}
		}
	} else {
		err = a.s.procs.kill(-g.pid, sig)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		a.log.Warn("signal failed", "signal", config.SignalName(sig), "pid", g.pid, "err", err)
	}
}
