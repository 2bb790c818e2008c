// Package pid1 drives the real entrypoint binary as PID 1 of a new PID
// namespace (unshare --pid --fork --mount-proc) and, where the issue asks,
// as a child subreaper, with the test binary re-executed as the app.
package pid1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// roleEnv selects a helper role. It must not start with ENTRYPOINT_: the
// init strips its own variables from the app's environment.
const roleEnv = "EPTEST_ROLE"

var (
	entrypointBin string // built once in TestMain
	selfBin       string
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "entrypoint-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	entrypointBin = filepath.Join(dir, "entrypoint")
	build := exec.Command("go", append(append([]string{"build", "-o", entrypointBin}, raceFlags...), "github.com/entrypoint/entrypoint/cmd/entrypoint")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build entrypoint:", err)
		os.Exit(1)
	}
	selfBin, _ = os.Executable()
	// A race-enabled binary sleeps a second at exit unless told not to.
	os.Setenv("GORACE", "atexit_sleep_ms=0 exitcode=66")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// app returns the argv that runs this test binary in role with args.
func app(role string, args ...string) []string {
	return append([]string{"env", roleEnv + "=" + role, selfBin}, args...)
}

// needPID1 skips when PID namespaces cannot be made here.
func needPID1(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) not found: install util-linux to run the PID-1 tests")
	}
	if os.Geteuid() != 0 {
		t.Skip("PID-1 tests need root (unshare --pid --mount-proc); CI runs them as root")
	}
}

// initProc is one running entrypoint.
type initProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	pid    int // host PID of the entrypoint process
	out    *lines
	errOut *lines
	done   chan struct{}
	code   int
}

// lines collects a stream line by line and lets tests wait for a line.
type lines struct {
	mu    sync.Mutex
	all   []string
	cond  chan struct{}
	ended bool
	eof   chan struct{} // closed when the stream has ended
}

// newLines reads r to its end, then closes it if it is a Closer.
func newLines(r io.Reader) *lines {
	l := &lines{cond: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		defer close(l.eof)
		if c, ok := r.(io.Closer); ok {
			defer c.Close()
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			close(l.cond)
			l.cond = make(chan struct{})
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.ended = true
		close(l.cond)
		l.mu.Unlock()
	}()
	return l
}

// wait returns the first line containing s, failing after timeout.
func (l *lines) wait(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.all); seen++ {
			if strings.Contains(l.all[seen], s) {
				line := l.all[seen]
				l.mu.Unlock()
				return line
			}
		}
		ch, ended := l.cond, l.ended
		l.mu.Unlock()
		if ended {
			t.Fatalf("stream ended without %q; got:\n%s", s, l.String())
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no line with %q within %s; got:\n%s", s, timeout, l.String())
		}
	}
}

