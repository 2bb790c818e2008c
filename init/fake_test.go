package supervisor

import (
	"context"
	"fmt"
	"github.com/entrypoint/entrypoint/internal/syncbuf"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
)

// fakeWorld stands in for processes (procs) and the readiness gate, so
// the supervisor's timing rules run under testing/synctest in virtual
// time: each generation is a fakeProc the test drives through channels
// (tableflip's testProcess).
type fakeWorld struct {
	mu      sync.Mutex
	procs   map[int]*fakeProc
	nextPid int
	started chan *fakeProc
	// stuckKill, when set, blocks every kill(2) with a stop signal until
	// it is closed: a run loop stuck in a call.
	stuckKill chan struct{}
	// calls is what happened, in order: "start PID", "kill PID SIGNAL"
	// (a negative PID is a group), "exit PID", "run ARGV0".
	calls []string
	// validate, if set, is every command run (the validate command);
	// unset, commands succeed at once with no output.
	validate func(ctx context.Context, cmd graceful.Command) ([]byte, int, error)
	// probeErr is what the bind takeover probe answers; probes counts
	// the probes.
	probeErr error
	probes   int
}

// fakeProc is one generation: it passes its gate when ready is closed,
// records the signals it gets, and exits when told or on its stop signal
// (after stopDelay) unless deaf; SIGKILL always ends it.
type fakeProc struct {
	w         *fakeWorld
	pid       int
	spec      graceful.Spec
	started   time.Time
	exit      chan reaper.Exit
	gone      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
	exitOnce  sync.Once

	mu        sync.Mutex
	sigs      []syscall.Signal
	sigAt     []time.Time
	deaf      bool
	stopDelay time.Duration
	exitedAt  time.Time
}

func newWorld() *fakeWorld {
	return &fakeWorld{procs: map[int]*fakeProc{}, nextPid: 100, started: make(chan *fakeProc, 64)}
}

func (w *fakeWorld) procsFor() procs {
	return procs{
		start: func(spec graceful.Spec) (int, <-chan reaper.Exit, error) {
			w.mu.Lock()
			w.nextPid++
			p := &fakeProc{w: w, pid: w.nextPid, spec: spec, started: time.Now(), exit: make(chan reaper.Exit, 1), gone: make(chan struct{}), ready: make(chan struct{})}
			w.procs[p.pid] = p
			w.calls = append(w.calls, fmt.Sprintf("start %d", p.pid))
			w.mu.Unlock()
			w.started <- p
			return p.pid, p.exit, nil
		},
		lookPath: func(name, _ string, _ []string) (string, error) { return name, nil },
		kill:     w.kill,
		signalGroup: func(pid int, sig syscall.Signal) {
			if pid > 0 {
				_ = w.kill(-pid, sig)
			}
		},
		groupGone: func(pgid int, deadline <-chan struct{}) bool {
			p := w.proc(pgid)
			if p == nil {
				return true
			}
			select {
			case <-p.gone:
				return true
			case <-deadline:
				return false
			}
		},
		descendants: func(int) []procID { return nil },
		leftovers:   func(*app, *gen, []procID) {},
		pidfd:       func(int, <-chan reaper.Exit) *pidfd { return nil },
		strays:      func(*Supervisor) {},
		run: func(ctx context.Context, cmd graceful.Command) ([]byte, int, error) {
			w.mu.Lock()
			w.calls = append(w.calls, "run "+cmd.Argv[0])
			f := w.validate
			w.mu.Unlock()
			if f == nil {
				return nil, 0, nil
			}
			return f(ctx, cmd)
		},
		takeoverProbe: func() error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.probes++
			return w.probeErr
		},
	}
}

// trace is w.calls so far.
func (w *fakeWorld) trace() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func (w *fakeWorld) proc(pid int) *fakeProc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.procs[pid]
}

func (w *fakeWorld) kill(pid int, sig syscall.Signal) error {
	w.mu.Lock()
	w.calls = append(w.calls, fmt.Sprintf("kill %d %s", pid, config.SignalName(sig)))
	w.mu.Unlock()
	p := w.proc(max(pid, -pid))
	if p == nil || !p.alive() {
		return syscall.ESRCH
	}
	if sig == 0 {
		return nil
	}
	stop := sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
	if stop && w.stuckKill != nil {
		<-w.stuckKill
	}
	p.mu.Lock()
	p.sigs = append(p.sigs, sig)
	p.sigAt = append(p.sigAt, time.Now())
	deaf, delay := p.deaf, p.stopDelay
	p.mu.Unlock()
	switch {
	case sig == syscall.SIGKILL:
		p.end(unix.WaitStatus(syscall.SIGKILL))
	case stop && !deaf:
		go func() {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				p.end(0)
			case <-p.gone:
			}
		}()
	}
	return nil
}

// next is the next generation started; it fails the test (a synctest
// deadlock) if none ever is.
func (w *fakeWorld) next() *fakeProc { return <-w.started }

// serveNext makes the next generation started ready as soon as it is,
// for a test whose own goroutine is blocked meanwhile (it is the app's
// run goroutine); the generation arrives on the channel.
func (w *fakeWorld) serveNext() <-chan *fakeProc {
	c := make(chan *fakeProc, 1)
	go func() {
		p := w.next()
		p.becomeReady()
		c <- p
	}()
	return c
}

