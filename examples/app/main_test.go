package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// roleEnv switches the re-executed test binary into a helper role.
const roleEnv = "EXAMPLE_APP_TEST_ROLE"

// shimExecEnv names the binary the shim role execs; default the test binary
// itself in the app role.
const shimExecEnv = "EXAMPLE_APP_TEST_EXEC"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "app":
		os.Exit(run(os.Args[1:], os.Stderr))
	case "shim":
		// What entrypoint's exec shim does: LISTEN_PID can only be known
		// after fork, so set it to our own pid and exec the app in place.
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		os.Setenv(roleEnv, "app")
		path := os.Getenv(shimExecEnv)
		if path == "" {
			path = os.Args[0]
		}
		err := syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
		fmt.Fprintln(os.Stderr, "shim exec:", err)
		os.Exit(127)
	}
	os.Exit(m.Run())
}

// proc is one started app with its stderr lines and notify socket.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	notify *net.UnixConn
}

type startOpts struct {
	args      []string
	env       []string
	files     []*os.File // become fds 3..
	shim      bool       // go through the LISTEN_PID shim
	binary    string     // exec this instead of the test binary
	noNotify  bool
	notifyDir string // filesystem NOTIFY_SOCKET instead of an abstract one
}

func start(t *testing.T, o startOpts) *proc {
	t.Helper()
	p := &proc{t: t, lines: make(chan string, 100)}
	env := append(os.Environ(), o.env...)
	if !o.noNotify {
		name := fmt.Sprintf("@example-app-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		if o.notifyDir != "" {
			name = filepath.Join(o.notifyDir, "notify.sock")
		}
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatalf("listen notify socket: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		p.notify = c
		env = append(env, "NOTIFY_SOCKET="+name)
	}
	path := os.Args[0]
	switch {
	case o.shim:
		env = append(env, roleEnv+"=shim", shimExecEnv+"="+o.binary)
	case o.binary != "":
		path = o.binary
	default:
		env = append(env, roleEnv+"=app")
	}
	p.cmd = exec.Command(path, o.args...)
	p.cmd.Env = env
	p.cmd.ExtraFiles = o.files
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start app: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("app: %s", sc.Text())
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// waitLine returns the first stderr line containing all of subs.
func (p *proc) waitLine(subs ...string) string {
	p.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("app ended before logging %q", subs)
			}
			all := true
			for _, s := range subs {
				all = all && strings.Contains(l, s)
			}
			if all {
				return l
			}
		case <-timeout:
			p.t.Fatalf("no log line with %q", subs)
		}
	}
}

