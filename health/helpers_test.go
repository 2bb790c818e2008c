package health

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// fakeController is a supervisor whose state the test sets directly.
type fakeController struct {
	mu        sync.Mutex
	st        status.Status
	pingStuck bool // Ping blocks until its ctx ends, like a stuck loop
	panicky   bool // Status panics
	reloadErr error
	rollback  string // Reload fails with this reason when set
	calls     []string
	shutdowns []string
	// untilDone: Reload starts (status.Begins), says so on this
	// channel, then waits until its ctx ends (a caller that leaves).
	untilDone chan string
}

func newFake(apps ...status.AppStatus) *fakeController {
	return &fakeController{st: status.Status{Pid: 1, Started: time.Now().Add(-time.Minute), Apps: apps}}
}

func runningApp(name string, n int) status.AppStatus {
	return status.AppStatus{
		Name: name, State: status.StateRunning, Ready: true,
		Current: &status.Generation{N: n, Pid: 1000 + n, Started: time.Now().Add(-90 * time.Second), Phase: status.PhaseReady},
	}
}

func (f *fakeController) set(fn func(st *status.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}

func (f *fakeController) Status() status.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicky {
		panic("fake status exploded")
	}
	st := f.st
	st.Apps = append([]status.AppStatus(nil), f.st.Apps...)
	return st
}

func (f *fakeController) Reload(ctx context.Context, app string) ([]status.Result, error) {
	if f.untilDone != nil {
		if status.Begins(ctx, app) {
			f.untilDone <- app
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.act("reload", app)
}

func (f *fakeController) Restart(ctx context.Context, app string) ([]status.Result, error) {
	return f.act("restart", app)
}

// act bumps the generation of app (or every app), as a successful swap
// does, unless the test made it fail.
func (f *fakeController) act(kind, app string) ([]status.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, kind+" "+app)
	if f.reloadErr != nil {
		return nil, f.reloadErr
	}
	var out []status.Result
	for i := range f.st.Apps {
		a := &f.st.Apps[i]
		if app != "" && a.Name != app {
			continue
		}
		from := a.Current.N
		r := status.Result{App: a.Name, Action: kind, From: from, To: from, At: time.Now(), Duration: 1500 * time.Millisecond}
		if f.rollback != "" {
			r.Reason = f.rollback
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

func (f *fakeController) Shutdown(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns = append(f.shutdowns, reason)
	f.st.ShuttingDown = true
}

func (f *fakeController) Ping(ctx context.Context) error {
	f.mu.Lock()
	stuck := f.pingStuck
	f.mu.Unlock()
	if stuck {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeController) shutdownLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.shutdowns...)
}

func (f *fakeController) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// syncBuffer is a log sink the server's goroutines may write to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a Server on 127.0.0.1:0 until the test ends and returns it
// with its base URL once it is bound.
func start(t *testing.T, opts Options) (*Server, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	select {
	case <-s.bound:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after its context ended", err)
		}
	})
	scheme := "http"
	if opts.TLSCert != "" {
		scheme = "https"
	}
	return s, scheme + "://" + s.Addr(), logs
}

type reply struct {
	code   int
	body   string
	header http.Header
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", url, err)
	}
	return reply{code: res.StatusCode, body: string(b), header: res.Header}
}
