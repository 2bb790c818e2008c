package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/takeover"
	"github.com/entrypoint/entrypoint/watch"
)

type opKind int

const (
	opSwap opKind = iota
	opRestart
)

func (o opKind) String() string {
	if o == opRestart {
		return "restart"
	}
	return "reload"
}

// errStopping aborts whatever an app was doing when shutdown begins.
var errStopping = errors.New("shutting down")

// killWait bounds the wait for a process group after SIGKILL; only a
// process stuck in uninterruptible sleep outlives it.
const killWait = 5 * time.Second

// request is a reload or restart asked for by a user. ctx is the asker's:
// a request whose asker gave up is skipped, not run later.
type request struct {
	ctx    context.Context
	op     opKind
	reason string
	reply  chan status.Result
}

// begins says whether r may start now: its asker is still waiting and the
// WithStartCheck hook, if any, agrees.
func (r request) begins(app string) bool { return status.Begins(r.ctx, app) }

// gen is one generation: one start of the app's command.
type gen struct {
	n       int
	pid     int
	started time.Time
	notify  *graceful.Notify
	take    *genTakeover  // nil without the bind takeover
	pidfd   *pidfd        // nil without kernel support
	exited  chan struct{} // closed once exit is set
	exit    reaper.Exit

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

// app is the state machine of one configured app. Its run goroutine is the
// only one that starts generations and decides what the app does next;
// draining generations end in goroutines of their own, so the run loop
// always watches the current generation. Other goroutines talk to it
// through reqs and stop, and read its status under Supervisor.mu.
type app struct {
	s          *Supervisor
	log        *slog.Logger
	cfg        config.App
	sockets    *graceful.Sockets
	gate       graceful.Gate
	watcher    *watch.Watcher
	foreground bool
	// takeover is true when generations get the bind takeover;
	// takeoverState says why not otherwise (status, metrics).
	takeover      bool
	takeoverState string

	reqs     chan request
	stopCh   chan struct{}
	stopOnce sync.Once

	// run goroutine only
	genN         int
	backoff      time.Duration
	lastExitCode int
	needRecover  bool // a restart could not start the app: apply the policy

	// guarded by Supervisor.mu
	stopSig        syscall.Signal
	state          status.State
	everReady      bool
	pendingSigs    []syscall.Signal
	cur            *gen
	others         []*gen // starting or draining beside cur
	restarts       int
	consecutive    int // quick failures in a row
	lastAction     *status.Result
	lastChange     *status.Result
	exitCode       *int
	endedContainer bool
	watchErr       string    // why the config watch is not running; "" while it runs
	watchSince     time.Time // when it stopped
	validating     *status.Validation
	// failedWhenStopped: shutdown found the app waiting in its restart
	// backoff after a failure, so its exit code is its own, not ours.
	failedWhenStopped bool
}

func newApp(s *Supervisor, cfg config.App, foreground bool) (*app, error) {
	a := &app{
		s:          s,
		log:        s.log.With("app", cfg.Name),
		cfg:        cfg,
		foreground: foreground,
		reqs:       make(chan request, 64),
		stopCh:     make(chan struct{}),
		state:      status.StateStarting,
		backoff:    cfg.Restart.Backoff.D(),
	}
	gate, err := graceful.NewGate(cfg.Readiness)
	if err != nil {
		return nil, fmt.Errorf("app %s: readiness: %w", cfg.Name, err)
	}
	a.gate = gate
	if len(cfg.Listen) > 0 {
		socks, err := graceful.Bind(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", cfg.Name, err)
		}
		a.sockets = socks
		if err := a.setupTakeover(); err != nil {
			socks.Close()
			return nil, err
		}
	}
	if len(cfg.Watch) > 0 {
		for _, w := range watch.SubPathWarnings(cfg.Watch) {
			a.log.Warn(w)
		}
		w, err := watch.New(watch.Options{Paths: cfg.Watch, Debounce: cfg.WatchDebounce.D(), Logger: a.log})
		if err != nil {
			if a.sockets != nil {
				a.sockets.Close()
			}
			return nil, fmt.Errorf("app %s: watch: %w", cfg.Name, err)
		}
		a.watcher = w
	}
	return a, nil
}

// run is the app's goroutine: first start, then requests, exits and
// config changes until the app ends for good.
func (a *app) run() {
	var changes <-chan watch.Change
	if a.watcher != nil {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		changes = a.watchLoop(ctx, a.watcher)
	}
	if !a.startFirst() {
		return
	}
	for {
		var curExited <-chan struct{}
		if g := a.current(); g != nil {
			curExited = g.exited
		}
		select {
		case <-a.stopCh:
			a.stopAll()
			return
		case <-curExited:
			if !a.onExit() {
				return
			}
		case r := <-a.reqs:
			a.handle(r)
		case c, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			a.onChange(c)
		}
		if a.needRecover {
			a.needRecover = false
			if !a.afterFailure(nil) {
				return
			}
		}
	}
}

// stopping reports whether shutdown has begun.
func (a *app) stopping() bool {
	select {
	case <-a.stopCh:
		return true
	default:
		return false
	}
}

// startFirst starts generation 1 and waits for its gate, applying the
// restart policy on failure. It returns false when the app ended.
func (a *app) startFirst() bool {
	g, err := a.spawn()
	if err != nil {
		a.log.Error("start app failed", "err", err)
		a.lastExitCode = spawnExitCode(err)
		return a.afterFailure(nil)
	}
	a.setCurrent(g)
	if err := a.await(g); err != nil {
		if errors.Is(err, errStopping) {
			a.stopAll()
			return false
		}
		a.log.Error("app not ready", "generation", g.n, "pid", g.pid, "err", err)
		a.kill(g)
		return a.onExit()
	}
	a.markReady(g, nil)
	return true
}

// spawn starts the next generation (not yet gated).
func (a *app) spawn() (*gen, error) {
	env := a.env()
	path, err := lookPath(a.cfg.Command[0], a.cfg.Dir, env)
	if err != nil {
		return nil, err
	}
	var notify *graceful.Notify
	if a.cfg.Readiness.Type == "notify" || a.cfg.Readiness.Type == "auto" || a.cfg.Watchdog > 0 {
		if notify, err = graceful.NewNotify(); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
	}
	var ch *takeover.Channel
	if a.takeover {
		if ch, err = takeover.NewChannel(); err != nil {
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
		Sockets:    a.sockets,
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
	pid, exitCh, err := a.s.reaper.Start(func() (int, error) { return graceful.Spawn(spec) })
	if err != nil {
		a.genN--
		if notify != nil {
			notify.Close()
		}
		if ch != nil {
			ch.Close()
		}
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	g := &gen{n: a.genN, pid: pid, started: time.Now(), notify: notify, exited: make(chan struct{}), phase: status.PhaseStarting}
	g.pidfd = openPidfd(pid, exitCh) // before anyone reads exitCh
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
func (a *app) await(g *gen) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	t := graceful.Target{Pid: g.pid, Notify: g.notify, Reaper: a.s.reaper, Env: a.env(), Sockets: a.sockets}
	if g.take != nil {
		t.Listened, t.Unlistened = g.take.listened, g.take.Unlistened
	}
	go func() {
		done <- a.gate.Wait(ctx, t)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("readiness gate: %w", err)
		}
		return nil
	case <-g.exited:
		return fmt.Errorf("exited before it was ready (%s)%s", g.exit, a.bindHint(g))
	case <-a.stopCh:
		return errStopping
	}
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
	a.state = status.StateRunning
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

func (a *app) setState(st status.State) {
	a.s.mu.Lock()
	a.state = st
	a.s.mu.Unlock()
}

// onExit handles the current generation ending on its own. It returns
// false when the app ended for good.
func (a *app) onExit() bool {
	g := a.current()
	a.lastExitCode = g.code()
	// Workers the generation left behind in its group would hold the
	// app's sockets and state: SIGTERM, a short grace, then SIGKILL.
	signalGroup(g.pid, syscall.SIGTERM)
	grace := make(chan struct{})
	t := time.AfterFunc(StrayGrace, func() { close(grace) })
	gone := groupGone(g.pid, grace)
	t.Stop()
	if !gone {
		// Never after the group was seen gone: its pgid may be someone
		// else's by now.
		signalGroup(g.pid, syscall.SIGKILL)
	}
	a.endLeftovers(g, nil)
	return a.afterFailure(g)
}

// afterFailure applies the restart policy after g (nil: a failed spawn)
// ended or failed its gate. It returns false when the app ended for good.
// During the backoff a reload is answered at once (nothing runs to swap)
// and a restart cuts the wait short.
func (a *app) afterFailure(g *gen) bool {
	a.setCurrent(nil)
	if a.cfg.Restart.Policy != "restart" {
		a.stopOthers(0)
		a.end(a.lastExitCode, true)
		return false
	}
	var waiting []request // restarts to answer once the app is back
	answer := func(r status.Result) {
		for _, q := range waiting {
			q.reply <- r
		}
		waiting = nil
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
		a.state = status.StateBackoff
		attempt := a.consecutive
		a.s.mu.Unlock()
		a.s.events.AppRestarted(a.cfg.Name)
		a.log.Warn("restarting app", "in", delay, "attempt", attempt, "last_code", a.lastExitCode)
		timer := time.NewTimer(delay)
	wait:
		for {
			select {
			case <-timer.C:
				break wait
			case <-a.stopCh:
				timer.Stop()
				answer(status.Result{App: a.cfg.Name, Action: "restart", Reason: errStopping.Error(), At: time.Now()})
				a.s.mu.Lock()
				sig := a.stopSig
				a.s.mu.Unlock()
				if sig == 0 {
					sig = a.cfg.StopSignal.Sys()
				}
				a.stopOthers(sig)
				a.end(a.lastExitCode, false)
				a.s.mu.Lock()
				a.failedWhenStopped = a.lastExitCode != 0
				a.s.mu.Unlock()
				return false
			case r := <-a.reqs:
				if !r.begins(a.cfg.Name) {
					continue
				}
				if r.op == opRestart {
					waiting = append(waiting, r)
					timer.Stop()
					break wait
				}
				r.reply <- a.finish(a.result("reload", false, "app is not running (restart backoff after exit code "+fmt.Sprint(a.lastExitCode)+")", nil, time.Now()))
			}
		}
		start := time.Now()
		ng, err := a.spawn()
		if err != nil {
			a.log.Error("start app failed", "err", err)
			a.lastExitCode = spawnExitCode(err)
			if len(waiting) > 0 {
				answer(a.finish(a.result("restart", false, err.Error(), nil, start)))
			}
			g = nil
			continue
		}
		a.setCurrent(ng)
		if err := a.await(ng); err != nil {
			if errors.Is(err, errStopping) {
				answer(status.Result{App: a.cfg.Name, Action: "restart", Reason: err.Error(), At: time.Now()})
				a.stopAll()
				return false
			}
			a.log.Error("app not ready", "generation", ng.n, "pid", ng.pid, "err", err)
			a.kill(ng)
			a.lastExitCode = ng.code()
			a.setCurrent(nil)
			if len(waiting) > 0 {
				answer(a.finish(a.result("restart", false, fmt.Sprintf("generation %d (pid %d) %v", ng.n, ng.pid, err), nil, start)))
			}
			g = ng
			continue
		}
		a.markReady(ng, nil)
		if len(waiting) > 0 {
			answer(a.finish(a.result("restart", true, "", nil, start)))
		}
		return true
	}
}

// end records that the app is over; endedContainer says its own end (not
// a shutdown) ends the container.
func (a *app) end(code int, endedContainer bool) {
	a.s.mu.Lock()
	a.exitCode = &code
	a.endedContainer = endedContainer
	a.state = status.StateExited
	if code != 0 && endedContainer {
		a.state = status.StateFailed
	}
	a.s.mu.Unlock()
}

// request queues op for the run goroutine and waits for its outcome.
func (a *app) request(ctx context.Context, op opKind, reason string) (status.Result, error) {
	r := request{ctx: ctx, op: op, reason: reason, reply: make(chan status.Result, 1)}
	select {
	case a.reqs <- r:
	case <-a.stopCh:
		return status.Result{}, fmt.Errorf("%s %s: %w", op, a.cfg.Name, errStopping)
	case <-ctx.Done():
		return status.Result{}, ctx.Err()
	}
	select {
	case res := <-r.reply:
		return res, nil
	case <-a.stopCh:
		return status.Result{}, fmt.Errorf("%s %s: %w", op, a.cfg.Name, errStopping)
	case <-ctx.Done():
		return status.Result{}, ctx.Err()
	}
}

// handle runs one request. Requests of the same kind that queued up
// meanwhile collapse into it and all get its result: a burst of SIGUSR1s
// is one swap, a burst of SIGUSR2s one restart (queued restarts run one
// after another would each stop a generation that had just come up).
func (a *app) handle(r request) {
	if !r.begins(a.cfg.Name) {
		return
	}
	batch := []request{r}
	var later []request
drain:
	for {
		select {
		case q := <-a.reqs:
			switch {
			case q.op == r.op:
				if q.begins(a.cfg.Name) {
					batch = append(batch, q)
				}
			case q.ctx.Err() != nil:
			default:
				later = append(later, q)
			}
		default:
			break drain
		}
	}
	var res status.Result
	if r.op == opSwap {
		res = a.swap(r.reason)
	} else {
		res = a.restart(r.reason)
	}
	for _, q := range batch {
		q.reply <- res
	}
	for _, q := range later {
		if a.needRecover || a.stopping() {
			q.reply <- a.result(q.op.String(), false, "app is not running", nil, time.Now())
			continue
		}
		a.handle(q)
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
	a.setState(status.StateSwapping)
	a.log.Info("hot swap", "from", old.n, "pid", old.pid, "reason", reason)
	g, err := a.spawn()
	if err != nil {
		a.setState(status.StateRunning)
		return a.finish(a.result("reload", false, err.Error(), old, start))
	}
	a.addOther(g)
	if err := a.await(g); err != nil {
		if errors.Is(err, errStopping) {
			// stopAll owns g now: it is among the others.
			return a.result("reload", false, err.Error(), old, start)
		}
		a.kill(g)
		a.removeOther(g)
		a.setState(status.StateRunning)
		return a.finish(a.result("reload", false, fmt.Sprintf("generation %d (pid %d) %v; generation %d keeps serving", g.n, g.pid, err, old.n), old, start))
	}
	a.markReady(g, old)
	res := a.finish(a.result("reload", true, "", old, start))
	go a.drain(old)
	return res
}

// drain ends an old generation after a swap, in its own goroutine so the
// run loop keeps watching the new one: stop signal, drain timeout, then
// SIGKILL of its process group. Shutdown may signal it again meanwhile.
func (a *app) drain(g *gen) {
	sig := a.cfg.StopSignal.Sys()
	known := descendantsOf(g.pid) // while the tree still links them to g
	a.send(g, sig)
	expired := make(chan struct{})
	t := time.AfterFunc(a.cfg.DrainTimeout.D(), func() { close(expired) })
	defer t.Stop()
	if !a.settle(g, sig, expired) {
		a.log.Warn("drain timeout, killing", "generation", g.n, "pid", g.pid, "timeout", a.cfg.DrainTimeout.D())
		a.kill(g)
	}
	a.removeOther(g)
	a.endLeftovers(g, known)
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
	if a.s.cfg.SignalTarget == "child" && g.pid > 0 {
		signalGroup(g.pid, sig)
	}
	return groupGone(g.pid, deadline)
}

// restart is DESIGN rule 6: stop N (drain), then start N+1; not ready in
// between, sockets stay open so connections wait in the backlog.
func (a *app) restart(reason string) status.Result {
	start := time.Now()
	old := a.current()
	if a.stopping() {
		return a.result("restart", false, errStopping.Error(), old, start)
	}
	a.setState(status.StateRestarting)
	a.log.Info("full restart", "reason", reason)
	if old != nil && old.alive() {
		a.s.mu.Lock()
		old.phase = status.PhaseDraining
		a.others = append(a.others, old)
		a.cur = nil
		a.s.mu.Unlock()
		sig := a.cfg.StopSignal.Sys()
		known := descendantsOf(old.pid)
		a.send(old, sig)
		expired := make(chan struct{})
		t := time.AfterFunc(a.cfg.DrainTimeout.D(), func() { close(expired) })
		done := make(chan bool, 1)
		go func() { done <- a.settle(old, sig, expired) }()
		select {
		case ok := <-done:
			if !ok {
				a.log.Warn("drain timeout, killing", "generation", old.n, "pid", old.pid, "timeout", a.cfg.DrainTimeout.D())
				a.kill(old)
			}
		case <-a.stopCh:
			// stopAll owns old now: it is among the others. The settle
			// goroutine ends at the deadline.
			return a.result("restart", false, errStopping.Error(), old, start)
		}
		t.Stop()
		a.removeOther(old)
		a.endLeftovers(old, known)
		a.lastExitCode = old.code()
	}
	g, err := a.spawn()
	if err != nil {
		a.lastExitCode = spawnExitCode(err)
		a.needRecover = true
		return a.finish(a.result("restart", false, err.Error(), nil, start))
	}
	a.setCurrent(g)
	if err := a.await(g); err != nil {
		if errors.Is(err, errStopping) {
			return a.result("restart", false, err.Error(), nil, start)
		}
		// The run loop sees the current generation gone and applies the
		// restart policy.
		a.kill(g)
		return a.finish(a.result("restart", false, fmt.Sprintf("generation %d (pid %d) %v", g.n, g.pid, err), nil, start))
	}
	a.markReady(g, nil)
	return a.finish(a.result("restart", true, "", old, start))
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
// and waits, bounded, for g to be reaped.
func (a *app) kill(g *gen) {
	signalGroup(g.pid, syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(killWait):
		a.log.Error("generation did not die after SIGKILL", "generation", g.n, "pid", g.pid)
	}
}

// stopAll is the app's part of shutdown: every generation gets the stop
// signal, then all share one drain deadline, then SIGKILL.
func (a *app) stopAll() {
	a.s.mu.Lock()
	a.state = status.StateStopping
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
	expired := make(chan struct{})
	t := time.AfterFunc(a.cfg.DrainTimeout.D(), func() { close(expired) })
	defer t.Stop()
	a.finishGens(gens, sig, expired)
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
// (not the stray grace) and get sig first unless it is 0.
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
	expired := make(chan struct{})
	t := time.AfterFunc(a.cfg.DrainTimeout.D(), func() { close(expired) })
	defer t.Stop()
	a.finishGens(gens, sig, expired)
}

// stop begins the app's shutdown with sig (0: its stop signal). It never
// blocks.
func (a *app) stop(sig syscall.Signal) {
	a.s.mu.Lock()
	a.stopSig = sig
	a.s.mu.Unlock()
	a.stopOnce.Do(func() { close(a.stopCh) })
}

// signal forwards sig to the current generation; before the app was ever
// ready it is queued, so a signal sent in the first instant is not lost.
func (a *app) signal(sig syscall.Signal) {
	a.s.mu.Lock()
	if !a.everReady {
		a.pendingSigs = append(a.pendingSigs, sig)
		a.s.mu.Unlock()
		a.log.Info("signal queued until the app is ready", "signal", config.SignalName(sig))
		return
	}
	g := a.cur
	a.s.mu.Unlock()
	if g == nil || !g.alive() {
		a.log.Warn("signal dropped: app not running", "signal", config.SignalName(sig))
		return
	}
	a.send(g, sig)
	a.s.events.SignalForwarded(a.cfg.Name, sig)
	a.log.Info("signal forwarded", "signal", config.SignalName(sig), "pid", g.pid)
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
				err = syscall.Kill(g.pid, sig)
			}
		}
	} else {
		err = syscall.Kill(-g.pid, sig)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		a.log.Warn("signal failed", "signal", config.SignalName(sig), "pid", g.pid, "err", err)
	}
}

// onChange handles a watched config change: validate, then act.
func (a *app) onChange(c watch.Change) {
	start := time.Now()
	a.log.Info("config changed", "hash", short(c.Hash), "previous", short(c.Previous))
	record := func(ok bool, result, reason, output string) {
		r := status.Result{App: a.cfg.Name, Action: "config", OK: ok, Reason: reason, Output: output, Duration: time.Since(start), At: time.Now()}
		if cur := a.current(); cur != nil {
			r.To, r.Pid = cur.n, cur.pid
		}
		a.s.mu.Lock()
		a.lastChange = &r
		a.s.mu.Unlock()
		a.s.events.ConfigChange(a.cfg.Name, result)
	}
	outcome := func(ok bool) string {
		if ok {
			return "applied"
		}
		return "swap_failed"
	}
	if len(a.cfg.Validate) > 0 {
		timeout := a.cfg.ValidateTimeout.D()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			select {
			case <-a.stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		a.setValidating(&status.Validation{Command: a.cfg.Validate, Started: time.Now(), Timeout: timeout})
		out, code, err := graceful.Run(ctx, a.s.reaper, graceful.Command{Argv: a.cfg.Validate, Env: a.env(), Dir: a.cfg.Dir, Sockets: a.sockets})
		a.setValidating(nil)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil || code != 0 {
			reason := fmt.Sprintf("validate %v failed: exit code %d", a.cfg.Validate, code)
			switch {
			case timedOut:
				reason = fmt.Sprintf("validate %v did not finish within %s (validateTimeout) and was killed", a.cfg.Validate, timeout)
			case err != nil:
				reason = fmt.Sprintf("validate %v failed: %v", a.cfg.Validate, err)
			}
			a.log.Warn("config rejected, old generation keeps serving", "reason", reason, "output", string(out))
			record(false, "validate_failed", reason, string(out))
			return
		}
	}
	if name, ok := strings.CutPrefix(a.cfg.OnChange, "signal:"); ok {
		// config validated the name at load time.
		sig, _ := config.ParseSignal(name)
		a.signal(sig)
		record(true, "signalled", "sent "+config.SignalName(sig), "")
		return
	}
	var r status.Result
	if a.cfg.OnChange == "restart" {
		r = a.restart("config changed")
	} else {
		r = a.swap("config changed")
	}
	record(r.OK, outcome(r.OK), r.Reason, "")
}

func (a *app) setValidating(v *status.Validation) {
	a.s.mu.Lock()
	a.validating = v
	a.s.mu.Unlock()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// env is the environment of every command run for the app (generations,
// validate, exec gate): one builder, so the rules cannot drift apart.
func (a *app) env() []string {
	return graceful.CommandEnv(a.cfg.Env)
}

func (a *app) statusLocked() status.AppStatus {
	st := status.AppStatus{
		Name: a.cfg.Name, State: a.state,
		Restarts: a.restarts, LastAction: a.lastAction, LastChange: a.lastChange, ExitCode: a.exitCode,
	}
	if a.sockets != nil {
		st.Listen = a.sockets.Addrs()
	}
	st.Takeover = a.takeoverState
	g := a.cur
	serving := g != nil && g.phase == status.PhaseReady && g.alive()
	// Ready is derived, never stored: someone ready serves and nothing
	// is shutting down or fully restarting.
	st.Ready = serving && (a.state == status.StateRunning || a.state == status.StateSwapping) && !a.s.shuttingDown
	// A crash loop ends once a generation stayed ready for StableAfter.
	stable := serving && time.Since(g.readyAt) >= a.cfg.Restart.StableAfter.D()
	st.CrashLoop = a.cfg.Restart.Policy == "restart" && a.consecutive >= a.cfg.Restart.CrashLoop && !stable
	if g != nil && g.alive() {
		st.Current = &status.Generation{N: g.n, Pid: g.pid, Started: g.started, Phase: g.phase, Status: g.status}
		if wd := a.cfg.Watchdog.D(); wd > 0 && g.phase == status.PhaseReady && time.Since(g.lastWatchdog) > wd {
			st.WatchdogExpired = true
		}
	}
	st.Validating = a.validating
	if len(a.cfg.Watch) > 0 {
		st.Watch = &status.WatchStatus{Paths: a.cfg.Watch, OK: a.watchErr == "", Error: a.watchErr}
		if a.watchErr != "" {
			st.Watch.Since = a.watchSince
		}
	}
	for _, o := range a.others {
		if o.alive() {
			st.Others = append(st.Others, status.Generation{N: o.n, Pid: o.pid, Started: o.started, Phase: o.phase, Status: o.status})
		}
	}
	return st
}
