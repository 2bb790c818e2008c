package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
)

// StrayGrace is how long processes left over after the apps ended get
// between SIGTERM and SIGKILL.
const StrayGrace = 2 * time.Second

// ErrUnknownApp is returned by actions naming an app that does not exist.
var ErrUnknownApp = errors.New("supervisor: unknown app")

// Options wires a Supervisor. Config and Reaper are required.
type Options struct {
	Config *config.Config
	Reaper *reaper.Reaper
	// Signals is where caught signals arrive (earlysig.Incoming()).
	Signals <-chan os.Signal
	Logger  *slog.Logger
	Events  status.Events
	// Stdin, Stdout and Stderr are given to every generation; default the
	// init's own.
	Stdin, Stdout, Stderr *os.File
}

// Supervisor runs the apps of one Config. Make one per process: it owns
// the apps' process groups and, as PID 1, every process in the namespace.
type Supervisor struct {
	cfg     *config.Config
	log     *slog.Logger
	reaper  *reaper.Reaper
	signals <-chan os.Signal
	events  status.Events
	stdio   [3]*os.File
	tty     bool
	started time.Time

	apps []*app

	mu           sync.Mutex // guards the status fields of every app and shuttingDown
	shuttingDown bool

	takeoverOnce sync.Once
	takeoverErr  error

	procs procs
	// illegal, if set, hears of every state transition the diagram does
	// not have (unit tests fail on it); nil in a running init.
	illegal func(app string, from, to status.State)

	ping     chan chan struct{}
	shutdown chan shutdownReq
	appEnded chan *app
}

type shutdownReq struct {
	reason string
	sig    syscall.Signal // 0: each app's stop signal
}

