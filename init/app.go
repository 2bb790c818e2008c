package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/watch"
	"golang.org/x/sys/unix"
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

type request struct {
	op     opKind
	reason string
	reply  chan Result
}

// gen is one generation: one start of the app's command.
type gen struct {
	n       int
	pid     int
	started time.Time
	notify  *graceful.Notify
	exited  chan struct{} // closed once exit is set
	exit    reaper.Exit

	// guarded by Supervisor.mu
	phase        string
	status       string
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

// app is the state machine of one configured app. Its run goroutine is the
// only one that starts or stops its generations; other goroutines talk to
// it through reqs and stop, and read its status under Supervisor.mu.
type app struct {
	s          *Supervisor
	log        *slog.Logger
	cfg        config.App
	sockets    *graceful.Sockets
	gate       graceful.Gate
	watcher    *watch.Watcher
	foreground bool

	reqs     chan request
	stopCh   chan struct{}
	stopOnce sync.Once

	genN         int // run goroutine only
	backoff      time.Duration
	consecutive  int
	lastExitCode int

	// guarded by Supervisor.mu
	stopSig        syscall.Signal
	state          State
	ready          bool
	everReady      bool
	pendingSigs    []syscall.Signal
	cur            *gen
	others         []*gen
	restarts       int
	crashLoop      bool
	lastAction     *Result
	lastChange     *Result
	exitCode       *int
	endedContainer bool
}

func newApp(s *Supervisor, cfg config.App, foreground bool) (*app, error) {
	a := &app{
		s:          s,
		log:        s.log.With("app", cfg.Name),
		cfg:        cfg,
		foreground: foreground,
		reqs:       make(chan request, 64),
		stopCh:     make(chan struct{}),
		state:      StateStarting,
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
	}
	if len(cfg.Watch) > 0 {
		for _, w := range watch.SubPathWarnings(cfg.Watch) {
			s.log.Warn(w, "app", cfg.Name)
		}
		w, err := watch.New(watch.Options{Paths: cfg.Watch, Debounce: cfg.WatchDebounce.D(), Logger: s.log.With("app", cfg.Name)})
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

func (a *app) logger() *slog.Logger { return a.log }

// run is the app's goroutine: first start, then requests, exits and
// config changes until the app ends for good.
func (a *app) run() {
	var changes <-chan watch.Change
	if a.watcher != nil {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go a.watcher.Run(ctx)
		changes = a.watcher.Changes()
	}
	if !a.startFirst() {
		return
	}
	for {
		var curExited <-chan struct{}
		if a.current() != nil {
			curExited = a.current().exited
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
	}
}

// startFirst starts generation 1 and waits for its gate, applying the
// restart policy on failure. It returns false when the app ended.
func (a *app) startFirst() bool {
	g, err := a.spawn()
	if err != nil {
		a.logger().Error("start app failed", "err", err)
		a.lastExitCode = spawnExitCode(err)
		return a.afterFailure(nil)
	}
	a.setCurrent(g)
	if err := a.await(g); err != nil {
		if errors.Is(err, errStopping) {
			a.stopAll()
			return false
		}
		a.logger().Error("app not ready", "generation", g.n, "pid", g.pid, "err", err)
		a.kill(g)
		return a.onExit()
	}
	a.markReady(g)
	return true
}

// spawn starts the next generation (not yet gated).
func (a *app) spawn() (*gen, error) {
	env := a.env()
	path, err := lookPath(a.cfg.Command[0], env)
	if err != nil {
		return nil, err
	}
	var notify *graceful.Notify
	if a.cfg.Readiness.Type == "notify" || a.cfg.Watchdog > 0 {
		if notify, err = graceful.NewNotify(); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
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
	pid, exitCh, err := a.s.reaper.Start(func() (int, error) { return graceful.Spawn(spec) })
	if err != nil {
		a.genN--
		if notify != nil {
			notify.Close()
		}
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	g := &gen{n: a.genN, pid: pid, started: time.Now(), notify: notify, exited: make(chan struct{}), phase: "starting"}
	if notify != nil {
		notify.Attach(pid)
		go a.readNotify(g)
	}
	go func() {
		g.exit = <-exitCh
		close(g.exited)
		if notify != nil {
			notify.Close()
		}
		a.logger().Info("app exited", "generation", g.n, "pid", g.pid, "status", g.exit.String(), "code", g.exit.Code())
	}()
	a.logger().Info("app started", "generation", g.n, "pid", pid, "command", a.cfg.Command)
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
	go func() {
		done <- a.gate.Wait(ctx, graceful.Target{Pid: g.pid, Notify: g.notify, Reaper: a.s.reaper})
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("readiness gate: %w", err)
		}
		return nil
	case <-g.exited:
		return fmt.Errorf("exited before it was ready (%s)", g.exit)
	case <-a.stopCh:
		return errStopping
	}
}

func (a *app) markReady(g *gen) {
	a.s.mu.Lock()
	g.phase = "ready"
	g.lastWatchdog = time.Now()
	a.cur = g
	a.ready = true
	a.state = StateRunning
	first := !a.everReady
	a.everReady = true
	pending := a.pendingSigs
	a.pendingSigs = nil
	a.s.mu.Unlock()
	a.logger().Info("app ready", "generation", g.n, "pid", g.pid, "startup", time.Since(g.started))
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

func (a *app) setState(st State, ready bool) {
	a.s.mu.Lock()
	a.state, a.ready = st, ready
	a.s.mu.Unlock()
}

// onExit handles the current generation ending on its own. It returns
// false when the app ended for good.
func (a *app) onExit() bool {
	g := a.current()
	a.lastExitCode = g.exit.Code()
	// Workers the generation left behind in its group would hold the
	// app's sockets and state; they go with it.
	signalGroup(g.pid, syscall.SIGKILL)
	return a.afterFailure(g)
}

// afterFailure applies the restart policy after g (nil: a failed spawn)
// ended or failed its gate.
func (a *app) afterFailure(g *gen) bool {
	a.s.mu.Lock()
	a.cur = nil
	a.ready = false
	a.s.mu.Unlock()
	if a.cfg.Restart.Policy != "restart" {
		a.end(a.lastExitCode, true)
		return false
	}
	for {
		if g != nil && time.Since(g.started) >= a.cfg.Restart.StableAfter.D() {
			a.consecutive = 0
			a.backoff = a.cfg.Restart.Backoff.D()
		}
		a.consecutive++
		delay := a.backoff
		a.backoff = min(2*a.backoff, a.cfg.Restart.MaxBackoff.D())
		a.s.mu.Lock()
		a.state = StateBackoff
		a.restarts++
		a.crashLoop = a.consecutive >= a.cfg.Restart.CrashLoop
		a.s.mu.Unlock()
		a.s.events.AppRestarted(a.cfg.Name)
		a.logger().Warn("restarting app", "in", delay, "attempt", a.consecutive, "last_code", a.lastExitCode)
		select {
		case <-time.After(delay):
		case <-a.stopCh:
			a.end(a.lastExitCode, false)
			return false
		}
		ng, err := a.spawn()
		if err != nil {
			a.logger().Error("start app failed", "err", err)
			a.lastExitCode = spawnExitCode(err)
			g = nil
			continue
		}
		a.setCurrent(ng)
		if err := a.await(ng); err != nil {
			if errors.Is(err, errStopping) {
				a.stopAll()
				return false
			}
			a.logger().Error("app not ready", "generation", ng.n, "pid", ng.pid, "err", err)
			a.kill(ng)
			a.lastExitCode = ng.exit.Code()
			a.setCurrent(nil)
			g = ng
			continue
		}
		a.markReady(ng)
		return true
	}
}

// end records that the app is over; endedContainer says its own end (not
// a shutdown) ends the container.
func (a *app) end(code int, endedContainer bool) {
	a.s.mu.Lock()
	a.exitCode = &code
	a.endedContainer = endedContainer
	a.ready = false
	a.state = StateExited
	if code != 0 && endedContainer {
		a.state = StateFailed
	}
	a.s.mu.Unlock()
}

// request queues op for the run goroutine and waits for its outcome.
func (a *app) request(ctx context.Context, op opKind, reason string) (Result, error) {
	r := request{op: op, reason: reason, reply: make(chan Result, 1)}
	select {
	case a.reqs <- r:
	case <-a.stopCh:
		return Result{}, fmt.Errorf("%s %s: %w", op, a.cfg.Name, errStopping)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case res := <-r.reply:
		return res, nil
	case <-a.stopCh:
		return Result{}, fmt.Errorf("%s %s: %w", op, a.cfg.Name, errStopping)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// handle runs one request. Swap requests that queued up meanwhile
// collapse into it: they all get this one swap's result.
func (a *app) handle(r request) {
	batch := []request{r}
	var later []request
	if r.op == opSwap {
	drain:
		for {
			select {
			case q := <-a.reqs:
				if q.op == opSwap {
					batch = append(batch, q)
				} else {
					later = append(later, q)
				}
			default:
				break drain
			}
		}
	}
	var res Result
	if r.op == opSwap {
		res = a.swap(r.reason)
	} else {
		res = a.restart(r.reason)
	}
	for _, q := range batch {
		q.reply <- res
	}
	for _, q := range later {
		a.handle(q)
	}
}

func (a *app) result(op string, ok bool, reason string, from *gen, start time.Time) Result {
	r := Result{App: a.cfg.Name, Action: op, OK: ok, Reason: reason, Duration: time.Since(start), At: time.Now()}
	if from != nil {
		r.From, r.To, r.Pid = from.n, from.n, from.pid
	}
	if cur := a.current(); cur != nil {
		r.To, r.Pid = cur.n, cur.pid
	}
	return r
}

func (a *app) finish(r Result) Result {
	a.s.mu.Lock()
	a.lastAction = &r
	a.s.mu.Unlock()
	a.s.events.ActionDone(r)
	if r.OK {
		a.logger().Info(r.Action+" done", "from", r.From, "to", r.To, "pid", r.Pid, "duration", r.Duration)
	} else {
		a.logger().Warn(r.Action+" failed", "reason", r.Reason, "serving", r.Pid, "duration", r.Duration)
	}
	return r
}

// swap is DESIGN rule 5: start N+1, gate, then drain N; on failure N+1 is
// killed and N keeps serving. Readiness stays true throughout.
func (a *app) swap(reason string) Result {
	start := time.Now()
	old := a.current()
	if old == nil || !old.alive() {
		return a.finish(a.result("reload", false, "no generation is running", old, start))
	}
	a.s.mu.Lock()
	a.state = StateSwapping
	a.s.mu.Unlock()
	a.logger().Info("hot swap", "from", old.n, "pid", old.pid, "reason", reason)
	g, err := a.spawn()
	if err != nil {
		a.setState(StateRunning, true)
		return a.finish(a.result("reload", false, err.Error(), old, start))
	}
	a.addOther(g)
	if err := a.await(g); err != nil {
		a.kill(g)
		a.removeOther(g)
		if !errors.Is(err, errStopping) {
			a.setState(StateRunning, true)
		}
		return a.finish(a.result("reload", false, fmt.Sprintf("generation %d (pid %d) %v; generation %d keeps serving", g.n, g.pid, err, old.n), old, start))
	}
	a.s.mu.Lock()
	a.removeOtherLocked(g)
	old.phase = "draining"
	a.others = append(a.others, old)
	a.s.mu.Unlock()
	a.markReady(g)
	res := a.finish(a.result("reload", true, "", old, start))
	a.drain(old, a.cfg.StopSignal.Sys())
	return res
}

// restart is DESIGN rule 6: stop N (drain), then start N+1; not ready in
// between, sockets stay open so connections wait in the backlog.
func (a *app) restart(reason string) Result {
	start := time.Now()
	old := a.current()
	a.setState(StateRestarting, false)
	a.logger().Info("full restart", "reason", reason)
	if old != nil {
		a.s.mu.Lock()
		old.phase = "draining"
		a.s.mu.Unlock()
		a.drain(old, a.cfg.StopSignal.Sys())
		a.setCurrent(nil)
	}
	g, err := a.spawn()
	if err != nil {
		a.lastExitCode = spawnExitCode(err)
		res := a.finish(a.result("restart", false, err.Error(), nil, start))
		a.enqueueFailure()
		return res
	}
	a.setCurrent(g)
	if err := a.await(g); err != nil {
		a.kill(g)
		// The main loop sees the current generation gone and applies the
		// restart policy.
		return a.finish(a.result("restart", false, fmt.Sprintf("generation %d (pid %d) %v", g.n, g.pid, err), nil, start))
	}
	a.markReady(g)
	return a.finish(a.result("restart", true, "", old, start))
}

// enqueueFailure makes the run loop apply the restart policy after a
// restart whose spawn failed: a dead pseudo-generation stands in.
func (a *app) enqueueFailure() {
	g := &gen{exited: make(chan struct{}), started: time.Now()}
	g.exit = reaper.Exit{Status: unix.WaitStatus(a.lastExitCode << 8)}
	close(g.exited)
	a.setCurrent(g)
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

// drain stops g gracefully: sig, the drain timeout, then SIGKILL of its
// process group. Shutdown cuts the wait short; stopAll then owns g.
func (a *app) drain(g *gen, sig syscall.Signal) {
	a.send(g, sig)
	t := time.NewTimer(a.cfg.DrainTimeout.D())
	defer t.Stop()
	select {
	case <-g.exited:
	case <-t.C:
		a.logger().Warn("drain timeout, killing", "generation", g.n, "pid", g.pid, "timeout", a.cfg.DrainTimeout.D())
	case <-a.stopCh:
		return
	}
	a.kill(g)
	a.removeOther(g)
}

// kill SIGKILLs g's process group and waits for g to be reaped.
func (a *app) kill(g *gen) {
	signalGroup(g.pid, syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(killWait):
		a.logger().Error("generation did not die after SIGKILL", "generation", g.n, "pid", g.pid)
	}
}

// stopAll is the app's part of shutdown: every generation gets the stop
// signal, the drain timeout, then SIGKILL.
func (a *app) stopAll() {
	a.s.mu.Lock()
	a.state, a.ready = StateStopping, false
	sig := a.stopSig
	gens := slices.Clone(a.others)
	if a.cur != nil {
		gens = append(gens, a.cur)
	}
	cur := a.cur
	a.s.mu.Unlock()
	if sig == 0 {
		sig = a.cfg.StopSignal.Sys()
	}
	for _, g := range gens {
		if g.alive() {
			a.send(g, sig)
		}
	}
	t := time.NewTimer(a.cfg.DrainTimeout.D())
	defer t.Stop()
	for _, g := range gens {
		select {
		case <-g.exited:
		case <-t.C:
		}
	}
	for _, g := range gens {
		if g.alive() {
			a.logger().Warn("drain timeout, killing", "generation", g.n, "pid", g.pid)
		}
		a.kill(g)
	}
	code := a.lastExitCode
	if cur != nil && cur.pid != 0 {
		code = cur.exit.Code()
	}
	a.end(code, false)
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
		a.logger().Info("signal queued until the app is ready", "signal", config.SignalName(sig))
		return
	}
	g := a.cur
	a.s.mu.Unlock()
	if g == nil || !g.alive() {
		a.logger().Warn("signal dropped: app not running", "signal", config.SignalName(sig))
		return
	}
	a.send(g, sig)
	a.s.events.SignalForwarded(a.cfg.Name, sig)
	a.logger().Info("signal forwarded", "signal", config.SignalName(sig), "pid", g.pid)
}

// send delivers sig to g's process group, or to its leader alone with
// signalTarget "child". ESRCH is a warning, not a failure (tini).
func (a *app) send(g *gen, sig syscall.Signal) {
	var err error
	if a.s.cfg.SignalTarget == "child" {
		err = syscall.Kill(g.pid, sig)
	} else {
		err = syscall.Kill(-g.pid, sig)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		a.logger().Warn("signal failed", "signal", config.SignalName(sig), "pid", g.pid, "err", err)
	}
}

// onChange handles a watched config change: validate, then act.
func (a *app) onChange(c watch.Change) {
	start := time.Now()
	a.logger().Info("config changed", "hash", short(c.Hash), "previous", short(c.Previous))
	record := func(ok bool, result, reason, output string) {
		r := Result{App: a.cfg.Name, Action: "config", OK: ok, Reason: reason, Output: output, Duration: time.Since(start), At: time.Now()}
		if cur := a.current(); cur != nil {
			r.To, r.Pid = cur.n, cur.pid
		}
		a.s.mu.Lock()
		a.lastChange = &r
		a.s.mu.Unlock()
		a.s.events.ConfigChange(a.cfg.Name, result)
	}
	if len(a.cfg.Validate) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Readiness.Timeout.D())
		go func() {
			select {
			case <-a.stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		out, code, err := graceful.RunCommand(ctx, a.s.reaper, a.cfg.Validate, a.env(), a.cfg.Dir)
		cancel()
		if err != nil || code != 0 {
			reason := fmt.Sprintf("validate %v failed: exit code %d", a.cfg.Validate, code)
			if err != nil {
				reason = fmt.Sprintf("validate %v failed: %v", a.cfg.Validate, err)
			}
			a.logger().Warn("config rejected, old generation keeps serving", "reason", reason, "output", string(out))
			record(false, "validate_failed", reason, string(out))
			return
		}
	}
	switch oc := a.cfg.OnChange; {
	case oc == "restart":
		r := a.restart("config changed")
		record(r.OK, map[bool]string{true: "applied", false: "swap_failed"}[r.OK], r.Reason, "")
	case len(oc) > 7 && oc[:7] == "signal:":
		sig, err := config.ParseSignal(oc[7:])
		if err != nil {
			record(false, "swap_failed", err.Error(), "")
			return
		}
		a.signal(sig)
		record(true, "signalled", "sent "+config.SignalName(sig), "")
	default:
		r := a.swap("config changed")
		record(r.OK, map[bool]string{true: "applied", false: "swap_failed"}[r.OK], r.Reason, "")
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// env is the environment of every generation: the init's own, minus its
// ENTRYPOINT_* configuration (the admin token must not leak into the app),
// plus the app's env.
func (a *app) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) >= 11 && kv[:11] == "ENTRYPOINT_" {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(a.cfg.Env))
	for k := range a.cfg.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = slices.DeleteFunc(env, func(kv string) bool { return len(kv) > len(k) && kv[:len(k)+1] == k+"=" })
		env = append(env, k+"="+a.cfg.Env[k])
	}
	return env
}

func (a *app) statusLocked() AppStatus {
	st := AppStatus{
		Name: a.cfg.Name, State: a.state, Ready: a.ready && !a.s.shuttingDown,
		Restarts: a.restarts, CrashLoop: a.crashLoop,
		LastAction: a.lastAction, LastChange: a.lastChange, ExitCode: a.exitCode,
	}
	if a.sockets != nil {
		st.Listen = a.sockets.Addrs()
	}
	if g := a.cur; g != nil && g.pid != 0 && g.alive() {
		st.Current = &Generation{N: g.n, Pid: g.pid, Started: g.started, Phase: g.phase, Status: g.status}
		if wd := a.cfg.Watchdog.D(); wd > 0 && g.phase == "ready" && time.Since(g.lastWatchdog) > wd {
			st.WatchdogExpired = true
		}
	}
	for _, g := range a.others {
		if g.alive() {
			st.Others = append(st.Others, Generation{N: g.n, Pid: g.pid, Started: g.started, Phase: g.phase, Status: g.status})
		}
	}
	return st
}
