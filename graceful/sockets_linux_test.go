package graceful_test

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
)

func bind(t *testing.T, ls ...config.Listener) *graceful.Sockets {
	t.Helper()
	s, err := graceful.Bind(ls)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial connects without anyone accepting: the kernel completes the
// handshake into the backlog, which is the point of holding the socket.
func dial(network, addr string) error {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBindTCPFamilies(t *testing.T) {
	s := bind(t,
		config.Listener{Address: "127.0.0.1:0"},
		config.Listener{Address: ":0"},
		config.Listener{Address: "0.0.0.0:0"},
	)
	addrs := s.Addrs()
	if !strings.HasPrefix(addrs[0], "127.0.0.1:") || port(t, addrs[0]) == "0" {
		t.Errorf("Addrs()[0] = %q, want 127.0.0.1:<port>", addrs[0])
	}
	if err := dial("tcp", addrs[0]); err != nil {
		t.Errorf("dial %s: %v", addrs[0], err)
	}

	// ":port" is dual-stack, as net.Listen makes it.
	dual := port(t, addrs[1])
	if err := dial("tcp4", "127.0.0.1:"+dual); err != nil {
		t.Errorf("dual-stack %s over IPv4: %v", addrs[1], err)
	}
	if hasIPv6() {
		if err := dial("tcp6", "[::1]:"+dual); err != nil {
			t.Errorf("dual-stack %s over IPv6: %v", addrs[1], err)
		}
		// "0.0.0.0:port" is what the user wrote: IPv4 only.
		if err := dial("tcp6", "[::1]:"+port(t, addrs[2])); err == nil {
			t.Errorf("0.0.0.0 listener %s accepted IPv6", addrs[2])
		}
	}
	if got := s.Names(); strings.Join(got, ",") != "http,http,http" {
		t.Errorf("default names = %v", got)
	}
}

func hasIPv6() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestBindIPv6(t *testing.T) {
	if !hasIPv6() {
		t.Skip("no ::1 on this host")
	}
	s := bind(t, config.Listener{Address: "[::1]:0", Name: "v6"})
	a := s.Addrs()[0]
	if !strings.HasPrefix(a, "[::1]:") {
		t.Fatalf("Addrs = %q, want [::1]:<port>", a)
	}
	if err := dial("tcp6", a); err != nil {
		t.Errorf("dial %s: %v", a, err)
	}
	if err := dial("tcp4", "127.0.0.1:"+port(t, a)); err == nil {
		t.Errorf("[::1] listener accepted IPv4")
	}
}

func TestBindErrorNamesAddressAndReleasesEarlierSockets(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := tempSock(t, "first.sock")
	_, err = graceful.Bind([]config.Listener{{Address: "unix:" + path}, {Address: busy.Addr().String()}})
	want := "bind " + busy.Addr().String() + ": address already in use"
	if err == nil || err.Error() != want {
		t.Fatalf("Bind error = %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error does not wrap EADDRINUSE: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unix socket bound before the failure was left behind: %v", err)
	}
	if _, err := graceful.Bind([]config.Listener{{Address: "nonsense"}}); err == nil || !strings.HasPrefix(err.Error(), "bind nonsense: ") {
		t.Errorf("bad address error = %v", err)
	}
	if _, err := graceful.Bind([]config.Listener{{Address: ":0", Name: "a:b"}}); err == nil {
		t.Errorf("a name with ':' was accepted into LISTEN_FDNAMES")
	}
}

func TestBindUnixModeOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	path := tempSock(t, "app.sock")
	s := bind(t, config.Listener{Address: "unix:" + path, Mode: "0660", Owner: "1234:5678"})
	if got := s.Addrs()[0]; got != "unix:"+path {
		t.Errorf("Addrs = %q", got)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK || st.Mode&0o7777 != 0o660 {
		t.Errorf("mode = %o, want socket 0660", st.Mode)
	}
	if st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owner = %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	if err := dial("unix", path); err != nil {
		t.Errorf("dial: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the socket file: %v", err)
	}
}

func TestBindUnixStaleLiveAndRegularFile(t *testing.T) {
	dir := t.TempDir()

	// Stale: a socket file whose listener is gone.
	stale := dir + "/stale.sock"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	s := bind(t, config.Listener{Address: "unix:" + stale, Name: "api"})
	if err := dial("unix", stale); err != nil {
		t.Errorf("after replacing a stale socket: %v", err)
	}
	s.Close()

	// Live: somebody accepts on it; it must not be stolen.
	live := dir + "/live.sock"
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	_, err = graceful.Bind([]config.Listener{{Address: "unix:" + live}})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("binding over a live socket: %v", err)
	}
	if err := dial("unix", live); err != nil {
		t.Errorf("the live socket was disturbed: %v", err)
	}

	// A regular file is never removed.
	reg := dir + "/data"
	if err := os.WriteFile(reg, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = graceful.Bind([]config.Listener{{Address: "unix:" + reg}})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("binding over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(reg); string(b) != "keep" {
		t.Errorf("regular file changed: %q", b)
	}
}

func TestBindUnixAbstract(t *testing.T) {
	name := "@entrypoint-test/" + strconv.Itoa(os.Getpid())
	s := bind(t, config.Listener{Address: "unix:" + name})
	if err := dial("unix", name); err != nil {
		t.Errorf("dial %s: %v", name, err)
	}
	if got := s.Addrs()[0]; got != "unix:"+name {
		t.Errorf("Addrs = %q", got)
	}
}

// accepted accepts one connection on f, non-blocking, and says whether
// there was one.
func accepted(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := false
	rc.Control(func(fd uintptr) {
		nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err == nil {
			syscall.Close(nfd)
			got = true
		}
	})
	return got
}

// A hot swap's sockets (Next) get nothing until Steer; Current is the
// steered-to socket; the unix listener is shared; Files of Bind's Sockets
// follows the steering; Release lets a socket leave.
func TestBindSteered(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	s, err := graceful.BindSteered([]config.Listener{{Address: "127.0.0.1:0"}, {Address: "unix:" + path}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if !s.Steered() {
		t.Fatal("Steered() = false")
	}
	addr := s.Addrs()[0]
	gen1, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	gen2, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	f1, f2 := gen1.Files(), gen2.Files()
	if f1[0] == f2[0] || f1[1] != f2[1] {
		t.Fatalf("gen 2's files %v, gen 1's %v: want its own TCP socket and the shared unix one", f2, f1)
	}
	// waitOne dials and expects the connection on want, not on other.
	waitOne := func(what string, want, other *os.File) {
		t.Helper()
		if err := dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for !accepted(t, want) {
			if accepted(t, other) {
				t.Fatalf("%s: the connection went to the other socket", what)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no connection", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitOne("before Steer", f1[0], f2[0])
	if err := gen2.Steer(); err != nil {
		t.Fatal(err)
	}
	waitOne("after Steer", f2[0], f1[0])
	if s.Files()[0] != f2[0] {
		t.Fatal("Files()[0] is not the steered-to socket")
	}
	gen1.Release()
	gen3, err := s.Current()
	if err != nil || gen3.Files()[0] != f2[0] {
		t.Fatalf("Current after a swap: %v, %v; want gen 2's socket", gen3, err)
	}
	waitOne("after gen 1 left", f2[0], f2[0])
	gen2.Release()
	gen3.Release()
}
