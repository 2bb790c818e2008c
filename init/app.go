package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/status"
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

// acceptWait bounds the wait, before a swapped-out generation of an app
// with steered listeners gets its stop signal, for it to accept what is
// already queued on its sockets; acceptSettle is the time it then gets to
// read what it accepted last.
const (
	acceptWait   = time.Second
	acceptSettle = 100 * time.Millisecond
)

// request is a reload or restart asked for by a user. ctx is the asker's:
// a request whose asker gave up is skipped, not run later. reply has room
// for the one answer every request gets.
type request struct {
	ctx    context.Context
	op     opKind
	reason string
	reply  chan status.Result
}

// begins says whether r may start now: its asker is still waiting and the
// WithStartCheck hook, if any, agrees.
func (r request) begins(app string) bool { return status.Begins(r.ctx, app) }

// app is the state machine of one configured app (state.go has its
// diagram). Its run goroutine is the only one that starts generations and
// decides what the app does next; draining generations end in goroutines
// of their own, tracked by drains, so the run loop always watches the
// current generation. Other goroutines talk to it through reqs and ping,
// end it through ctx, and read its status under Supervisor.mu.
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

	reqs chan request
	// ping is answered by the run goroutine wherever it waits, so a
	// liveness probe proves that this app's loop still turns.
	ping chan chan struct{}
	// ctx ends when shutdown begins for this app; cancel is stop's.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	drains sync.WaitGroup

	// run goroutine only
	genN         int
	backoff      time.Duration
	lastExitCode int
	needRecover  bool      // a restart could not start the app: apply the policy
	parked       []request // read while the loop was busy, run next
	// joinable is true while a generation is being brought up to become
	// the current one (first start, restart, restart after a crash); a
	// restart asked for meanwhile joins it and gets its outcome in joined.
	joinable bool
	joined   []request

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
	ctx, cancel := context.WithCancel(context.Background())
	a := &app{
		s:          s,
		log:        s.log.With("app", cfg.Name),
		cfg:        cfg,
		foreground: foreground,
		reqs:       make(chan request, 64),
		ping:       make(chan chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		state:      status.StateStarting,
		backoff:    cfg.Restart.Backoff.D(),
	}
	gate, err := graceful.NewGate(cfg.Readiness)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("app %s: readiness: %w", cfg.Name, err)
	}
	a.gate = gate
	if len(cfg.Listen) > 0 {
		// Under the bind takeover each TCP listener is a SO_REUSEPORT
		// group (graceful.BindSteered): the app's own bind() of the
		// address is answered with the init's socket, so only the init
		// adds sockets to it. The probe's answer is kept for
		// setupTakeover.
		bind := graceful.Bind
		if cfg.Takeover != "off" && s.checkTakeover() == nil {
			bind = graceful.BindSteered
		}
		socks, err := bind(cfg.Listen)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("app %s: %w", cfg.Name, err)
		}
		a.sockets = socks
		if err := a.setupTakeover(); err != nil {
			cancel()
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
			cancel()
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
	defer close(a.done)
	// Drains started by swaps end within their drain timeout; none
	// outlives the app.
	defer a.busy(a.drains.Wait)
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
		if len(a.parked) > 0 && !a.stopping() {
			r := a.parked[0]
			a.parked = a.parked[1:]
			a.handle(r)
		} else {
			var curExited <-chan struct{}
			if g := a.current(); g != nil {
				curExited = g.exited
			}
			select {
			case <-a.ctx.Done():
				a.stopAll()
				return
			case <-curExited:
				if !a.onExit() {
					return
				}
			case reply := <-a.ping:
				close(reply)
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
		if a.needRecover {
			a.needRecover = false
			if !a.afterFailure(nil) {
				return
			}
		}
	}
}

// waitFor blocks the run goroutine until done (0) or also (1; nil for
// none) is closed and says which; with stop it returns -1 as soon as
// shutdown begins. Meanwhile it answers pings and takes requests: every
// wait of the loop goes through here, so liveness sees a loop that is
// waiting on purpose as alive, and a request is never left unread.
func (a *app) waitFor(done, also <-chan struct{}, stop bool) int {
	var stopped <-chan struct{}
	if stop {
		stopped = a.ctx.Done()
	}
	for {
		select {
		case <-done:
			return 0
		case <-also:
			return 1
		case <-stopped:
			return -1
		case reply := <-a.ping:
			close(reply)
		case r := <-a.reqs:
			a.take(r)
		}
	}
}

// busy runs f, which blocks (signalling, waiting for a process group,
// running a command), in a goroutine the run loop waits for, so the loop
// keeps answering while f works and f never outlives it.
func (a *app) busy(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	a.waitFor(done, nil, false)
}

// take files a request that arrived while the loop was busy: a restart
// joins a generation being brought up, anything else waits its turn.
func (a *app) take(r request) {
	if r.op == opRestart && a.joinable {
		if r.begins(a.cfg.Name) {
			a.log.Info("restart joins the start in progress")
			a.joined = append(a.joined, r)
		}
		return
	}
	a.parked = append(a.parked, r)
}

// answerJoined gives the restarts that joined a start its outcome.
func (a *app) answerJoined(r status.Result) {
	for _, q := range a.joined {
		q.reply <- r
	}
	a.joined = nil
}

// pingLoop returns nil once the run loop answered, or when it already
// ended (the app is over; its status says how).
func (a *app) pingLoop(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case a.ping <- reply:
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("app %s: its loop did not answer: %w", a.cfg.Name, ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("app %s: its loop did not answer: %w", a.cfg.Name, ctx.Err())
	}
}

// stopping reports whether shutdown has begun.
func (a *app) stopping() bool { return a.ctx.Err() != nil }

// stop begins the app's shutdown with sig (0: its stop signal). It never
// blocks.
func (a *app) stop(sig syscall.Signal) {
	a.s.mu.Lock()
	a.stopSig = sig
	a.s.mu.Unlock()
	a.cancel()
}

// startFirst starts generation 1 and waits for its gate, applying the
// restart policy on failure. It returns false when the app ended.
func (a *app) startFirst() bool {
	g, err := a.startGen()
	switch {
	case errors.Is(err, errStopping):
		return false
	case err != nil:
		return a.afterFailure(g)
	}
	return true
}

// startGen is bringUp for the first start and the restart policy's: it
// answers the restarts that joined, and on shutdown stops everything.
func (a *app) startGen() (*gen, error) {
	g, r, err := a.bringUp(nil, time.Now())
	switch {
	case errors.Is(err, errStopping):
		a.answerJoined(r)
		a.stopAll()
	case len(a.joined) > 0:
		a.answerJoined(a.finish(r))
	}
	return g, err
}

// bringUp starts a generation as the current one and waits for its gate:
// what the first start, the restart policy and a full restart share.
// Restarts asked for until the gate is decided join it (DESIGN rule 6 as
// amended: a restart never stops a generation still starting); they wait
// in a.joined for the caller to answer them. A generation that fails its
// gate is ended with what it left and is no longer current. bringUp
// returns the generation (nil when none could start), the outcome as a
// restart's result measured from start (naming from, the generation it
// replaced, only on success), and why it failed; errStopping means
// shutdown began.
func (a *app) bringUp(from *gen, start time.Time) (*gen, status.Result, error) {
	// Joining ends when the gate is decided: a restart asked for while a
	// failed generation is being ended waits for the backoff, which it
	// cuts short, and joins the start after it.
	a.joinable = true
	g, err := a.spawn(false)
	if err != nil {
		a.joinable = false
		a.log.Error("start app failed", "err", err)
		a.lastExitCode = spawnExitCode(err)
		return nil, a.result("restart", false, err.Error(), nil, start), err
	}
	a.setCurrent(g)
	err = a.await(g)
	a.joinable = false
	switch {
	case errors.Is(err, errStopping):
		return g, a.result("restart", false, err.Error(), nil, start), err
	case err != nil:
		a.log.Error("app not ready", "generation", g.n, "pid", g.pid, "err", err)
		a.busy(func() {
			a.kill(g)
			a.endGroup(g)
		})
		a.release(g)
		a.lastExitCode = g.code()
		a.setCurrent(nil)
		r := a.result("restart", false, fmt.Sprintf("generation %d (pid %d) %v", g.n, g.pid, err), nil, start)
		if a.stopping() {
			// Shutdown began while g was ended: no restart policy now.
			return g, r, errStopping
		}
		return g, r, err
	}
	a.markReady(g, nil)
	return g, a.result("restart", true, "", from, start), nil
}

// signal forwards sig to the current generation; before the app was ever
// ready it is queued, so a signal sent in the first instant is not lost.
func (a *app) signal(sig syscall.Signal) {
	g, out := a.forward(sig)
	a.forwarded(sig, g, out)
}

// What forward did with a signal.
type sigOutcome uint8

const (
	sigQueued  sigOutcome = iota // the app was never ready: kept for then
	sigDropped                   // no generation alive to take it
	sigSent                      // kill(2) done (or it failed and was logged)
)

// forward is the part of signal the app is waiting on: the kill(2), or the
// queueing. It neither counts nor logs (forwarded does), so a caller can
// get the signal to every app first and do the bookkeeping after.
func (a *app) forward(sig syscall.Signal) (*gen, sigOutcome) {
	a.s.mu.Lock()
	if !a.everReady {
		a.pendingSigs = append(a.pendingSigs, sig)
		a.s.mu.Unlock()
		return nil, sigQueued
	}
	g := a.cur
	a.s.mu.Unlock()
	if g == nil || !g.alive() {
		return g, sigDropped
	}
	a.send(g, sig)
	return g, sigSent
}

// forwarded counts and logs what forward did.
func (a *app) forwarded(sig syscall.Signal, g *gen, out sigOutcome) {
	switch out {
	case sigQueued:
		a.log.Info("signal queued until the app is ready", "signal", config.SignalName(sig))
	case sigDropped:
		a.log.Warn("signal dropped: app not running", "signal", config.SignalName(sig))
	case sigSent:
		a.s.events.SignalForwarded(a.cfg.Name, sig)
		a.log.Info("signal forwarded", "signal", config.SignalName(sig), "pid", g.pid)
	}
}

// env is the environment of every command run for the app (generations,
// validate, exec gate): one builder, so the rules cannot drift apart.
func (a *app) env() []string {
	return graceful.CommandEnv(a.cfg.Env)
}
