package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is the end of one child process.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
}

// Code is the exit status in shell terms: the exit code, or 128+N when the
// process died of signal N (tini, containerd's exitSignalOffset).
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

func (e Exit) String() string {
	if e.Status.Signaled() {
		return "killed by " + unix.SignalName(e.Status.Signal())
	}
	return fmt.Sprintf("exit code %d", e.Status.ExitStatus())
}

// Options configures a Reaper. The zero value is valid.
type Options struct {
	// Orphan, if set, is called (from the reaper loop) for every exit of a
	// process nobody registered: an orphan re-parented to us.
	Orphan func(Exit)
	// Interval is the safety sweep period; SIGCHLDs coalesce and may be
	// missed. Default 1s.
	Interval time.Duration
	// BeforeStart, if set, runs before every Start's fork, outside the
	// lock. Every child of the binary is started through Start, so the
	// init passes earlysig.Wait here: no child exists before every
	// signal is caught (DESIGN rule 2), and the set-up before the first
	// child runs while the rare signals are still being registered.
	BeforeStart func()
}

// Reaper owns wait4 for the whole process. Make one per process: two
// reapers would steal each other's statuses.
type Reaper struct {
	opts Options

	mu      sync.Mutex
	waiting map[int]chan Exit
	// children is false once a sweep saw ECHILD and no Start happened since.
	children bool
	changed  chan struct{} // closed and replaced after every sweep
	orphans  uint64
	kick     chan struct{}
}

// New returns a Reaper. Call Run to start reaping.
func New(opts Options) *Reaper {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	return &Reaper{
		opts:     opts,
		waiting:  make(map[int]chan Exit),
		changed:  make(chan struct{}),
		kick:     make(chan struct{}, 1),
		children: true,
	}
}

// Start runs start, which must create exactly one child process and return
// its PID, with the reaper's lock held, and registers that PID. The returned
// channel receives the child's Exit exactly once. It is safe to call from
// any goroutine.
func (r *Reaper) Start(start func() (int, error)) (int, <-chan Exit, error) {
	if r.opts.BeforeStart != nil {
		r.opts.BeforeStart()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Exit, 1)
	r.waiting[pid] = ch
	r.children = true
	return pid, ch, nil
}

// Orphans returns how many exits of unregistered processes were reaped.
func (r *Reaper) Orphans() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Kick asks the loop for a sweep now (after sending signals that will end
// children, say). It never blocks.
func (r *Reaper) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// WaitNoChildren blocks until a sweep finds that this process has no
// children left at all (ECHILD), or ctx ends.
func (r *Reaper) WaitNoChildren(ctx context.Context) error {
	for {
		r.mu.Lock()
		done, ch := !r.children, r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		r.Kick()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run reaps until ctx ends. It returns only then.
func (r *Reaper) Run(ctx context.Context) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		r.sweep()
		select {
		case <-ctx.Done():
			return
		case <-chld:
		case <-r.kick:
		case <-t.C:
		}
	}
}

// sweep collects every exited child.
func (r *Reaper) sweep() {
	defer r.notify()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			r.mu.Lock()
			// A Start may have raced in after wait4 answered ECHILD; only
			// trust ECHILD when nobody is registered.
			if len(r.waiting) == 0 {
				r.children = false
			}
			r.mu.Unlock()
			return
		}
		if err != nil || pid <= 0 {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		e := Exit{Pid: pid, Status: ws}
		r.mu.Lock()
		ch, ok := r.waiting[pid]
		if ok {
			delete(r.waiting, pid)
		} else {
			r.orphans++
		}
		r.mu.Unlock()
		if ok {
			ch <- e
		} else if r.opts.Orphan != nil {
			r.opts.Orphan(e)
		}
	}
}

func (r *Reaper) notify() {
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}