func (l *lines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.all {
		if strings.Contains(x, s) {
			n++
		}
	}
	return n
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

type startOpts struct {
	pid1  bool
	env   []string
	stdin io.Reader
	// With pid1: newNet gives the namespace its own network namespace too;
	// netOf > 0 joins the network namespace of that host PID instead
	// (the containers of one pod).
	newNet bool
	netOf  int
	// control keeps the default control socket (the harness turns it off).
	control bool
	// With pid1: memfdNoexec sets vm.memfd_noexec to 2 in the new PID
	// namespace (it is per namespace) before the init starts, as a host
	// that forbids executable memfds would.
	memfdNoexec bool
}

// start runs entrypoint with args; with pid1 it is PID 1 of a new PID
// namespace, otherwise a plain child (it then registers as subreaper).
func start(t *testing.T, o startOpts, args ...string) *initProc {
	t.Helper()
	var cmd *exec.Cmd
	if o.pid1 {
		needPID1(t)
		argv := []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}
		if o.newNet {
			argv = append(argv, "--net")
		}
		if o.netOf > 0 {
			// nsenter execs unshare: cmd's PID stays unshare's.
			argv = append([]string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", o.netOf)}, argv...)
		}
		if o.memfdNoexec {
			// sh execs the init: it is still PID 1.
			argv = append(argv, "sh", "-c", `echo 2 >/proc/sys/vm/memfd_noexec && exec "$0" "$@"`)
		}
		argv = append(argv, entrypointBin)
		cmd = exec.Command(argv[0], append(argv[1:], args...)...)
	} else {
		cmd = exec.Command(entrypointBin, args...)
	}
	cmd.Env = append(os.Environ(), "ENTRYPOINT_HEALTH_LISTEN=off")
	if !o.control {
		cmd.Env = append(cmd.Env, "ENTRYPOINT_CONTROL_SOCKET=off")
	}
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stdin = o.stdin
	// Kill the whole test tree if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Plain pipes, not StdoutPipe: Wait closes those as soon as the
	// process exits, losing what was not read yet, and os/exec forbids
	// reading them concurrently with Wait (TestRestartPolicyExit once saw
	// "app ran 0 times"). These are read to EOF whatever Wait does.
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatalf("start: %v", err)
	}
	p := &initProc{t: t, cmd: cmd, pid: cmd.Process.Pid, out: newLines(outR), errOut: newLines(errR), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.code = exitCode(err, cmd.ProcessState)
		// Everything the init and its apps wrote before the exit is read
		// before done says so. A process the init left behind may hold
		// the pipe open: then done does not wait for it.
		for _, l := range []*lines{p.out, p.errOut} {
			select {
			case <-l.eof:
			case <-time.After(5 * time.Second):
			}
		}
		close(p.done)
	}()
	if o.pid1 {
		p.pid = childOf(t, cmd.Process.Pid)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("entrypoint stderr:\n%s", p.errOut.String())
		}
	})
	return p
}

func exitCode(err error, st *os.ProcessState) int {
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// childOf finds the process unshare forked (the entrypoint, PID 1 inside).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				c, _ := strconv.Atoi(f[0])
				// Wait for the exec: until then the child is unshare.
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", c)); exe == entrypointBin {
					return c
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("unshare (pid %d) started no entrypoint", pid)
	return 0
}

func (p *initProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.pid, sig); err != nil {
		p.t.Fatalf("kill %d %v: %v", p.pid, sig, err)
	}
}

// budget is how long a test may wait for work whose length depends on the
// machine (forking thousands of processes): until shortly before go
// test's -timeout would panic, so that a slow runner costs time rather
// than a false failure, and the failure is still this test's own message.
func budget(t *testing.T) time.Duration {
	d, ok := t.Deadline()
	if !ok {
		return time.Hour
	}
	return max(time.Until(d)-30*time.Second, 10*time.Second)
}

// wait returns entrypoint's exit code, failing after timeout.
func (p *initProc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("entrypoint did not exit within %s\nstderr:\n%s", timeout, p.errOut.String())
		return -1
	}
}

// ---- helper roles: the apps the tests run ----

func runRole(role string, args []string) int {
	switch role {
	case "print-signals":
		return printSignals()
	case "exit":
		n, _ := strconv.Atoi(args[0])
		return n
	case "orphans":
		return makeOrphans(args)
	case "stray":
		return makeStray()
	case "crash-until":
		return crashUntil(args)
	case "slow-drain":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		time.Sleep(300 * time.Millisecond) // finishing in-flight work
		fmt.Println("drained")
		return 0
	case "bad-init":
		return badInit(args)
	case "listen-pid":
		// What the systemd protocol promises: LISTEN_PID is our pid.
		// SIGTERM is caught before READY=1, which lets the init send it.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Printf("generation=%s LISTEN_PID=%s pid=%d\n", os.Getenv("ENTRYPOINT_GENERATION"), os.Getenv("LISTEN_PID"), os.Getpid())
		notifyReady()
		<-ch
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// printSignals prints "ready", then the name of every signal it gets, one
// a line (dumb-init's print_signals.py). SIGTERM and SIGQUIT also end it.
func printSignals() int {
	if d, err := time.ParseDuration(os.Getenv("EPTEST_DELAY")); err == nil {
		time.Sleep(d) // a slow start: signals sent now would be dropped
	}
	ch := make(chan os.Signal, 64)
	var all []os.Signal
	for s := syscall.Signal(1); s <= 31; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGSYS, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGTSTP, syscall.SIGPIPE, syscall.SIGPROF:
			continue
		}
		all = append(all, s)
	}
	for s := syscall.Signal(35); s <= 64; s++ {
		all = append(all, s)
	}
	signal.Notify(ch, all...)
	notifyReady()
	fmt.Printf("ready pid=%d gen=%s\n", os.Getpid(), os.Getenv("ENTRYPOINT_GENERATION"))
	for s := range ch {
		fmt.Printf("got %s\n", strings.ToUpper(unixName(s.(syscall.Signal))))
		if s == syscall.SIGTERM || s == syscall.SIGQUIT || s == syscall.SIGINT || s == syscall.SIGHUP {
			return 0
		}
	}
	return 0
}

