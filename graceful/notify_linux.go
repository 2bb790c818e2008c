package graceful

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/internal/procstat"
)

// Message is one sd_notify datagram from a generation. Several assignments
// may arrive in one datagram, newline separated; unknown ones are ignored.
type Message struct {
	Ready     bool   // READY=1
	Stopping  bool   // STOPPING=1
	Reloading bool   // RELOADING=1
	Watchdog  bool   // WATCHDOG=1
	Status    string // STATUS=...
	Pid       int    // the sender, from SCM_CREDENTIALS
}

// Notify is one generation's NOTIFY_SOCKET: a unix datagram socket with an
// abstract name, so it needs no writable filesystem.
//
// Only datagrams whose SCM_CREDENTIALS pid is the generation's pid, is in
// its process group, or descends from it count; others are dropped with a
// debug log. Datagrams that arrive before Attach are held and judged when
// Attach names the generation, so an app that is ready quickly is not
// missed. A sender that exits at once (systemd-notify from a shell script)
// can only be checked while it lives: fds passed with a datagram, such as
// the BARRIER=1 fd systemd-notify waits on, are closed only after the
// check, so such a sender is kept alive exactly long enough.
//
// Every accepted Message goes to Messages, and the first READY=1 also
// closes Ready: the notify gate waits on Ready and takes nothing from
// Messages, which the supervisor reads for WATCHDOG=1 and STATUS= for the
// generation's whole life.
type Notify struct {
	conn  *net.UnixConn
	addr  string
	ready chan struct{}
	msgs  chan Message
	done  chan struct{}

	closeOnce sync.Once
	closeErr  error
	log       atomic.Pointer[slog.Logger] // nil: slog.Default()

	mu      sync.Mutex
	pid     int // 0 until Attach
	pending []datagram
	isReady bool
	closed  bool
}

// msgBuffer is how many messages Messages holds for a slow reader before
// it drops; READY=1 is never lost, since Ready records it.
const msgBuffer = 64

// NewNotify binds a fresh socket named "@entrypoint/<init pid>/<random>".
// Close it when the generation is gone.
func NewNotify() (*Notify, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	addr := fmt.Sprintf("@entrypoint/%d/%s", os.Getpid(), hex.EncodeToString(b[:]))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", addr, err)
	}
	// SO_PASSCRED makes the kernel attach the sender's pid to every
	// datagram, even when the sender sends none: the only trustworthy way
	// to know who sent READY=1 (systemd does the same).
	var serr error
	rc, err := conn.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
	}
	if err = errors.Join(err, serr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket %s: SO_PASSCRED: %w", addr, err)
	}
	n := &Notify{
		conn:  conn,
		addr:  addr,
		ready: make(chan struct{}),
		msgs:  make(chan Message, msgBuffer),
		done:  make(chan struct{}),
	}
	go n.read()
	return n, nil
}

// SetLogger sends the socket's warnings and debug lines (dropped
// datagrams, a failed read) to l instead of slog.Default(). Call it right
// after NewNotify, before the socket's address is handed to anyone; it is
// safe to call at any time.
func (n *Notify) SetLogger(l *slog.Logger) { n.log.Store(l) }

func (n *Notify) logger() *slog.Logger {
	if l := n.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// Addr is the value for NOTIFY_SOCKET.
func (n *Notify) Addr() string { return n.addr }

// Attach names the generation: pid is its leader (and its process group).
// Call it once, right after the generation started.
func (n *Notify) Attach(pid int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pid != 0 || pid <= 0 {
		return
	}
	n.pid = pid
	for _, d := range n.pending {
		n.judgeLocked(d)
	}
	n.pending = nil
}

// Ready is closed at the generation's first READY=1.
func (n *Notify) Ready() <-chan struct{} { return n.ready }

// Messages delivers every accepted message, in order, until Close. A
// reader that falls more than 64 messages behind loses the newest.
func (n *Notify) Messages() <-chan Message { return n.msgs }

// Close closes the socket and then Messages.
func (n *Notify) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.conn.Close()
		<-n.done
	})
	return n.closeErr
}