// New binds every app's listeners (a bind error is a start-up error naming
// the address) and prepares the apps. Nothing runs until Run.
func New(opts Options) (*Supervisor, error) {
	if opts.Config == nil || opts.Reaper == nil {
		return nil, errors.New("supervisor: Config and Reaper are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return newSupervisor(opts, realProcs(opts.Reaper, log))
}

// newSupervisor is New with the process operations given: unit tests pass
// fakes (and no reaper).
func newSupervisor(opts Options, p procs) (*Supervisor, error) {
	s := &Supervisor{
		procs:    p,
		cfg:      opts.Config,
		log:      opts.Logger,
		reaper:   opts.Reaper,
		signals:  opts.Signals,
		events:   opts.Events,
		stdio:    [3]*os.File{opts.Stdin, opts.Stdout, opts.Stderr},
		started:  time.Now(),
		ping:     make(chan chan struct{}),
		shutdown: make(chan shutdownReq, 1),
		appEnded: make(chan *app, len(opts.Config.Apps)),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.events == nil {
		s.events = noEvents{}
	}
	for i, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if s.stdio[i] == nil {
			s.stdio[i] = f
		}
	}
	s.tty = isTerminal(s.stdio[0])
	for i := range opts.Config.Apps {
		a, err := newApp(s, opts.Config.Apps[i], i == 0 && s.tty)
		if err != nil {
			s.closeSockets()
			return nil, err
		}
		s.apps = append(s.apps, a)
	}
	return s, nil
}

func (s *Supervisor) closeSockets() {
	for _, a := range s.apps {
		if a.sockets != nil {
			a.sockets.Close()
		}
	}
}

// Run starts every app and supervises them until the container ends,
// then returns the exit code the init must exit with. Run is called once.
func (s *Supervisor) Run(ctx context.Context) int {
	defer s.closeSockets()
	var wg sync.WaitGroup
	for _, a := range s.apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run()
			s.appEnded <- a
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	var preStop <-chan time.Time
	var pending *shutdownReq // shutdown decided, waiting for the pre-stop delay
	begin := func(req shutdownReq) {
		if pending != nil {
			// A second shutdown signal cuts the pre-stop delay short, as
			// a user pressing Ctrl-C twice expects.
			if preStop != nil {
				preStop = nil
				s.stopApps(*pending)
			}
			return
		}
		pending = &req
		s.mu.Lock()
		s.shuttingDown = true
		s.mu.Unlock()
		d := s.cfg.PreStopDelay.D()
		s.log.Info("shutting down", "reason", req.reason, "pre_stop_delay", d)
		if d > 0 {
			preStop = time.After(d)
			return
		}
		s.stopApps(req)
	}
	// SIGUSR1 and SIGUSR2 act on every app, one after the other, carried
	// out from this loop (no goroutine per signal): seq is the one under
	// way, again the op asked for meanwhile.
	var seq *sigSeq
	var again [2]bool
	startSeq := func(op opKind) {
		switch {
		case pending != nil:
			return // shutting down
		case seq != nil && seq.op == op && op == opRestart:
			// A restart asked for while restarts are under way joins
			// them, as it does inside an app (issue 12).
			s.log.Info("restart already under way, the signal joins it")
			return
		case seq != nil:
			// Like swaps, one more run after this one, however many
			// signals came.
			again[op] = true
			return
		}
		seq = &sigSeq{op: op}
		if !s.advance(seq) {
			seq = nil
		}
	}
	seqDone := func() {
		if s.advance(seq) {
			return
		}
		seq = nil
		for _, op := range []opKind{opSwap, opRestart} {
			if again[op] {
				again[op] = false
				startSeq(op)
				return
			}
		}
	}
	ctxDone := ctx.Done()
	for {
		var seqReply <-chan status.Result
		var seqEnded <-chan struct{}
		if seq != nil && pending == nil {
			seqReply, seqEnded = seq.reply, seq.app.done
		}
		select {
		case sig := <-s.signals:
			r, op, act := s.handleSignal(sig.(syscall.Signal))
			switch act {
			case sigShutdown:
				begin(r)
			case sigAction:
				startSeq(op)
			}
		case <-seqReply:
			seqDone()
		case <-seqEnded:
			seqDone()
		case reply := <-s.ping:
			close(reply)
		case req := <-s.shutdown:
			begin(req)
		case <-ctxDone:
			ctxDone = nil
			begin(shutdownReq{reason: "context ended"})
		case <-preStop:
			preStop = nil
			s.stopApps(*pending)
		case a := <-s.appEnded:
			// An app that ends for good ends the container: the others
			// are stopped too (multi-app containers fail together, so
			// Kubernetes sees and restarts the pod).
			if pending == nil {
				s.log.Info("app ended, stopping the container", "app", a.cfg.Name)
				begin(shutdownReq{reason: "app " + a.cfg.Name + " ended"})
				if preStop != nil {
					preStop = nil
					s.stopApps(*pending)
				}
			}
		case <-allDone:
			code := s.exitCode()
			s.procs.strays(s)
			s.log.Info("all done", "exit_code", code)
			return code
		}
	}
}

func (s *Supervisor) stopApps(req shutdownReq) {
	for _, a := range s.apps {
		a.stop(req.sig)
	}
}

// Shutdown implements Controller.
func (s *Supervisor) Shutdown(reason string) {
	select {
	case s.shutdown <- shutdownReq{reason: reason}:
	default:
	}
}

// Ping implements Controller: Run's loop and then each app's run loop
// must answer. Every place an app's loop waits answers too, so a long
// drain or backoff is alive, while a loop stuck in a call that never
// returns fails liveness with the app's name.
func (s *Supervisor) Ping(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case s.ping <- reply:
	case <-ctx.Done():
		return fmt.Errorf("supervisor loop did not answer: %w", ctx.Err())
	}
	select {
	case <-reply:
	case <-ctx.Done():
		return fmt.Errorf("supervisor loop did not answer: %w", ctx.Err())
	}
	for _, a := range s.apps {
		if err := a.pingLoop(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Reload implements Controller.
func (s *Supervisor) Reload(ctx context.Context, name string) ([]status.Result, error) {
	return s.act(ctx, name, opSwap)
}

// Restart implements Controller.
func (s *Supervisor) Restart(ctx context.Context, name string) ([]status.Result, error) {
	return s.act(ctx, name, opRestart)
}

// act runs op on the named app, or on every app one after the other.
func (s *Supervisor) act(ctx context.Context, name string, op opKind) ([]status.Result, error) {
	var targets []*app
	for _, a := range s.apps {
		if name == "" || a.cfg.Name == name {
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnknownApp, name)
	}
	var results []status.Result
	for _, a := range targets {
		r, err := a.request(ctx, op, "")
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

// Status implements Controller.
func (s *Supervisor) Status() status.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := status.Status{Pid: os.Getpid(), Started: s.started, ShuttingDown: s.shuttingDown}
	for _, a := range s.apps {
		st.Apps = append(st.Apps, a.statusLocked())
	}
	return st
}

type noEvents struct{}

func (noEvents) SignalForwarded(string, syscall.Signal) {}
func (noEvents) ActionDone(status.Result)               {}
func (noEvents) AppRestarted(string)                    {}
func (noEvents) ConfigChange(string, string)            {}
func (noEvents) TakeoverCall(string, string, string)    {}
func (noEvents) WatchFailed(string)                     {}
func (noEvents) LeftoversEnded(string, int)             {}

var _ status.Controller = (*Supervisor)(nil)
