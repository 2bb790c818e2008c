package graceful_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
)

func gate(t *testing.T, r config.Readiness) graceful.Gate {
	t.Helper()
	g, err := graceful.NewGate(r)
	if err != nil {
		t.Fatalf("NewGate(%+v): %v", r, err)
	}
	return g
}

const fast = config.Duration(10 * time.Millisecond)
const long = config.Duration(30 * time.Second)
const short = config.Duration(100 * time.Millisecond)

func TestExecGateRetriesUntilSuccess(t *testing.T) {
	count := t.TempDir() + "/count"
	t.Setenv(roleEnv, "exec-check")
	t.Setenv("COUNTFILE", count)
	g := gate(t, config.Readiness{Type: "exec", Command: []string{helperPath(t)}, Delay: fast, Timeout: long})
	if err := g.Wait(context.Background(), graceful.Target{Pid: 4242, Reaper: testReaper, Env: os.Environ()}); err != nil {
		t.Fatalf("exec gate: %v", err)
	}
	b, _ := os.ReadFile(count)
	if got := string(b); got != "4242\n4242\n4242\n" {
		t.Errorf("runs (ENTRYPOINT_APP_PID each) = %q, want three with 4242", got)
	}
}

// timeoutNaming waits on the gate r describes, with r.Timeout starting at
// first and doubling, until its timeout error names want. A gate whose
// timeout passes before one attempt has come back can only say that the
// attempt was cut short ("i/o timeout", "context deadline exceeded"): on
// a loaded machine that happens to a probe of 100 ms; it says nothing
// about the gate, so the budget grows with what one attempt costs here
// instead of betting on the wall clock.
func timeoutNaming(t *testing.T, r config.Readiness, target graceful.Target, first time.Duration, want string) error {
	t.Helper()
	for timeout := first; ; timeout *= 2 {
		r.Timeout = config.Duration(timeout)
		err := gate(t, r).Wait(context.Background(), target)
		if err == nil || strings.Contains(err.Error(), want) || timeout > time.Duration(long) {
			return err
		}
		t.Logf("no attempt answered within %s (%v); trying a longer timeout", timeout, err)
	}
}

func TestExecGateTimeoutSaysWhy(t *testing.T) {
	t.Setenv(roleEnv, "echo-exit")
	r := config.Readiness{Type: "exec", Command: []string{helperPath(t)}, Delay: fast}
	err := timeoutNaming(t, r, graceful.Target{Pid: 1, Reaper: testReaper, Env: os.Environ()}, time.Second, "exited 3")
	if !errors.Is(err, graceful.ErrNotReady) || !strings.Contains(err.Error(), "exited 3") || !strings.Contains(err.Error(), "out") {
		t.Errorf("err = %v, want a timeout naming exit 3 and the output", err)
	}
	if !strings.HasPrefix(err.Error(), "readiness gate exec: not ready within ") {
		t.Errorf("err = %q", err)
	}
}

func TestHTTPGate(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case r.URL.Path == "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case calls.Add(1) < 3:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	if err := gate(t, config.Readiness{Type: "http", Address: srv.URL + "/ready", Delay: fast, Timeout: long}).Wait(context.Background(), graceful.Target{}); err != nil {
		t.Errorf("http gate: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("probes = %d, want 3 (two 503 then 200)", calls.Load())
	}
	// 3xx is an answer from the app: ready, and the redirect is not followed.
	noScheme := strings.TrimPrefix(srv.URL, "http://") + "/moved"
	if err := gate(t, config.Readiness{Type: "http", Address: noScheme, Delay: fast, Timeout: long}).Wait(context.Background(), graceful.Target{}); err != nil {
		t.Errorf("http gate on a redirect: %v", err)
	}
	err := timeoutNaming(t, config.Readiness{Type: "http", Address: srv.URL + "/down", Delay: fast}, graceful.Target{}, time.Duration(short), "503")
	if !errors.Is(err, graceful.ErrNotReady) || !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want a timeout naming 503", err)
	}
}

func TestTCPGate(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := gate(t, config.Readiness{Type: "tcp", Address: addr, Delay: fast, Timeout: long}).Wait(context.Background(), graceful.Target{}); err != nil {
		t.Errorf("tcp gate: %v", err)
	}
	l.Close()
	err = timeoutNaming(t, config.Readiness{Type: "tcp", Address: addr, Delay: fast}, graceful.Target{}, time.Duration(short), "refused")
	if !errors.Is(err, graceful.ErrNotReady) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want a timeout naming the refused connection", err)
	}
}

func TestDelayAndNoneGates(t *testing.T) {
	if err := gate(t, config.Readiness{Type: "delay", Delay: fast}).Wait(context.Background(), graceful.Target{}); err != nil {
		t.Errorf("delay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := gate(t, config.Readiness{Type: "delay", Delay: long}).Wait(ctx, graceful.Target{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled delay: %v", err)
	}
	if err := gate(t, config.Readiness{Type: "none"}).Wait(ctx, graceful.Target{}); err != nil {
		t.Errorf("none: %v", err)
	}
	// No default delay, as config.Load says for --readiness delay.
	if g, err := graceful.NewGate(config.Readiness{Type: "delay"}); err == nil {
		t.Errorf("delay gate without a delay = %v, want an error", g)
	}
}

func TestNewGateRejectsBadConfig(t *testing.T) {
	for _, r := range []config.Readiness{
		{Type: ""},
		{Type: "ping"},
		{Type: "exec"},
		{Type: "http", Address: "ftp://x/"},
		{Type: "tcp", Address: "no-port"},
	} {
		if _, err := graceful.NewGate(r); err == nil {
			t.Errorf("NewGate(%+v) accepted", r)
		}
	}
}
