package graceful_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/graceful/shim"
	"github.com/entrypoint/entrypoint/takeover"
)

// runReport starts the "report" role with spec and decodes what it saw.
func runReport(t *testing.T, spec graceful.Spec) (*started, report) {
	t.Helper()
	r, w := pipe(t)
	spec.Stdout, spec.Stderr = w, os.Stderr
	g := spawn(t, spec)
	w.Close()
	var rep report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if e := g.wait(t); e.Code() != 0 {
		t.Fatalf("report role: %v", e)
	}
	return g, rep
}

// eachShim runs f once with the Go shim and once with the native one, and
// checks that the native one was used and never given up.
func eachShim(t *testing.T, f func(t *testing.T, sh *graceful.ExecShim)) {
	t.Run("go-shim", func(t *testing.T) { f(t, nil) })
	t.Run("native-shim", func(t *testing.T) {
		sh := &graceful.ExecShim{OnFallback: func(err error) { t.Errorf("native shim given up: %v", err) }}
		f(t, sh)
		if !sh.Native() {
			t.Errorf("the native shim did not run")
		}
	})
}

// Under the bind takeover the shim installs the filter and answers on the
// channel: the app's own bind() of the owned address gets the owned
// listener, and neither the channel nor the exec shim's fds reach it.
func TestSpawnTakesOverTheAppsBind(t *testing.T) {
	eachShim(t, testSpawnTakesOverTheAppsBind)
}

