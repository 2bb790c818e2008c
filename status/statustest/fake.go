package statustest

import (
	"context"
	"sync"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// Fake is a supervisor whose state and behaviour the test sets. Reload and
// Restart act as a successful swap does (the generation of each app they
// touch goes up by one) unless Knobs say otherwise; every method is safe
// for concurrent use.
type Fake struct {
	mu        sync.Mutex
	st        status.Status
	knobs     Knobs
	calls     []string
	started   []string
	shutdowns []string
}

// Knobs change how a Fake behaves; set them with Tune.
type Knobs struct {
	// PingStuck: Ping blocks until its ctx ends, like a stuck event loop.
	PingStuck bool
	// StatusPanics: Status panics.
	StatusPanics bool
	// Err: Reload and Restart fail with it and touch nothing.
	Err error
	// Rollback: each app's action fails with this reason, the generation
	// stays (a swap that rolled back).
	Rollback string
	// Block: Reload and Restart wait until their ctx ends, then return
	// ctx.Err(), as for a caller that leaves during a long swap.
	Block bool
	// BlockBegins: with Block, the action first starts (status.Begins
	// for the app, or the first app for "") and, if Began is set, sends
	// the app's name on it.
	BlockBegins bool
	Began       chan<- string
}

// New returns a Fake running apps, as PID 1 started a minute ago.
func New(apps ...status.AppStatus) *Fake {
	return &Fake{st: status.Status{Pid: 1, Started: time.Now().Add(-time.Minute), Apps: apps}}
}

// Running is an app whose generation n is ready and serving, with pid
// 1000+n.
func Running(name string, n int) status.AppStatus {
	return status.AppStatus{
		Name: name, State: status.StateRunning, Ready: true,
		Current: &status.Generation{N: n, Pid: 1000 + n, Started: time.Now().Add(-90 * time.Second), Phase: status.PhaseReady},
	}
}

// Set changes the state Status reports.
func (f *Fake) Set(fn func(st *status.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

// Tune changes the knobs.
func (f *Fake) Tune(fn func(k *Knobs)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.knobs)
}

// Calls are the Reload and Restart calls so far, as "reload web" or
// "restart " (every app).
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Started are the apps whose action started (status.Begins agreed).
func (f *Fake) Started() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...)
}

// Shutdowns are the reasons of the Shutdown calls so far.
func (f *Fake) Shutdowns() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.shutdowns...)
}

// Status returns a copy of the state; its Apps may be changed by the
// caller.
func (f *Fake) Status() status.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.knobs.StatusPanics {
		panic("fake status exploded")
	}
	st := f.st
	st.Apps = append([]status.AppStatus(nil), f.st.Apps...)
	return st
}

// Reload implements status.Controller.
func (f *Fake) Reload(ctx context.Context, app string) ([]status.Result, error) {
	return f.act(ctx, status.ActionReload, app)
}

// Restart implements status.Controller.
func (f *Fake) Restart(ctx context.Context, app string) ([]status.Result, error) {
	return f.act(ctx, status.ActionRestart, app)
}

// act asks status.Begins before each app, as the supervisor does, so a
// WithStartCheck hook sees what a real action would show it.
func (f *Fake) act(ctx context.Context, kind, app string) ([]status.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, kind+" "+app)
	k := f.knobs
	first := app
	if first == "" && len(f.st.Apps) > 0 {
		first = f.st.Apps[0].Name
	}
	f.mu.Unlock()
	if k.Err != nil {
		return nil, k.Err
	}
	if k.Block {
		// Begins runs the caller's hook, which may write to a socket: not
		// under f.mu.
		if k.BlockBegins && status.Begins(ctx, first) {
			f.mu.Lock()
			f.started = append(f.started, first)
			f.mu.Unlock()
			if k.Began != nil {
				k.Began <- first
			}
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []status.Result
	for i := range f.st.Apps {
		a := &f.st.Apps[i]
		if app != "" && a.Name != app {
			continue
		}
		if !status.Begins(ctx, a.Name) {
			return out, ctx.Err()
		}
		f.started = append(f.started, a.Name)
		from := a.Current.N
		r := status.Result{App: a.Name, Action: kind, From: from, To: from, At: time.Now(), Duration: 1500 * time.Millisecond}
		if k.Rollback != "" {
			r.Reason = k.Rollback
		} else {
			r.OK, r.To = true, from+1
			g := *a.Current
			g.N, g.Pid, g.Started = from+1, g.Pid+1, time.Now()
			a.Current = &g
		}
		r.Pid = a.Current.Pid
		a.LastAction = &r
		out = append(out, r)
	}
	return out, nil
}

// Shutdown records reason and turns the state to shutting down.
func (f *Fake) Shutdown(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns = append(f.shutdowns, reason)
	f.st.ShuttingDown = true
}

// Ping answers at once, or blocks until ctx ends with PingStuck.
func (f *Fake) Ping(ctx context.Context) error {
	f.mu.Lock()
	stuck := f.knobs.PingStuck
	f.mu.Unlock()
	if stuck {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

var _ status.Controller = (*Fake)(nil)
