package steer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotMember is returned for a socket the group does not hold.
var ErrNotMember = errors.New("steer: not a socket of this group")

// Group is the model of one SO_REUSEPORT group. Safe for concurrent use.
type Group struct {
	mu      sync.Mutex
	members []*member // in the kernel's order
	target  *member
	prog    int // the slot the attached program picks; -1: none attached
}

type member struct {
	f    *os.File
	fd   int
	held int
}

// New starts a group with first: a TCP socket bound with SO_REUSEPORT and
// listening, the group's only member and its target. The group owns first
// from now on (Close closes it); it is not held by anyone yet.
func New(first *os.File) (*Group, error) {
	fd, err := rawFd(first)
	if err != nil {
		return nil, err
	}
	m := &member{f: first, fd: fd}
	return &Group{members: []*member{m}, target: m, prog: -1}, nil
}

// Target returns the socket new connections go to. The caller must not
// close it.
func (g *Group) Target() *os.File {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.target.f
}

// Len is the number of sockets in the group.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// Hold marks f as used by one more generation and returns it.
func (g *Group) Hold(f *os.File) (*os.File, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.find(f)
	if m == nil {
		return nil, ErrNotMember
	}
	m.held++
	return f, nil
}

// Add returns a socket of the group that gets no connection until Steer
// picks it, held once: a free one if there is one (the lowest slot), else
// a new socket bound to the group's address with the first socket's
// options, which joins the group at its end.
func (g *Group) Add() (*os.File, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.held == 0 && m != g.target {
			m.held++
			return m.f, nil
		}
	}
	// Before the newcomer listens: from then on the kernel would hash
	// connections over both sockets.
	if err := g.attach(); err != nil {
		return nil, err
	}
	fd, err := clone(g.members[0].fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), g.members[0].f.Name())
	g.members = append(g.members, &member{f: f, fd: fd, held: 1})
	return f, nil
}

// Steer sends every new connection to f from now on.
func (g *Group) Steer(f *os.File) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.find(f)
	if m == nil {
		return ErrNotMember
	}
	old := g.target
	g.target = m
	if err := g.attach(); err != nil {
		g.target = old
		return err
	}
	g.trim()
	return nil
}

// Release is the end of one Hold or Add: the generation is gone. A socket
// nobody holds stays in the group (free) until removing it is safe, or
// until Add hands it out again.
func (g *Group) Release(f *os.File) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.find(f)
	if m == nil {
		return ErrNotMember
	}
	if m.held > 0 {
		m.held--
	}
	g.trim()
	return nil
}

// Close closes every socket of the group. Only for the end of the init.
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, m := range g.members {
		if err := m.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	g.members = nil
	return errors.Join(errs...)
}

func (g *Group) find(f *os.File) *member {
	for _, m := range g.members {
		if m.f == f {
			return m
		}
	}
	return nil
}

// trim removes free sockets while that is safe: the last slot moves
// nothing; another slot moves the last socket into it, which is safe
// unless that is the target; and a group of two leaves only the target to
// the hash while the program is re-pointed.
func (g *Group) trim() {
	for {
		i := g.removable()
		if i < 0 {
			return
		}
		m := g.members[i]
		// shutdown(SHUT_RD) of a listener unhashes it (tcp_disconnect),
		// which takes it out of the group now, whoever else still holds
		// the file; close alone would leave it while a reference lives.
		unix.Shutdown(m.fd, unix.SHUT_RD)
		m.f.Close()
		last := len(g.members) - 1
		g.members[i] = g.members[last]
		g.members = g.members[:last]
		if g.prog >= 0 {
			// Re-point the program if the target moved; an error leaves
			// the hash, which in a group that small is the target too.
			g.attach()
		}
	}
}

// removable returns the slot of a free socket that can leave now, or -1.
func (g *Group) removable() int {
	last := len(g.members) - 1
	for i := last; i >= 0; i-- {
		m := g.members[i]
		if m.held > 0 || m == g.target {
			continue
		}
		if i == last || g.members[last] != g.target || len(g.members) == 2 {
			return i
		}
	}
	return -1
}

// attach points the group's program at the target's slot, if it is not
// already.
func (g *Group) attach() error {
	k := slices.Index(g.members, g.target)
	if k == g.prog {
		return nil
	}
	if err := attachProgram(g.target.fd, k); err != nil {
		g.prog = -1
		return fmt.Errorf("steer: attach reuseport program: %w", err)
	}
	g.prog = k
	return nil
}

// attachProgram attaches "ret #k" to the group of the listening socket fd
// (it must be in the group already: on a socket that has not listened yet
// it would make a group of its own).
func attachProgram(fd, k int) error {
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: uint32(k)}}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
}

// clone makes a listening socket with the address, SO_REUSEADDR,
// SO_REUSEPORT, IPV6_V6ONLY and backlog of fd.
func clone(fd int) (int, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return -1, fmt.Errorf("steer: getsockname: %w", err)
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	// A listener's tcpi_sacked is its backlog (sk_max_ack_backlog).
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return -1, fmt.Errorf("steer: TCP_INFO: %w", err)
	}
	nfd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("steer: socket: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(nfd)
		}
	}()
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(nfd, unix.SOL_SOCKET, opt, 1); err != nil {
			return -1, fmt.Errorf("steer: setsockopt: %w", err)
		}
	}
	if family == unix.AF_INET6 {
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return -1, fmt.Errorf("steer: IPV6_V6ONLY: %w", err)
		}
		if err := unix.SetsockoptInt(nfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return -1, fmt.Errorf("steer: IPV6_V6ONLY: %w", err)
		}
	}
	if err := unix.Bind(nfd, sa); err != nil {
		return -1, fmt.Errorf("steer: bind: %w", err)
	}
	if err := unix.Listen(nfd, int(info.Sacked)); err != nil {
		return -1, fmt.Errorf("steer: listen: %w", err)
	}
	ok = true
	return nfd, nil
}

// Queued is the length of f's accept queue: connections the kernel has
// completed and nobody accepted yet (tcpi_unacked of a listener).
func Queued(f *os.File) (int, error) {
	fd, err := rawFd(f)
	if err != nil {
		return 0, err
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, fmt.Errorf("steer: TCP_INFO: %w", err)
	}
	return int(info.Unacked), nil
}

// WaitEmpty polls until the accept queues of fs are empty or ctx ends, and
// says whether they emptied.
func WaitEmpty(ctx context.Context, fs []*os.File) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		empty := true
		for _, f := range fs {
			if n, err := Queued(f); err == nil && n > 0 {
				empty = false
				break
			}
		}
		if empty {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// rawFd returns f's descriptor without (*os.File).Fd, which would make a
// non-blocking file blocking for good.
func rawFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	return fd, nil
}