// none says that no generation was started since the last next.
func (w *fakeWorld) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-w.started:
		t.Fatalf("unexpected generation, pid %d", p.pid)
	default:
	}
}

func (p *fakeProc) alive() bool {
	select {
	case <-p.gone:
		return false
	default:
		return true
	}
}

func (p *fakeProc) becomeReady() { p.readyOnce.Do(func() { close(p.ready) }) }

// exitWith ends p on its own with exit code c.
func (p *fakeProc) exitWith(c int) { p.end(unix.WaitStatus(c << 8)) }

func (p *fakeProc) end(ws unix.WaitStatus) {
	p.exitOnce.Do(func() {
		p.mu.Lock()
		p.exitedAt = time.Now()
		p.mu.Unlock()
		p.w.mu.Lock()
		p.w.calls = append(p.w.calls, fmt.Sprintf("exit %d", p.pid))
		p.w.mu.Unlock()
		close(p.gone)
		p.exit <- reaper.Exit{Pid: p.pid, Status: ws}
	})
}

func (p *fakeProc) signals() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.sigs...)
}

func (p *fakeProc) set(deaf bool, stopDelay time.Duration) {
	p.mu.Lock()
	p.deaf, p.stopDelay = deaf, stopDelay
	p.mu.Unlock()
}

// fakeGate passes a generation when its fakeProc is ready and fails it
// after timeout, as every real gate does.
type fakeGate struct {
	w       *fakeWorld
	timeout time.Duration
}

func (g fakeGate) Wait(ctx context.Context, t graceful.Target) error {
	p := g.w.proc(t.Pid)
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// harness runs a Supervisor on a fakeWorld; call it inside a synctest
// bubble and end with stop (or wait for Run's own end).
type harness struct {
	t      *testing.T
	w      *fakeWorld
	s      *Supervisor
	sigs   chan os.Signal
	code   chan int
	logs   *syncBuffer
	events *recEvents
}

// recEvents records the events the tests check; the rest are dropped.
type recEvents struct {
	noEvents
	mu      sync.Mutex
	changes []string
	// w, when set, gets every SignalForwarded in its trace, so a test
	// sees it in order with the kills.
	w *fakeWorld
}

func (e *recEvents) SignalForwarded(app string, sig syscall.Signal) {
	if e.w == nil {
		return
	}
	e.w.mu.Lock()
	e.w.calls = append(e.w.calls, fmt.Sprintf("forwarded %s %s", app, config.SignalName(sig)))
	e.w.mu.Unlock()
}

func (e *recEvents) ConfigChange(_, result string) {
	e.mu.Lock()
	e.changes = append(e.changes, result)
	e.mu.Unlock()
}

// configChanges is every ConfigChange result so far.
func (e *recEvents) configChanges() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.changes)
}

// syncBuffer is a log sink goroutines write to while the test reads it.
type syncBuffer = syncbuf.Buffer

// run starts a supervisor of one app "web" with the given flags (a fake
// command is added) and returns once generation 1 was started.
func run(t *testing.T, args ...string) (*harness, *fakeProc) {
	t.Helper()
	h := runConfig(t, webArgs(args...)...)
	return h, h.w.next()
}

// webArgs are the arguments of one app "web" with the given flags and a
// fake command.
func webArgs(args ...string) []string {
	return append(append([]string{"--name", "web", "--health-listen", "off"}, args...), "--", "/fake/app")
}

// runConfig starts a supervisor of the config that args load.
func runConfig(t *testing.T, args ...string) *harness {
	t.Helper()
	h, err := build(t, newWorld(), args...)
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	return h
}

// start runs the supervisor; its exit code arrives on h.code.
func (h *harness) start() {
	go func() { h.code <- h.s.Run(context.Background()) }()
}

// build makes a supervisor of the config that args load on w, without
// running it; the error is newSupervisor's.
func build(t *testing.T, w *fakeWorld, args ...string) (*harness, error) {
	t.Helper()
	cfg, err := config.Load(args, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, w: w, sigs: make(chan os.Signal, 16), code: make(chan int, 1), logs: &syncBuffer{}, events: &recEvents{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", h.logs.String())
		}
	})
	s, err := newSupervisor(Options{Config: cfg, Signals: h.sigs, Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Events: h.events}, w.procsFor())
	if err != nil {
		return nil, err
	}
	s.illegal = func(app string, from, to status.State) {
		t.Errorf("app %s: illegal transition %s -> %s", app, from, to)
	}
	for _, a := range s.apps {
		a.gate = fakeGate{w, a.cfg.Readiness.Timeout.D()}
	}
	h.s = s
	return h, nil
}

func (h *harness) app() status.AppStatus { return h.s.Status().Apps[0] }

// stop shuts the supervisor down as a SIGTERM does and returns its code.
func (h *harness) stop() int {
	h.sigs <- syscall.SIGTERM
	return <-h.code
}

// call runs f (a Reload or Restart) in the background; its outcome
// arrives on the returned channel.
func call(f func(context.Context, string) ([]status.Result, error)) chan status.Result {
	out := make(chan status.Result, 1)
	go func() {
		res, err := f(context.Background(), "")
		if err != nil || len(res) != 1 {
			out <- status.Result{Reason: "call failed"}
			return
		}
		out <- res[0]
	}()
	return out
}
