package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/status/statustest"
)

// TestMain lets the test binary act as a CLI client run by another user.
func TestMain(m *testing.M) {
	if os.Getenv("ENTRYPOINT_TEST_ROLE") == "call" {
		resp, err := Call(context.Background(), os.Getenv("ENTRYPOINT_TEST_SOCKET"), "status", "")
		fmt.Println(resp.OK, resp.Error, resp.Status != nil, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newFake runs web at generation 1 and api at generation 5.
func newFake() *statustest.Fake {
	return statustest.New(statustest.Running("web", 1), statustest.Running("api", 5))
}

// serve runs Serve on l until the test ends.
func serve(t *testing.T, l net.Listener, c status.Controller) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, c, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return cancel
}

func TestListenCreatesMode0600EvenWithOpenUmask(t *testing.T) {
	old := syscall.Umask(0) // the bind itself would create 0777
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode = %v, want a socket with 0600", fi.Mode())
	}
}

func TestListenReplacesOnlyStaleSockets(t *testing.T) {
	dir := t.TempDir()

	// A socket left behind by a dead init (nobody accepts on it).
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l, err := Listen(stale)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()

	// The live one just bound must not be stolen.
	if l2, err := Listen(stale); err == nil {
		l2.Close()
		t.Fatal("Listen replaced a socket another process serves")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error for a live socket = %v", err)
	}

	// Never delete something that is not a socket.
	file := filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l3, err := Listen(file); err == nil {
		l3.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "data" {
		t.Errorf("regular file damaged: %q %v", b, err)
	}
}

func TestCallActions(t *testing.T) {
	f := newFake()
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, f)
	ctx := context.Background()

	resp, err := Call(ctx, path, "status", "")
	if err != nil || !resp.OK || resp.Status == nil || len(resp.Status.Apps) != 2 {
		t.Fatalf("status = %+v, %v", resp, err)
	}
	resp, err = Call(ctx, path, "reload", "web")
	if err != nil || len(resp.Results) != 1 || resp.Results[0].From != 1 || resp.Results[0].To != 2 {
		t.Fatalf("reload web = %+v, %v", resp, err)
	}
	resp, err = Call(ctx, path, "restart", "")
	if err != nil || len(resp.Results) != 2 {
		t.Fatalf("restart = %+v, %v", resp, err)
	}
	if _, err := Call(ctx, path, "shutdown", ""); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	for _, tc := range []struct{ action, app, want string }{
		{"reload", "nope", `unknown app "nope"; apps: web, api`},
		{"frobnicate", "", `unknown action "frobnicate"`},
	} {
		resp, err := Call(ctx, path, tc.action, tc.app)
		if err != nil || resp.OK || !strings.Contains(resp.Error, tc.want) {
			t.Errorf("%s %s = %+v, %v; want a failed answer saying %q", tc.action, tc.app, resp, err, tc.want)
		}
	}

	f.Tune(func(k *statustest.Knobs) { k.Rollback = "new generation exited with status 3" })
	resp, err = Call(ctx, path, "reload", "api")
	if err != nil || resp.OK || !strings.Contains(resp.Error, "exited with status 3") || len(resp.Results) != 1 || resp.Results[0].OK {
		t.Errorf("rolled-back reload = %+v, %v", resp, err)
	}

	// The shutdown runs once its caller has its answer: maybe only now.
	for deadline := time.Now().Add(10 * time.Second); len(f.Shutdowns()) == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	want := []string{"reload web", "restart ", "reload api"}
	if calls, shutdowns := f.Calls(), f.Shutdowns(); fmt.Sprint(calls) != fmt.Sprint(want) || len(shutdowns) != 1 {
		t.Errorf("supervisor saw %q and shutdowns %q, want %q and one shutdown", calls, shutdowns, want)
	}
}

func TestServeStopsAndRemovesSocket(t *testing.T) {
	f := newFake()
	f.Tune(func(k *statustest.Knobs) { k.Block = true })
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	cancel := serve(t, l, f)

	// Call gives up when its own context ends.
	ctx, stop := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer stop()
	if _, err := Call(ctx, path, "reload", "web"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call past its deadline = %v, want DeadlineExceeded", err)
	}
	cancel() // the blocked action sees its context end; Serve returns
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket file still there after Serve ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAbstractSocketRefusesOtherUsers(t *testing.T) {
	name := fmt.Sprintf("@entrypoint-control-test-%d", os.Getpid())
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, newFake())
	if resp, err := Call(context.Background(), name, "status", ""); err != nil || !resp.OK {
		t.Fatalf("status over the abstract socket = %+v, %v", resp, err)
	}

	if os.Getuid() != 0 {
		t.Skip("running as another user needs root")
	}
	// An abstract socket has no file mode: SO_PEERCRED is the only gate.
	// Run this test binary as nobody; it must be readable by nobody.
	dir, err := os.MkdirTemp("", "control-test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "control.test")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"ENTRYPOINT_TEST_ROLE=call", "ENTRYPOINT_TEST_SOCKET=" + name}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "permission denied: uid 65534") {
		t.Errorf("client as nobody got %q, want permission denied", out)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// Issue 11 item 5: a request accepted only after its caller gave up (the
// init was out of fds, or busy) starts nothing.
func TestRequestOfCallerGoneBeforeAcceptRunsNothing(t *testing.T) {
	f := newFake()
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// Connected and sent while nobody accepts, then gone.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(`{"action":"reload","app":"web"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, f, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if len(f.Calls()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never read the queued request")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil { // Serve waits for its handlers
		t.Fatal(err)
	}
	if started := f.Started(); len(started) != 0 {
		t.Errorf("started %q for a caller that had left", started)
	}
}

// A caller that gives up learns whether its action started (and will run
// to its end) or not (and will not run).
func TestGaveUpCallSaysWhetherItStarted(t *testing.T) {
	for _, begin := range []bool{true, false} {
		f := newFake()
		f.Tune(func(k *statustest.Knobs) { k.Block, k.BlockBegins = true, begin })
		path := filepath.Join(t.TempDir(), "control.sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		serve(t, l, f)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err = Call(ctx, path, "reload", "web")
		cancel()
		var e *AbandonedError
		if !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("begin=%v: Call = %v, want an AbandonedError", begin, err)
		}
		want := "had not started and will not run"
		if begin {
			want = "already started and will run to its end"
		}
		if !e.Answered || !strings.Contains(e.Outcome(), want) {
			t.Errorf("begin=%v: %+v: %s; want an answered %q", begin, e, e.Outcome(), want)
		}
	}
}

// answeredFirst is a controller whose Shutdown records whether the caller
// had its answer by then.
type answeredFirst struct {
	*statustest.Fake
	answered atomic.Bool
	after    chan bool
}

func (a *answeredFirst) Shutdown(reason string) {
	a.Fake.Shutdown(reason)
	a.after <- a.answered.Load()
}

// Issue 14 item 5: the init may end (and take a CLI in its PID namespace
// with it) as soon as the shutdown starts, so the caller must have its
// answer first.
func TestShutdownStartsAfterTheCallerHasTheAnswer(t *testing.T) {
	c := &answeredFirst{Fake: newFake(), after: make(chan bool, 1)}
	path := filepath.Join(t.TempDir(), "control.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, c)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(`{"action":"shutdown"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil || !resp.OK {
		t.Fatalf("shutdown answer = %+v, %v", resp, err)
	}
	c.answered.Store(true)
	conn.Close() // as Call does once it has the answer
	select {
	case answered := <-c.after:
		if !answered {
			t.Error("the shutdown started before the caller had its answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown after the answer")
	}
}