// readNotify returns the next sd_notify datagram.
func (p *proc) readNotify() string {
	p.t.Helper()
	buf := make([]byte, 4096)
	p.notify.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := p.notify.Read(buf)
	if err != nil {
		p.t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

// exit sends sig and returns the exit code.
func (p *proc) exit(sig syscall.Signal) int {
	p.t.Helper()
	if sig != 0 {
		if err := p.cmd.Process.Signal(sig); err != nil {
			p.t.Fatalf("signal app: %v", err)
		}
	}
	// No reaper runs in this test process, so Wait is the one waiter.
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		p.t.Fatalf("wait app: %v", err)
	}
	return p.cmd.ProcessState.ExitCode()
}

func listen(t *testing.T) (*net.TCPListener, *os.File) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return l.(*net.TCPListener), f
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestHandoffServesEverySocket(t *testing.T) {
	l1, f1 := listen(t)
	l2, f2 := listen(t)
	cfg := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(cfg, []byte("greeting: hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, startOpts{
		shim:  true,
		files: []*os.File{f1, f2},
		args:  []string{"-addr", "127.0.0.1:1", "-config", cfg},
		env: []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=http:admin",
			"ENTRYPOINT_GENERATION=7", "APP_VERSION=v9"},
	})
	if got := p.readNotify(); got != "READY=1\nSTATUS=serving" {
		t.Fatalf("first notify = %q, want READY=1 and STATUS", got)
	}
	p.waitLine("source=systemd")
	for _, l := range []*net.TCPListener{l1, l2} {
		body := get(t, "http://"+l.Addr().String()+"/")
		for _, want := range []string{
			fmt.Sprintf("pid=%d ", p.cmd.Process.Pid), "generation=7 ", "version=v9 ",
			`config="greeting: hello"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("GET / on %s = %q, want it to contain %q", l.Addr(), body, want)
			}
		}
		if got := strings.TrimSpace(get(t, "http://"+l.Addr().String()+"/pid")); got != strconv.Itoa(p.cmd.Process.Pid) {
			t.Errorf("/pid = %q, want %d", got, p.cmd.Process.Pid)
		}
	}
	if got := strings.TrimSpace(get(t, "http://"+l1.Addr().String()+"/healthz")); got != "ok" {
		t.Errorf("/healthz = %q", got)
	}
	if code := p.exit(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if got := p.readNotify(); got != "STOPPING=1" {
		t.Errorf("notify after SIGTERM = %q, want STOPPING=1", got)
	}
}

func TestFilesystemNotifySocket(t *testing.T) {
	_, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, notifyDir: t.TempDir()})
	if got := p.readNotify(); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("notify = %q, want READY=1", got)
	}
	if code := p.exit(syscall.SIGINT); code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0", code)
	}
}

// A LISTEN_PID naming another process means the fds are not ours: the app
// must bind -addr itself, as sd_listen_fds(3) says.
func TestListenPIDMismatchBinds(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{
		files: []*os.File{f},
		args:  []string{"-addr", "127.0.0.1:0"},
		env:   []string{"LISTEN_FDS=1", "LISTEN_PID=1"},
	})
	line := p.waitLine("msg=listening", "source=bind")
	if strings.Contains(line, l.Addr().String()) {
		t.Fatalf("app used the inherited socket despite LISTEN_PID=1: %s", line)
	}
	p.readNotify()
	if code := p.exit(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d", code)
	}
}

func TestServerStarterPort(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{
		files: []*os.File{f},
		env:   []string{"SERVER_STARTER_PORT=" + l.Addr().String() + "=3"},
	})
	p.readNotify()
	p.waitLine("source=server-starter")
	if got := strings.TrimSpace(get(t, "http://"+l.Addr().String()+"/pid")); got != strconv.Itoa(p.cmd.Process.Pid) {
		t.Errorf("/pid = %q, want %d", got, p.cmd.Process.Pid)
	}
	if code := p.exit(syscall.SIGQUIT); code != 0 {
		t.Errorf("exit code after SIGQUIT = %d, want 0", code)
	}
}

// rawGet sends one keep-alive request on c and returns the response.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatalf("send %s: %v", path, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to %s: %v", path, err)
	}
	return resp
}

// The seed framework's promise: a long request survives the stop signal,
// idle keep-alive connections are closed cleanly (FIN, not RST), and the
// process exits 0.
func TestDrainFinishesInFlightAndClosesIdle(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}})
	p.readNotify()

	idle, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleBR := bufio.NewReader(idle)
	resp := rawGet(t, idle, idleBR, "/pid")
	io.ReadAll(io.LimitReader(resp.Body, 100))
	resp.Body.Close()

	busy, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyBR := bufio.NewReader(busy)
	// The headers arrive before the sleep: the request is in the handler.
	sleepResp := rawGet(t, busy, busyBR, "/sleep?d=500ms")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := p.readNotify(); got != "STOPPING=1" {
		t.Fatalf("notify = %q, want STOPPING=1", got)
	}
	body, err := io.ReadAll(sleepResp.Body)
	if err != nil {
		t.Fatalf("in-flight request cut by the stop signal: %v", err)
	}
	if strings.TrimSpace(string(body)) != strconv.Itoa(p.cmd.Process.Pid) {
		t.Errorf("/sleep body = %q, want the pid", body)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idleBR.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle keep-alive connection: read = %d, %v; want a clean EOF", n, err)
	}
	if code := p.exit(0); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func TestDrainBound(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, args: []string{"-drain", "100ms"}})
	p.readNotify()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp := rawGet(t, c, bufio.NewReader(c), "/sleep?d=1h")
	if code := p.exit(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	p.waitLine("drain bound reached")
	if body, err := io.ReadAll(resp.Body); err == nil && strings.TrimSpace(string(body)) != "" {
		t.Errorf("request past the drain bound completed: %q", body)
	}
}

func TestFailStart(t *testing.T) {
	_, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, args: []string{"-fail-start"}})
	if code := p.exit(0); code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	// The process is gone, so any datagram it sent is already queued.
	p.notify.SetReadDeadline(time.Now())
	if n, err := p.notify.Read(make([]byte, 100)); err == nil {
		t.Errorf("-fail-start sent a notification (%d bytes)", n)
	}
}

func TestNeverReady(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, args: []string{"-never-ready"}})
	p.waitLine("never sending READY")
	get(t, "http://"+l.Addr().String()+"/healthz")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.readNotify(); got != "STOPPING=1" {
		t.Errorf("first notify = %q, want STOPPING=1 (no READY)", got)
	}
	if code := p.exit(0); code != 0 {
		t.Errorf("exit code = %d", code)
	}
}

func TestStopDuringStartup(t *testing.T) {
	_, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, args: []string{"-ready-delay", "1h"}})
	p.waitLine("msg=listening")
	if code := p.exit(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	p.notify.SetReadDeadline(time.Now())
	if n, err := p.notify.Read(make([]byte, 100)); err == nil {
		t.Errorf("stopped during start-up but sent a notification (%d bytes)", n)
	}
}

func TestEventsFile(t *testing.T) {
	_, f := listen(t)
	path := filepath.Join(t.TempDir(), "events")
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1", "APP_EVENTS=" + path, "ENTRYPOINT_GENERATION=3"}})
	p.readNotify()
	p.exit(syscall.SIGTERM)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(l, fmt.Sprintf(`"pid":%d,"gen":"3"`, p.cmd.Process.Pid)) {
			t.Errorf("event line %q lacks pid and generation", l)
		}
		got = append(got, strings.SplitN(strings.TrimPrefix(l, `{"event":"`), `"`, 2)[0])
	}
	if strings.Join(got, ",") != "start,ready,stop,exit" {
		t.Errorf("events = %v, want start,ready,stop,exit", got)
	}
}

// The real binary, built the way the README and the benchmark build it,
// with the version stamped by the linker, through the LISTEN_PID shim.
func TestBuiltBinaryVersion(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "example-app")
	build := exec.Command(gobin, "build", "-ldflags", "-X main.version=v2-linked", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l, f := listen(t)
	p := start(t, startOpts{shim: true, binary: bin, files: []*os.File{f}, env: []string{"LISTEN_FDS=1", "APP_VERSION="}})
	p.readNotify()
	if body := get(t, "http://"+l.Addr().String()+"/"); !strings.Contains(body, "version=v2-linked ") {
		t.Errorf("GET / = %q, want version=v2-linked", body)
	}
	if code := p.exit(syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d", code)
	}
}

// After the stop signal a kept-alive connection still gets an answer to its
// next request, marked "Connection: close", and then a clean EOF: a client
// whose request was already on the wire sees no reset.
func TestLameDuckAnswersKeptAliveConnections(t *testing.T) {
	l, f := listen(t)
	p := start(t, startOpts{shim: true, files: []*os.File{f}, env: []string{"LISTEN_FDS=1"}, args: []string{"-lame-duck", "1m"}})
	p.readNotify()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp := rawGet(t, c, br, "/pid")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.readNotify(); got != "STOPPING=1" {
		t.Fatalf("notify = %q, want STOPPING=1", got)
	}
	p.waitLine("msg=stopping")
	resp = rawGet(t, c, br, "/pid")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("request on a kept-alive connection during drain: status %d, %v", resp.StatusCode, err)
	}
	if !resp.Close {
		t.Errorf("response during drain lacks Connection: close (body %q)", body)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the last response: read = %d, %v; want a clean EOF", n, err)
	}
	// The last connection is gone, so the app need not wait out -lame-duck.
	if code := p.exit(0); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}