func unixName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGABRT: "SIGABRT",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
		syscall.SIGSTKFLT: "SIGSTKFLT", syscall.SIGCONT: "SIGCONT", syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ",
		syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGPROF: "SIGPROF", syscall.SIGWINCH: "SIGWINCH", syscall.SIGIO: "SIGIO",
		syscall.SIGPWR: "SIGPWR",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("SIG%d", int(s))
}

// notifyReady sends READY=1 when the init gave us a NOTIFY_SOCKET.
func notifyReady() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer syscall.Close(fd)
	syscall.Sendto(fd, []byte("READY=1"), 0, &syscall.SockaddrUnix{Name: addr})
}

// makeOrphans double-forks n short-lived orphans through sh, then polls
// until no zombie child of the init is left (or a deadline), prints
// "zombies=N" and exits with code (args[1]) or 0/1 by the zombie count.
func makeOrphans(args []string) int {
	n, _ := strconv.Atoi(args[0])
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do (sleep 0.01 &); i=$((i+1)); done", n)
	began := time.Now()
	if err := exec.Command("sh", "-c", script).Run(); err != nil {
		fmt.Println("sh:", err)
		return 2
	}
	forking := time.Since(began)
	if len(args) > 1 {
		// The race: exit at once while the init reaps the orphans.
		c, _ := strconv.Atoi(args[1])
		return c
	}
	// Reaping is far cheaper than forking: a machine that took long to
	// fork them gets as long to see them gone.
	deadline := time.Now().Add(max(20*time.Second, forking))
	z := 0
	for {
		z = zombies(os.Getppid())
		if z == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("zombies=%d\n", z)
	if z != 0 {
		return 1
	}
	return 0
}

// zombies counts processes in state Z whose parent is ppid, or that are
// sleep(1)s still running (orphans not yet exited).
func zombies(ppid int) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		parent, _ := strconv.Atoi(f[1])
		if parent != ppid {
			continue
		}
		if f[0] == "Z" || strings.Contains(s[:i], "(sleep") {
			n++
		}
	}
	return n
}

// makeStray starts a daemon that ignores nothing, in its own session, and
// exits at once, leaving the daemon behind; it prints the daemon's PID.
func makeStray() int {
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println("start:", err)
		return 2
	}
	fmt.Printf("stray=%d\n", cmd.Process.Pid)
	return 0
}

// crashUntil exits 1 while its generation is below args[0], then serves
// like print-signals: the restart policy's test app.
func crashUntil(args []string) int {
	want, _ := strconv.Atoi(args[0])
	g, _ := strconv.Atoi(os.Getenv("ENTRYPOINT_GENERATION"))
	fmt.Printf("generation %d\n", g)
	if g < want {
		return 1
	}
	return printSignals()
}

// badInit runs args as its only child and waits for that PID alone:
// an init that does not reap orphans, for the negative control.
func badInit(args []string) int {
	p, err := os.StartProcess("/usr/bin/env", append([]string{"env"}, args...), &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Println(err)
		return 2
	}
	var ws syscall.WaitStatus
	syscall.Wait4(p.Pid, &ws, 0, nil)
	return ws.ExitStatus()
}

// ---- small helpers ----

func runCapture(ctx context.Context, name string, args ...string) (string, string, int) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return out.String(), errb.String(), code
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}
