package recipes

// A small copy of e2e/swap's harness: build the binary, run it with a
// control socket, swap through that socket, and count what a load
// generator sees. Kept apart so the recipes read on their own.

import (
	"context"
	"errors"
	"fmt"
	"github.com/entrypoint/entrypoint/internal/syncbuf"
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

var entrypointBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "entrypoint-recipes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	entrypointBin = filepath.Join(dir, "entrypoint")
	cmd := exec.Command("go", "build", "-o", entrypointBin, "./cmd/entrypoint")
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, b)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need fails the test when a server is missing: every one of them is in
// the Debian archive and scripts/test.sh installs it, so a missing one is
// a broken machine, not a reason to skip.
func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/test.sh installs it from the Debian archive): %v", bin, err)
	}
	return p
}

// freePort returns a loopback port nobody listens on now; the servers
// bind a port they are told, so it cannot be :0.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logBuf collects the init's and the server's output while the test reads it.
type logBuf = syncbuf.Buffer

// ep is one running entrypoint.
type ep struct {
	t      *testing.T
	cmd    *exec.Cmd
	socket string
	log    *logBuf
	done   chan struct{}
	code   int
}

// start runs entrypoint with args (its own flags, "--", the server) and
// waits until the app is ready. The server's output goes to the same log.
func start(t *testing.T, args ...string) *ep {
	t.Helper()
	e := startNoWait(t, args...)
	e.waitReady()
	return e
}

func startNoWait(t *testing.T, args ...string) *ep {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "control.sock")
	full := append([]string{"--control-socket", socket, "--health-listen", "off"}, args...)
	cmd := exec.Command(entrypointBin, full...)
	e := &ep{t: t, cmd: cmd, socket: socket, log: &logBuf{}, done: make(chan struct{})}
	cmd.Stdout = e.log
	cmd.Stderr = e.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // apps of a killed init hold stderr
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
			// Past the drain timeout (30 s) and the kill after it: an init
			// killed here would leave its apps behind.
			case <-time.After(45 * time.Second):
				cmd.Process.Kill()
				<-e.done
			}
		}
		if t.Failed() {
			t.Logf("entrypoint and server output:\n%s", e.log.String())
		}
	})
	return e
}

func (e *ep) call(op string, timeout time.Duration) control.Response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := control.Call(ctx, e.socket, op, "app")
	if err != nil {
		e.t.Fatalf("%s: %v", op, err)
	}
	return resp
}

func (e *ep) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-e.done:
			e.t.Fatalf("entrypoint exited with %d before it was ready:\n%s", e.code, e.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := control.Call(ctx, e.socket, "status", "")
		cancel()
		if err == nil && resp.Status != nil {
			if ok, _ := resp.Status.Ready(); ok {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("entrypoint not ready in time:\n%s", e.log.String())
}

func (e *ep) app() status.AppStatus {
	e.t.Helper()
	st := e.call("status", 5*time.Second).Status
	if st == nil || len(st.Apps) == 0 {
		e.t.Fatal("status: no app")
	}
	return st.Apps[0]
}

// recipe is what every server's test checks: n swaps through the control
// socket while 4 clients send requests on a new connection each, and not
// one of them fails. It returns the number of requests served.
func recipe(t *testing.T, e *ep, addr string, n int) int {
	t.Helper()
	gen := e.app().Current.N
	l := startLoad(addr, 4)
	for i := 0; i < n; i++ {
		resp := e.call("reload", 120*time.Second)
		if len(resp.Results) == 0 || !resp.Results[0].OK {
			l.stop()
			t.Fatalf("swap %d: %+v", i+1, resp)
		}
	}
	ok := l.finish(t, fmt.Sprintf("%d swaps", n))
	if g := e.app().Current.N; g != gen+n {
		t.Fatalf("generation %d after %d swaps from %d", g, n, gen)
	}
	return ok
}

// load is a client loop that classifies every failure; keep-alive is off
// so every request is a new connection through the owned socket.
type load struct {
	mu       sync.Mutex
	ok       int
	failures map[string]int
	examples []string
	done     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(addr string, workers int) *load {
	l := &load{failures: map[string]int{}, done: make(chan struct{})}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			for {
				select {
				case <-l.done:
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
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// net/http's name for an EOF before the first response byte on a
		// connection it had just opened (transport.go errServerClosedIdle).
		strings.Contains(err.Error(), "server closed idle connection"):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
}

// finish stops the load and fails t if any request failed or none
// succeeded; it logs the measured result the recipes quote.
func (l *load) finish(t *testing.T, what string) int {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	total := l.ok
	for _, n := range l.failures {
		total += n
	}
	if len(l.failures) > 0 || l.ok == 0 {
		t.Fatalf("%s: %d/%d failed %v, e.g. %q", what, total-l.ok, total, l.failures, l.examples)
	}
	t.Logf("%s: 0/%d failed", what, total)
	return l.ok
}
