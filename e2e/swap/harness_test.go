// Package swap drives the real entrypoint binary with the real example
// app: owned sockets, hot swap, rollback, full restart, several apps, all
// under real HTTP traffic on loopback.
package swap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/control"
	"github.com/entrypoint/entrypoint/status"
)

var (
	binDir        string
	entrypointBin string
	exampleBin    string
	selfbindBin   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "entrypoint-swap-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// A race-enabled binary sleeps a second at exit unless told not to.
	os.Setenv("GORACE", "atexit_sleep_ms=0 exitcode=66")
	entrypointBin = filepath.Join(dir, "entrypoint")
	exampleBin = filepath.Join(dir, "example-app")
	selfbindBin = filepath.Join(dir, "selfbind")
	for out, pkg := range map[string]string{entrypointBin: "./cmd/entrypoint", exampleBin: "./examples/app", selfbindBin: "./examples/selfbind"} {
		if err := goBuild(out, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds pkg (relative to the module root) into out.
func goBuild(out, pkg string, ldflags ...string) error {
	args := append([]string{"build", "-o", out}, raceFlags...)
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// ep is one running entrypoint (a plain child: it registers as a
// subreaper; the PID-1 behaviour is tested in e2e/pid1).
type ep struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	stderr *logLines
	done   chan struct{}
	code   int
}

type logLines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startEP runs entrypoint with args and waits until every app is ready.
func startEP(t *testing.T, args ...string) *ep {
	t.Helper()
	e := startEPNoWait(t, args...)
	e.waitReady()
	return e
}

// startEPNoWait runs entrypoint with args and returns at once.
func startEPNoWait(t *testing.T, args ...string) *ep {
	t.Helper()
	return startEPWrapped(t, nil, args...)
}

// startEPWrapped runs entrypoint through wrapper (a command that ends by
// exec'ing its arguments, so the pid stays entrypoint's) and returns at
// once.
func startEPWrapped(t *testing.T, wrapper []string, args ...string) *ep {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "control.sock")
	full := append([]string{"--control-socket", socket, "--health-listen", "off", "--drain-timeout", "10s"}, args...)
	full = append(append(wrapper[:len(wrapper):len(wrapper)], entrypointBin), full...)
	cmd := exec.Command(full[0], full[1:]...)
	e := &ep{t: t, cmd: cmd, socket: socket, stderr: &logLines{}, done: make(chan struct{})}
	cmd.Stdout = io.Discard
	cmd.Stderr = e.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// An init killed below leaves its apps behind, and they hold stderr:
	// Wait must not wait for them to close it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		e.code = cmd.ProcessState.ExitCode()
		close(e.done)
	}()
	t.Cleanup(func() {
		select {
		case <-e.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-e.done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-e.done
			}
		}
		if t.Failed() {
			t.Logf("entrypoint stderr:\n%s", e.stderr.String())
		}
	})
	return e
}

func (e *ep) status() status.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, e.socket, "status", "")
	if err != nil || resp.Status == nil {
		e.t.Fatalf("status: %v", err)
	}
	return *resp.Status
}

// waitReady polls the control socket until every app is ready.
func (e *ep) waitReady() status.Status {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-e.done:
			e.t.Fatalf("entrypoint exited with %d before it was ready:\n%s", e.code, e.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := control.Call(ctx, e.socket, "status", "")
		cancel()
		if err == nil && resp.Status != nil {
			if ok, _ := resp.Status.Ready(); ok {
				return *resp.Status
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("entrypoint not ready in time:\n%s", e.stderr.String())
	return status.Status{}
}

func (e *ep) app(name string) status.AppStatus {
	e.t.Helper()
	for _, a := range e.status().Apps {
		if a.Name == name {
			return a
		}
	}
	e.t.Fatalf("no app %q", name)
	return status.AppStatus{}
}

// addr is the first listener address of app, as bound.
func (e *ep) addr(name string) string {
	e.t.Helper()
	a := e.app(name)
	if len(a.Listen) == 0 {
		e.t.Fatalf("app %s has no listener", name)
	}
	return a.Listen[0]
}

func (e *ep) signal(sig syscall.Signal) {
	e.t.Helper()
	if err := e.cmd.Process.Signal(sig); err != nil {
		e.t.Fatal(err)
	}
}

// reload asks for a hot swap through the control socket, as the CLI does.
func (e *ep) reload(app string) status.Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, e.socket, "reload", app)
	if err != nil || len(resp.Results) == 0 {
		e.t.Fatalf("reload: %v %+v", err, resp)
	}
	return resp.Results[0]
}

// waitGeneration polls until app's current generation is at least n.
func (e *ep) waitGeneration(app string, n int) status.AppStatus {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a := e.app(app)
		if a.Current != nil && a.Current.N >= n && a.Ready {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("app %s never reached generation %d: %+v", app, n, e.app(app))
	return status.AppStatus{}
}

// get fetches path and returns the body, failing the test on any error.
func get(t *testing.T, c *http.Client, addr, path string) string {
	t.Helper()
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// field extracts key=value from the example app's answer line.
func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// load is a client loop that classifies every failure.
type load struct {
	mu       sync.Mutex
	ok       int
	failures map[string]int
	examples []string
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(addr string, workers int, keepAlive bool) *load {
	l := &load{failures: map[string]int{}, stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.record(c.Get("http://" + addr + "/"))
			}
		}()
	}
	return l
}

func (l *load) record(resp *http.Response, err error) {
	class := ""
	if err == nil {
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			err, class = rerr, "body"
		case resp.StatusCode != 200:
			class = fmt.Sprintf("http-%d", resp.StatusCode)
		}
	}
	if err != nil && class == "" {
		class = classify(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if class == "" {
		l.ok++
		return
	}
	l.failures[class]++
	if len(l.examples) < 5 && err != nil {
		l.examples = append(l.examples, err.Error())
	}
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// stopCounts stops the load and returns what happened, for servers whose
// failures are reported rather than forbidden.
func (l *load) stopCounts() (ok int, failures map[string]int, examples []string) {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failures, l.examples
}

// finish stops the load and fails t if any request failed.
func (l *load) finish(t *testing.T, what string) int {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Fatalf("%s: %d ok, failures %v, e.g. %q", what, l.ok, l.failures, l.examples)
	}
	if l.ok == 0 {
		t.Fatalf("%s: no request succeeded", what)
	}
	t.Logf("%s: %d requests, 0 failed", what, l.ok)
	return l.ok
}

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type netConn = net.Conn

func dialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// fresh is a client that opens a new connection for every request: a
// kept-alive connection belongs to the generation that accepted it, which
// keeps serving it while it drains, so only a new connection shows which
// generation the init's socket now feeds.
func fresh(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

func listFDs(pid int) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		out = append(out, e.Name()+"->"+l)
	}
	return out
}

// eventually GETs path on new connections until ok accepts the body. After
// a swap the old generation may accept a few more connections until it
// handles its stop signal and closes its listener; it serves them, so
// they do not fail, but they do not show the swap either.
func eventually(t *testing.T, c *http.Client, addr, path string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	body := ""
	for time.Now().Before(deadline) {
		if body = get(t, c, addr, path); ok(body) {
			return body
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("GET %s never gave the expected answer; last: %q", path, body)
	return body
}
