package steer

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen makes a SO_REUSEPORT listener on addr (port 0: a free one).
func listen(t *testing.T, sa unix.Sockaddr) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	t.Cleanup(func() { f.Close() })
	return f
}

func addrOf(t *testing.T, f *os.File) *unix.SockaddrInet4 {
	t.Helper()
	fd, _ := rawFd(f)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4)
}

// which connects once and returns the index in fs of the socket whose
// accept queue got the connection (-1: none), then accepts it there.
func which(t *testing.T, port int, fs ...*os.File) int {
	t.Helper()
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for i, f := range fs {
			if n, err := Queued(f); err != nil {
				t.Fatal(err)
			} else if n > 0 {
				fd, _ := rawFd(f)
				nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(nfd)
				return i
			}
		}
		time.Sleep(time.Millisecond)
	}
	return -1
}

// expect connects n times and wants every connection in fs[want].
func expect(t *testing.T, what string, port, want, n int, fs ...*os.File) {
	t.Helper()
	for i := 0; i < n; i++ {
		if got := which(t, port, fs...); got != want {
			t.Fatalf("%s: connection %d went to socket %d, want %d", what, i, got, want)
		}
	}
}

// The kernel behaviour the model is built on, checked on this kernel
// with raw sockets: "ret #k" picks slot k in join order; a socket that
// leaves is replaced by the last one; k past the end falls back to the
// hash.
func TestKernelReuseportCBPF(t *testing.T) {
	s0 := listen(t, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa := addrOf(t, s0)
	s1 := listen(t, sa)
	s2 := listen(t, sa)
	fd0, _ := rawFd(s0)
	for k := 0; k < 3; k++ {
		if err := attachProgram(fd0, k); err != nil {
			t.Fatalf("SO_ATTACH_REUSEPORT_CBPF: %v", err)
		}
		expect(t, "ret #"+strconv.Itoa(k), sa.Port, k, 5, s0, s1, s2)
	}
	// shutdown(SHUT_RD) takes s0 out of the group: s2 moves into slot 0,
	// s1 stays in slot 1.
	if err := unix.Shutdown(fd0, unix.SHUT_RD); err != nil {
		t.Fatal(err)
	}
	fd1, _ := rawFd(s1)
	if err := attachProgram(fd1, 0); err != nil {
		t.Fatal(err)
	}
	expect(t, "ret #0 after s0 left", sa.Port, 2, 5, s0, s1, s2)
	if err := attachProgram(fd1, 1); err != nil {
		t.Fatal(err)
	}
	expect(t, "ret #1 after s0 left", sa.Port, 1, 5, s0, s1, s2)
	// Past the end: the hash, over s1 and s2 only.
	if err := attachProgram(fd1, 7); err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i := 0; i < 40; i++ {
		seen[which(t, sa.Port, s0, s1, s2)]++
	}
	if seen[0] > 0 || seen[-1] > 0 || seen[1] == 0 || seen[2] == 0 {
		t.Fatalf("ret #7 with two sockets: %v, want a spread over sockets 1 and 2", seen)
	}
}

// TCP_INFO of a listener: tcpi_unacked is its accept queue.
func TestQueued(t *testing.T) {
	s0 := listen(t, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa := addrOf(t, s0)
	var cs []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.Port)))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := Queued(s0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept queue %d, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The model against the kernel: a swap's socket gets nothing until it is
// steered to; released sockets leave the group without ever moving the
// target while others are in it; every connection lands where the model
// says.
func TestGroup(t *testing.T) {
	first := listen(t, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	port := addrOf(t, first).Port
	g, err := New(first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	gen1, _ := g.Hold(first)
	gen2, err := g.Add()
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "gen 2 started", port, 0, 5, gen1, gen2)
	if err := g.Steer(gen2); err != nil {
		t.Fatal(err)
	}
	expect(t, "gen 2 steered", port, 1, 5, gen1, gen2)
	// Gen 3 starts while gen 1 still drains: a third socket.
	gen3, err := g.Add()
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 3 {
		t.Fatalf("%d sockets, want 3", g.Len())
	}
	expect(t, "gen 3 started", port, 1, 5, gen1, gen2, gen3)
	// Gen 1 is gone: its slot 0 would take the last socket, gen 3's,
	// which is not the target: it leaves at once.
	g.Release(gen1)
	if g.Len() != 2 {
		t.Fatalf("%d sockets after gen 1 left, want 2", g.Len())
	}
	expect(t, "gen 1 left", port, 0, 5, gen2, gen3)
	if err := g.Steer(gen3); err != nil {
		t.Fatal(err)
	}
	expect(t, "gen 3 steered", port, 1, 5, gen2, gen3)
	// Gen 4 starts and is rolled back: the new socket is last, it leaves
	// at once.
	gen4, err := g.Add()
	if err != nil {
		t.Fatal(err)
	}
	g.Release(gen4)
	if g.Len() != 2 {
		t.Fatalf("%d sockets after a rollback, want 2", g.Len())
	}
	// Gen 2 is gone; the target is last, but the group is two: it moves
	// into slot 0 and the program follows.
	g.Release(gen2)
	if g.Len() != 1 {
		t.Fatalf("%d sockets, want 1", g.Len())
	}
	expect(t, "gen 2 left", port, 0, 5, gen3)
	// A full restart keeps the target: gen 5 holds gen 3's socket.
	gen5, _ := g.Hold(g.Target())
	g.Release(gen3)
	if gen5 != gen3 || g.Len() != 1 {
		t.Fatalf("restart: socket changed or group of %d", g.Len())
	}
	expect(t, "restart", port, 0, 3, gen5)
}

// Three generations at once: the two old sockets cannot both leave while
// the target is last without moving it; the one that cannot stays free
// and is handed out to the next swap.
func TestGroupFreeSocketReused(t *testing.T) {
	first := listen(t, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	port := addrOf(t, first).Port
	g, _ := New(first)
	t.Cleanup(func() { g.Close() })
	a, _ := g.Hold(first)
	b, _ := g.Add()
	g.Steer(b)
	c, _ := g.Add()
	g.Steer(c) // [a b c], target c (last)
	g.Release(a)
	if g.Len() != 3 {
		t.Fatalf("%d sockets, want 3: a cannot leave without moving c", g.Len())
	}
	expect(t, "a free", port, 2, 5, a, b, c)
	d, _ := g.Add()
	if d != a {
		t.Fatal("Add made a new socket instead of handing out the free one")
	}
	g.Steer(d)
	expect(t, "d steered", port, 0, 5, a, b, c)
	g.Release(b) // c (last) moves into slot 1
	g.Release(c)
	if g.Len() != 1 {
		t.Fatalf("%d sockets, want 1", g.Len())
	}
	expect(t, "only d", port, 0, 5, d)
}
