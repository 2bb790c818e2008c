package graceful_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
)

// roleEnv selects what the re-executed test binary does.
const roleEnv = "ENTRYPOINT_TEST_ROLE"

// testReaper is the test process's one waiter: a second one would steal
// exit statuses, so every test shares it.
var testReaper *reaper.Reaper

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	if os.Getenv("GORACE") == "" {
		// A race-enabled helper sleeps a second at exit by default.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	testReaper = reaper.New(reaper.Options{Interval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	go testReaper.Run(ctx)
	code := m.Run()
	cancel()
	os.Exit(code)
}

// report is what the "report" role prints as JSON.
type report struct {
	Pid       int
	Pgid      int
	Argv      []string
	Env       map[string]string
	Inherited []int             // fds without FD_CLOEXEC: what exec handed us
	Socknames map[int]string    // fd -> getsockname
	Blocking  map[int]bool      // fd -> not O_NONBLOCK
	Extra     map[string]string // role-specific
}

func runRole(role string) int {
	switch role {
	case "report":
		return roleReport()
	case "bind-report":
		// Binds $BIND_PORT on 127.0.0.1 as a server that binds its own
		// port would, then reports.
		port, _ := strconv.Atoi(os.Getenv("BIND_PORT"))
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		}
		acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		return roleReport(map[string]string{"bind": fmt.Sprint(err), "listening": strconv.Itoa(acc)})
	case "activation":
		return roleActivation()
	case "notify":
		// Ready, then later messages the supervisor reads.
		if _, err := daemon.SdNotify(false, "READY=1\nSTATUS=ready"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := daemon.SdNotify(false, "WATCHDOG=1\nSTATUS=serving"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sleepForever()
	case "notify-on-usr1":
		// Sends READY=1 only when told, so a test can order datagrams.
		ch := make(chan os.Signal, 1)
		notifySignal(ch)
		fmt.Println("armed")
		<-ch
		if _, err := daemon.SdNotify(false, "READY=1"); err != nil {
			return 1
		}
		sleepForever()
	case "notify-child":
		// A worker (same group, descendant) reports readiness.
		p, err := os.StartProcess(os.Args[0], os.Args[:1], &os.ProcAttr{
			Env:   withEnv(os.Environ(), roleEnv+"=send-ready"),
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			return 1
		}
		_, _ = p.Wait()
		sleepForever()
	case "send-ready":
		// A short-lived sender: it waits on a barrier, as systemd-notify
		// does, so the init can check it before it is gone.
		if ok, err := daemon.SdNotify(false, "READY=1"); !ok || err != nil {
			fmt.Fprintln(os.Stderr, "send-ready:", ok, err)
			return 1
		}
		if err := notifyBarrier(); err != nil {
			fmt.Fprintln(os.Stderr, "send-ready: barrier:", err)
			return 1
		}
		return 0
	case "echo-exit":
		fmt.Fprintln(os.Stdout, "out")
		fmt.Fprintln(os.Stderr, "err")
		return 3
	case "spawn-and-sleep":
		// Leaves a second process in its group, writes both pids.
		p, err := os.StartProcess(os.Args[0], os.Args[:1], &os.ProcAttr{
			Env:   withEnv(os.Environ(), roleEnv+"=sleep"),
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			return 1
		}
		pids := fmt.Sprintf("%d %d", os.Getpid(), p.Pid)
		tmp := os.Getenv("PIDFILE") + ".tmp"
		if os.WriteFile(tmp, []byte(pids), 0o600) != nil || os.Rename(tmp, os.Getenv("PIDFILE")) != nil {
			return 1
		}
		sleepForever()
	case "sleep":
		sleepForever()
	case "exec-check":
		// Fails twice, then succeeds; logs ENTRYPOINT_APP_PID each time.
		f := os.Getenv("COUNTFILE")
		b, _ := os.ReadFile(f)
		b = append(b, os.Getenv("ENTRYPOINT_APP_PID")+"\n"...)
		_ = os.WriteFile(f, b, 0o600)
		if strings.Count(string(b), "\n") < 3 {
			fmt.Println("not yet")
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

func notifySignal(ch chan os.Signal) {
	signal.Notify(ch, unix.SIGUSR1)
}

// notifyBarrier is sd_notify_barrier(3): send BARRIER=1 with a pipe's write
// end and wait until the receiver closed it.
func notifyBarrier() error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	err = unix.Sendmsg(s, []byte("BARRIER=1"), unix.UnixRights(p[1]), &unix.SockaddrUnix{Name: os.Getenv("NOTIFY_SOCKET")}, 0)
	unix.Close(p[1])
	if err != nil {
		return err
	}
	if n, err := unix.Read(p[0], make([]byte, 1)); n != 0 || err != nil {
		return fmt.Errorf("barrier read: %d %v", n, err)
	}
	return nil
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func roleReport(extra ...map[string]string) int {
	r := report{
		Pid:       os.Getpid(),
		Pgid:      unix.Getpgrp(),
		Argv:      os.Args,
		Env:       map[string]string{},
		Socknames: map[int]string{},
		Blocking:  map[int]bool{},
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		r.Env[k] = v
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // our own (Go opens everything close-on-exec) or gone
		}
		r.Inherited = append(r.Inherited, fd)
		if sa, err := unix.Getsockname(fd); err == nil {
			r.Socknames[fd] = formatSockaddr(sa)
		}
		fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		r.Blocking[fd] = fl&unix.O_NONBLOCK == 0
	}
	sort.Ints(r.Inherited)
	if len(extra) > 0 {
		r.Extra = extra[0]
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

func formatSockaddr(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrUnix:
		return "unix:" + a.Name
	}
	return fmt.Sprintf("%T", sa)
}

// roleActivation is an app written against go-systemd's activation package
// and nothing else: it serves "<name> <pid>" on every socket it was handed.
func roleActivation() int {
	byName, err := activation.ListenersWithNames()
	if err != nil || len(byName) == 0 {
		fmt.Fprintln(os.Stderr, "activation: no listeners", err)
		return 1
	}
	done := make(chan error)
	for name, ls := range byName {
		for _, l := range ls {
			go func() {
				done <- http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					fmt.Fprintf(w, "%s %d", name, os.Getpid())
				}))
			}()
		}
	}
	fmt.Fprintln(os.Stderr, <-done)
	return 1
}

// helperPath is the test binary, which plays every helper role.
func helperPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// helperEnv is the test process's environment plus a role.
func helperEnv(role string, extra ...string) []string {
	return withEnv(os.Environ(), append([]string{roleEnv + "=" + role}, extra...)...)
}

// withEnv sets each "K=V" in env, replacing an earlier K: with duplicates,
// Go's Getenv would read the first.
func withEnv(env []string, kvs ...string) []string {
	out := make([]string, 0, len(env)+len(kvs))
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(kvs, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
			out = append(out, e)
		}
	}
	return append(out, kvs...)
}

// started is one generation started through the reaper, as the supervisor
// does it.
type started struct {
	pid    int
	exit   <-chan reaper.Exit
	reaped bool
}

func spawn(t *testing.T, spec graceful.Spec) *started {
	t.Helper()
	pid, exit, err := testReaper.Start(func() (int, error) { return graceful.Spawn(spec) })
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	s := &started{pid: pid, exit: exit}
	t.Cleanup(func() { s.kill(t) })
	return s
}

// kill ends the generation's group and waits for the reaper's word.
func (s *started) kill(t *testing.T) {
	if s.reaped {
		return
	}
	_ = unix.Kill(-s.pid, unix.SIGKILL)
	testReaper.Kick()
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		t.Errorf("pid %d not reaped", s.pid)
	}
}

func (s *started) wait(t *testing.T) reaper.Exit {
	t.Helper()
	select {
	case e := <-s.exit:
		s.reaped = true
		return e
	case <-time.After(30 * time.Second):
		t.Fatalf("pid %d did not exit", s.pid)
		return reaper.Exit{}
	}
}

// pipe returns both ends of a pipe, closed at the end of the test.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// waitFile polls for path with a deadline.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return b
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return nil
}

func tempSock(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}