func (n *Notify) read() {
	defer func() {
		n.mu.Lock()
		n.closed = true
		close(n.msgs)
		for _, p := range n.pending {
			p.release()
		}
		n.pending = nil
		n.mu.Unlock()
		close(n.done)
	}()
	buf := make([]byte, 4096)
	// Room for the credentials and for the fds a sender passes: the
	// BARRIER=1 fd, or FDSTORE=1 ones we do not keep.
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*253))
	for {
		nb, noob, flags, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				n.logger().Warn("notify socket read failed", "addr", n.addr, "err", err)
			}
			return
		}
		d := parseControl(oob[:noob])
		if flags&unix.MSG_TRUNC != 0 || d.pid <= 0 {
			n.logger().Debug("notify message dropped: truncated or without credentials", "addr", n.addr)
			d.release()
			continue
		}
		d.msg = parseMessage(buf[:nb])
		d.msg.Pid = d.pid
		n.mu.Lock()
		if n.pid == 0 && len(n.pending) < msgBuffer {
			// Held, fds and all: a sender waiting on its barrier stays
			// alive until Attach can check it.
			n.pending = append(n.pending, d)
		} else if n.pid == 0 {
			d.release()
		} else {
			n.judgeLocked(d)
		}
		n.mu.Unlock()
	}
}

// datagram is a received message with the fds that came with it.
type datagram struct {
	msg Message
	pid int
	fds []int
}

// release closes the datagram's fds. Closing a BARRIER=1 fd tells the
// sender that everything it sent before was processed (sd_notify_barrier(3),
// what systemd-notify waits for), so it is closed only after the sender was
// checked: a short-lived sender is still alive, and checkable, until then.
func (d datagram) release() {
	for _, fd := range d.fds {
		unix.Close(fd)
	}
}

// judgeLocked delivers d's message if its sender belongs to the
// generation, and releases d.
func (n *Notify) judgeLocked(d datagram) {
	defer d.release()
	m := d.msg
	switch ok, gone := inGeneration(m.Pid, n.pid); {
	case gone && m.Ready:
		n.logger().Warn("notify READY=1 dropped: the sender exited before it could be checked; "+
			"send it from a process that outlives it, or wait for it with BARRIER=1 as systemd-notify does",
			"pid", m.Pid, "generation_pid", n.pid)
		return
	case !ok:
		n.logger().Debug("notify message dropped: sender is not in the generation",
			"pid", m.Pid, "generation_pid", n.pid)
		return
	}
	if m.Ready && !n.isReady {
		n.isReady = true
		close(n.ready)
	}
	if n.closed {
		return
	}
	select {
	case n.msgs <- m:
	default:
		n.logger().Debug("notify message dropped: nobody reads Messages", "pid", m.Pid)
	}
}

// parseControl returns the SCM_CREDENTIALS pid and the passed fds.
func parseControl(oob []byte) datagram {
	var d datagram
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return d
	}
	for _, c := range cmsgs {
		if fds, err := unix.ParseUnixRights(&c); err == nil {
			d.fds = append(d.fds, fds...)
			continue
		}
		if cred, err := unix.ParseUnixCredentials(&c); err == nil {
			d.pid = int(cred.Pid)
		}
	}
	return d
}

func parseMessage(b []byte) Message {
	var m Message
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "READY":
			m.Ready = v == "1"
		case "STOPPING":
			m.Stopping = v == "1"
		case "RELOADING":
			m.Reloading = v == "1"
		case "WATCHDOG":
			m.Watchdog = v == "1"
		case "STATUS":
			m.Status = v
		}
	}
	return m
}

// inGeneration reports whether pid is the generation leader gen, in its
// process group, or a descendant of it; gone is true when pid no longer
// exists and so cannot be checked.
func inGeneration(pid, gen int) (ok, gone bool) {
	if pid == gen {
		return true, false
	}
	p := pid
	for range 64 {
		ppid, pgrp, found := procStat(p)
		if !found {
			return false, p == pid
		}
		if pgrp == gen || ppid == gen {
			return true, false
		}
		if ppid <= 1 {
			return false, false
		}
		p = ppid
	}
	return false, false
}

// procStat reads ppid and pgrp from /proc/<pid>/stat.
func procStat(pid int) (ppid, pgrp int, ok bool) {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0, 0, false
	}
	return st.PPID, st.PGRP, true
}