func testSpawnTakesOverTheAppsBind(t *testing.T, sh *graceful.ExecShim) {
	s := bind(t, config.Listener{Name: "web", Address: "127.0.0.1:0"})
	addr := s.Addrs()[0]
	ch, err := takeover.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	r, w := pipe(t)
	g := spawn(t, graceful.Spec{
		Path: helperPath(t), Env: helperEnv("bind-report", "BIND_PORT="+port(t, addr)),
		Sockets: s, Takeover: ch.Child(), Shim: sh, Stdout: w, Stderr: os.Stderr,
	})
	w.Close()
	nfd, err := ch.Receive(10 * time.Second)
	if err != nil {
		t.Fatalf("the shim's answer: %v", err)
	}
	sess, err := takeover.Serve(nfd, takeover.Options{
		Listeners: []takeover.Listener{{Addr: addr, File: s.Files()[0]}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var rep report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatalf("decode report: %v", err)
	}
	if e := g.wait(t); e.Code() != 0 {
		t.Fatalf("bind-report role: %v", e)
	}
	if rep.Extra["bind"] != "<nil>" || rep.Extra["listening"] != "1" {
		t.Errorf("the app's bind of %s: %q, listening %q; want the owned listener", addr, rep.Extra["bind"], rep.Extra["listening"])
	}
	if rep.Env["LISTEN_PID"] != strconv.Itoa(g.pid) {
		t.Errorf("LISTEN_PID %q, want %d", rep.Env["LISTEN_PID"], g.pid)
	}
	if !slices.Equal(rep.Inherited, []int{0, 1, 2, 3}) {
		t.Errorf("fds reaching the app = %v, want 0-2 and the one socket", rep.Inherited)
	}
}

// The takeover's start-up probe installs the filter, answers with the
// notification fd and exits 0, through either shim.
func TestSpawnProbeAnswersAndExits(t *testing.T) {
	eachShim(t, func(t *testing.T, sh *graceful.ExecShim) {
		ch, err := takeover.NewChannel()
		if err != nil {
			t.Fatal(err)
		}
		_, exit, err := testReaper.Start(func() (int, error) { return graceful.SpawnProbe(ch.Child(), sh) })
		if err != nil {
			t.Fatalf("SpawnProbe: %v", err)
		}
		nfd, err := ch.Receive(10 * time.Second)
		if err != nil {
			t.Fatalf("the probe's answer: %v", err)
		}
		unix.Close(nfd)
		select {
		case e := <-exit:
			if e.Code() != 0 {
				t.Errorf("the probe ended %v, want exit 0", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the probe did not exit")
		}
	})
}

func TestSpawnHandsSocketsWithSystemdAndServerStarterEnv(t *testing.T) {
	eachShim(t, testSpawnHandsSockets)
}

func testSpawnHandsSockets(t *testing.T, sh *graceful.ExecShim) {
	path := tempSock(t, "app.sock")
	s := bind(t,
		config.Listener{Name: "web", Address: "127.0.0.1:0"},
		config.Listener{Name: "alt", Address: ":0"},
		config.Listener{Name: "ctl", Address: "unix:" + path},
	)
	// A descriptor the init inherited without close-on-exec: it must not
	// reach the app (dup(2) clears FD_CLOEXEC).
	stray, err := unix.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(stray)

	// Stale values the init itself may carry must be replaced or dropped.
	env := helperEnv("report", "LISTEN_PID=1", "LISTEN_FDS=9", "NOTIFY_SOCKET=/stale", "WATCHDOG_USEC=5", "KEEP=me")
	argv := []string{"my-app", "--flag", "two words"}
	g, rep := runReport(t, graceful.Spec{
		Path: helperPath(t), Argv: argv, Env: env, Sockets: s, Generation: 7, Shim: sh,
	})

	if rep.Pid != g.pid || rep.Pgid != g.pid {
		t.Errorf("app pid/pgid = %d/%d, Spawn returned %d: the shim must exec in place, in its own group", rep.Pid, rep.Pgid, g.pid)
	}
	if !reflect.DeepEqual(rep.Argv, argv) {
		t.Errorf("argv = %q, want %q", rep.Argv, argv)
	}
	addrs := s.Addrs()
	want := map[string]string{
		"LISTEN_PID":                fmt.Sprint(g.pid),
		"LISTEN_FDS":                "3",
		"LISTEN_FDNAMES":            "web:alt:ctl",
		"SERVER_STARTER_PORT":       addrs[0] + "=3;" + port(t, addrs[1]) + "=4;" + path + "=5",
		"SERVER_STARTER_GENERATION": "7",
		"ENTRYPOINT_GENERATION":     "7",
		"KEEP":                      "me",
	}
	for k, v := range want {
		if rep.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, rep.Env[k], v)
		}
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", shim.Env} {
		if v, ok := rep.Env[k]; ok {
			t.Errorf("%s=%q leaked into the app", k, v)
		}
	}
	if !reflect.DeepEqual(rep.Inherited, []int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("fds reaching the app = %v, want [0 1 2 3 4 5] (stray fd was %d)", rep.Inherited, stray)
	}
	wantNames := []string{addrs[0], addrs[1], "unix:" + path}
	for i, fd := range []int{3, 4, 5} {
		if rep.Socknames[fd] != wantNames[i] {
			t.Errorf("fd %d is %q, want %q", fd, rep.Socknames[fd], wantNames[i])
		}
		if !rep.Blocking[fd] {
			t.Errorf("fd %d reached the app non-blocking", fd)
		}
	}
}

func TestSpawnWithoutSocketsSetsNoListenVars(t *testing.T) {
	n, err := graceful.NewNotify()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	env := helperEnv("report", "LISTEN_PID=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=x:y", "SERVER_STARTER_PORT=80=3", "NOTIFY_SOCKET=/stale")
	g, rep := runReport(t, graceful.Spec{
		Path: helperPath(t), Env: env, Generation: 2, Notify: n, Watchdog: 1500 * time.Millisecond,
	})
	if rep.Pid != g.pid {
		t.Errorf("pid = %d, want %d", rep.Pid, g.pid)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "SERVER_STARTER_PORT", shim.Env} {
		if v, ok := rep.Env[k]; ok {
			t.Errorf("%s=%q reached an app that got no sockets", k, v)
		}
	}
	if rep.Env["NOTIFY_SOCKET"] != n.Addr() || !strings.HasPrefix(n.Addr(), "@entrypoint/") {
		t.Errorf("NOTIFY_SOCKET = %q, want %q", rep.Env["NOTIFY_SOCKET"], n.Addr())
	}
	if rep.Env["WATCHDOG_USEC"] != "1500000" || rep.Env["ENTRYPOINT_GENERATION"] != "2" {
		t.Errorf("WATCHDOG_USEC = %q, ENTRYPOINT_GENERATION = %q", rep.Env["WATCHDOG_USEC"], rep.Env["ENTRYPOINT_GENERATION"])
	}
	if !reflect.DeepEqual(rep.Inherited, []int{0, 1, 2}) {
		t.Errorf("fds reaching the app = %v, want [0 1 2]", rep.Inherited)
	}
}

// An app that only knows go-systemd's activation package serves on the
// sockets the init holds.
func TestGoSystemdActivationAppServes(t *testing.T) {
	eachShim(t, testGoSystemdActivationAppServes)
}

func testGoSystemdActivationAppServes(t *testing.T, sh *graceful.ExecShim) {
	path := tempSock(t, "api.sock")
	s := bind(t,
		config.Listener{Name: "web", Address: "127.0.0.1:0"},
		config.Listener{Name: "api", Address: "unix:" + path},
	)
	g := spawn(t, graceful.Spec{
		Path: helperPath(t), Env: helperEnv("activation"), Sockets: s, Generation: 1, Stderr: os.Stderr, Shim: sh,
	})
	// No readiness poll needed: the connection waits in the backlog until
	// the app accepts.
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got, want := get(client, "http://"+s.Addrs()[0]+"/"), fmt.Sprintf("web %d", g.pid); got != want {
		t.Errorf("TCP answer %q, want %q", got, want)
	}
	unixClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	if got, want := get(unixClient, "http://unix/"), fmt.Sprintf("api %d", g.pid); got != want {
		t.Errorf("unix answer %q, want %q", got, want)
	}
}

func TestSpawnMissingApp(t *testing.T) {
	s := bind(t, config.Listener{Address: "127.0.0.1:0"})
	for _, sockets := range []*graceful.Sockets{nil, s} {
		_, err := graceful.Spawn(graceful.Spec{Path: t.TempDir() + "/nope", Sockets: sockets})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("sockets=%v: Spawn of a missing app: %v, want ErrNotExist", sockets != nil, err)
		}
	}
}

// An app that passes the checks but cannot be executed (not a program,
// no #! line) fails Spawn with the kernel's errno, through either shim;
// that is the app's fault, so the native shim is not given up for it.
func TestSpawnReportsTheAppsExecErrno(t *testing.T) {
	eachShim(t, func(t *testing.T, sh *graceful.ExecShim) {
		s := bind(t, config.Listener{Address: "127.0.0.1:0"})
		garbage := t.TempDir() + "/garbage"
		if err := os.WriteFile(garbage, []byte("\x00\x01not a program"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, _, err := testReaper.Start(func() (int, error) {
			return graceful.Spawn(graceful.Spec{Path: garbage, Sockets: s, Shim: sh})
		})
		if !errors.Is(err, syscall.ENOEXEC) || !strings.Contains(err.Error(), garbage) {
			t.Errorf("Spawn of a file that is no program: %v, want ENOEXEC naming it", err)
		}
		if sh != nil {
			// The native shim ran the failed start: it is still in use.
			s2 := bind(t, config.Listener{Address: "127.0.0.1:0"})
			spawn(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("sleep"), Sockets: s2, Shim: sh})
		}
	})
}

// Where the native shim cannot be executed (a kernel or security policy
// that refuses memfd execution), the generation starts through the Go
// shim, and the init hears why once.
func TestNativeShimFallsBackToTheGoShim(t *testing.T) {
	var heard []error
	sh := graceful.ExecShimWithImage(t, func(err error) { heard = append(heard, err) })
	for i := range 2 {
		s := bind(t, config.Listener{Name: "web", Address: "127.0.0.1:0"})
		g, rep := runReport(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("report"), Sockets: s, Generation: i + 1, Shim: sh})
		if rep.Pid != g.pid || rep.Env["LISTEN_PID"] != fmt.Sprint(g.pid) || rep.Env["LISTEN_FDNAMES"] != "web" {
			t.Errorf("start %d: pid %d LISTEN_PID %q LISTEN_FDNAMES %q, Spawn returned %d", i+1, rep.Pid, rep.Env["LISTEN_PID"], rep.Env["LISTEN_FDNAMES"], g.pid)
		}
		if !slices.Equal(rep.Inherited, []int{0, 1, 2, 3}) {
			t.Errorf("start %d: fds reaching the app = %v, want [0 1 2 3]", i+1, rep.Inherited)
		}
	}
	if len(heard) != 1 || !errors.Is(heard[0], syscall.EACCES) || !strings.Contains(heard[0].Error(), "native shim /proc/self/fd/") {
		t.Errorf("OnFallback heard %v, want one EACCES naming the native shim", heard)
	}
	if sh.Native() {
		t.Errorf("Native() after the fallback, want false")
	}
}

// Only a refusal that will come again gives the native shim up; a fork
// that failed for want of memory or pids must not cost every later swap
// the Go shim.
func TestOnlyAPolicyGivesTheNativeShimUp(t *testing.T) {
	for errno, want := range map[syscall.Errno]bool{
		syscall.EACCES: true, syscall.EPERM: true, syscall.ENOEXEC: true,
		syscall.EAGAIN: false, syscall.ENOMEM: false, syscall.ENOENT: false, syscall.E2BIG: false,
	} {
		err := fmt.Errorf("exec the native shim /proc/self/fd/9: %w", errno)
		if got := graceful.RefusedByPolicy(err); got != want {
			t.Errorf("%v: gives up %v, want %v", errno, got, want)
		}
	}
}

// The shim reports what tini reports when the app vanished between the
// check and the exec: 127 not found, 126 not executable.
func TestShimExitCodes(t *testing.T) {
	notExec := t.TempDir() + "/data"
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{t.TempDir() + "/nope": 127, notExec: 126} {
		env := append(os.Environ(), shim.Env+"="+path)
		out, code, err := graceful.RunCommand(context.Background(), testReaper, []string{helperPath(t)}, env, "")
		if err != nil || code != want || !strings.Contains(string(out), "exec "+path) {
			t.Errorf("shim for %s: code %d err %v output %q, want %d", path, code, err, out, want)
		}
	}
}

func TestRunCommandOutputAndExitCode(t *testing.T) {
	out, code, err := graceful.RunCommand(context.Background(), testReaper, []string{helperPath(t)}, helperEnv("echo-exit"), t.TempDir())
	if err != nil || code != 3 {
		t.Fatalf("code %d err %v, want 3 nil", code, err)
	}
	if got := string(out); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Errorf("output %q, want both stdout and stderr", got)
	}
	if _, _, err := graceful.RunCommand(context.Background(), testReaper, []string{"/nonexistent/cmd"}, nil, ""); err == nil {
		t.Errorf("a missing command ran")
	}
}

func TestRunCommandKillsGroupOnCancel(t *testing.T) {
	pidfile := t.TempDir() + "/pids"
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		_, code, err := graceful.RunCommand(ctx, testReaper, []string{helperPath(t)}, helperEnv("spawn-and-sleep", "PIDFILE="+pidfile), "")
		done <- result{code, err}
	}()
	var leader, worker int
	if _, err := fmt.Sscan(string(waitFile(t, pidfile)), &leader, &worker); err != nil {
		t.Fatal(err)
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunCommand did not return after cancel")
	}
	if !errors.Is(r.err, context.Canceled) || r.code != 128+int(syscall.SIGKILL) {
		t.Errorf("code %d err %v, want 137 and context.Canceled", r.code, r.err)
	}
	// The worker in the same group must be gone too (a zombie waiting for
	// the host's init counts as gone).
	deadline := time.Now().Add(20 * time.Second)
	for alive(worker) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %d survived the group kill", worker)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}
