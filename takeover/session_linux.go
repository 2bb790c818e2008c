package takeover

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctls of the notification fd that x/sys/unix does not name.
const (
	ioctlAddFD   = 0x40182103 // SECCOMP_IOCTL_NOTIF_ADDFD, _IOW('!', 3, 24 bytes)
	ioctlIDValid = 0x40082102 // SECCOMP_IOCTL_NOTIF_ID_VALID, _IOW('!', 2, u64)
	flagContinue = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
	addFDSetFD   = unix.SECCOMP_ADDFD_FLAG_SETFD
)

// Listener is one socket the init owns, as graceful bound it.
type Listener struct {
	Addr string   // "127.0.0.1:8080", "[::]:8080"; unix listeners are skipped
	File *os.File // the init's descriptor; shared, never closed here
}

// Options configures one generation's Session.
type Options struct {
	Listeners []Listener
	Logger    *slog.Logger
	// Count, if set, is told of every answered call: call is "bind",
	// "listen" or "shutdown"; result is "taken", "passed", "refused",
	// "answered", "suppressed" or "failed".
	Count func(call, result string)
}

// Session answers the trapped calls of one generation until Close, or
// until every process of the generation has gone.
type Session struct {
	nfd     int
	stop    int // eventfd that wakes the loop for Close
	log     *slog.Logger
	count   func(call, result string)
	owned   []*owned
	sz      sizes
	done    chan struct{}
	listens chan struct{}

	mu       sync.Mutex
	closed   bool
	listened bool
	problem  string
}

// Serve starts answering the calls that arrive on nfd, the notification
// fd from Channel.Receive; the Session owns it from now on.
func Serve(nfd int, opts Options) (*Session, error) {
	sz, err := notifSizes()
	if err != nil {
		unix.Close(nfd)
		return nil, err
	}
	// The trapped thread sleeps until it is answered: waking this loop
	// on its CPU (Linux 6.6) spares each trapped call a cross-CPU wake-up.
	// Older kernels refuse the flag; the calls work the same, slower.
	_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(nfd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("takeover eventfd: %w", err)
	}
	s := &Session{nfd: nfd, stop: stop, log: opts.Logger, count: opts.Count, sz: sz,
		done: make(chan struct{}), listens: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.count == nil {
		s.count = func(string, string) {}
	}
	for _, l := range opts.Listeners {
		ip, port, ok := parseOwned(l.Addr)
		if !ok {
			continue
		}
		o := &owned{addr: l.Addr, ip: ip, port: port, fd: rawFd(l.File)}
		var st unix.Stat_t
		if err := unix.Fstat(o.fd, &st); err != nil {
			s.closeFds()
			return nil, fmt.Errorf("takeover: stat %s: %w", l.Addr, err)
		}
		o.ino = st.Ino
		sa, err := unix.Getsockname(o.fd)
		if err != nil {
			s.closeFds()
			return nil, fmt.Errorf("takeover: getsockname %s: %w", l.Addr, err)
		}
		_, o.v6 = sa.(*unix.SockaddrInet6)
		s.owned = append(s.owned, o)
	}
	if len(s.owned) == 0 {
		close(s.listens) // nothing to wait for
	}
	go s.loop()
	return s, nil
}

// Listened is closed once the generation has called listen() on every
// owned socket: it is then accepting, and ready by the listen gate.
func (s *Session) Listened() <-chan struct{} { return s.listens }

// Pending names the owned addresses the generation has not listened on.
func (s *Session) Pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.owned {
		if !o.listen {
			out = append(out, o.addr)
		}
	}
	return out
}

// Problem is the last bind the session refused, for a failure reason.
func (s *Session) Problem() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problem
}

// Close stops answering and closes the notification fd: a process of the
// generation that is still around gets ENOSYS from a trapped call.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(s.stop, one[:])
	<-s.done
	s.closeFds()
}

func (s *Session) closeFds() {
	unix.Close(s.nfd)
	unix.Close(s.stop)
}

// loop waits on its own thread: a trapped call is answered in tens of
// microseconds, and the runtime's poller does not know seccomp fds.
func (s *Session) loop() {
	defer close(s.done)
	req := make([]byte, max(int(s.sz.notif), 80))
	resp := make([]byte, max(int(s.sz.resp), 24))
	fds := []unix.PollFd{{Fd: int32(s.nfd), Events: unix.POLLIN}, {Fd: int32(s.stop), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			s.log.Error("takeover: poll", "err", err)
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			// POLLHUP: every process under the filter has exited.
			return
		}
		clear(req)
		if err := ioctl(s.nfd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&req[0])); err != nil {
			// ENOENT: the caller was interrupted before we read it.
			if err != unix.ENOENT && err != unix.EINTR {
				s.log.Error("takeover: receive", "err", err)
				return
			}
			continue
		}
		n := notif{
			id:  binary.NativeEndian.Uint64(req[0:]),
			pid: int(binary.NativeEndian.Uint32(req[8:])),
			nr:  int(int32(binary.NativeEndian.Uint32(req[16:]))),
		}
		for i := range n.args {
			n.args[i] = binary.NativeEndian.Uint64(req[32+8*i:])
		}
		val, errno, flags := s.answer(n)
		clear(resp)
		binary.NativeEndian.PutUint64(resp[0:], n.id)
		binary.NativeEndian.PutUint64(resp[8:], uint64(val))
		binary.NativeEndian.PutUint32(resp[16:], uint32(-int32(errno)))
		binary.NativeEndian.PutUint32(resp[20:], flags)
		if err := ioctl(s.nfd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp[0])); err != nil && err != unix.ENOENT {
			s.log.Error("takeover: answer", "pid", n.pid, "err", err)
		}
	}
}

type notif struct {
	id   uint64
	pid  int // the calling thread, in our pid namespace
	nr   int
	args [6]uint64
}

// answer decides one call: (return value, errno, flags).
func (s *Session) answer(n notif) (int64, unix.Errno, uint32) {
	fd := int(int32(n.args[0]))
	switch n.nr {
	case unix.SYS_BIND:
		return s.bind(n, fd)
	case unix.SYS_LISTEN:
		if o := s.ownedFd(n.pid, fd); o != nil {
			s.markListened(o)
			s.count("listen", "answered")
			return 0, 0, 0
		}
		s.count("listen", "passed")
	case unix.SYS_SHUTDOWN:
		if o := s.ownedFd(n.pid, fd); o != nil {
			s.log.Info("takeover: shutdown of an owned listener suppressed; it stays open for the next generation", "pid", n.pid, "fd", fd, "address", o.addr)
			s.count("shutdown", "suppressed")
			return 0, 0, 0
		}
		s.count("shutdown", "passed")
	}
	return 0, 0, flagContinue
}

func (s *Session) bind(n notif, fd int) (int64, unix.Errno, uint32) {
	pass := func() (int64, unix.Errno, uint32) {
		s.count("bind", "passed")
		return 0, 0, flagContinue
	}
	size := int(uint32(n.args[2]))
	if size < 2 || size > 128 {
		return pass()
	}
	buf := make([]byte, size)
	if err := readMem(n.pid, uintptr(n.args[1]), buf); err != nil {
		s.log.Warn("takeover: cannot read the address of a bind; passed through", "pid", n.pid, "err", err)
		return pass()
	}
	want, ok := sockaddr(buf)
	if !ok || want.Port() == 0 {
		return pass()
	}
	var same []*owned
	for _, o := range s.owned {
		if o.port == want.Port() {
			same = append(same, o)
		}
	}
	if len(same) == 0 {
		return pass()
	}
	proto, err := sockProto(n.pid, fd)
	if err != nil || !strings.HasPrefix(proto, "TCP") && !strings.HasPrefix(proto, "MPTCP") {
		// A UDP socket on the same port does not clash with ours.
		return pass()
	}
	wantV6 := binary.NativeEndian.Uint16(buf) == unix.AF_INET6
	var o *owned
	for _, c := range same {
		if covers(c, want.Addr(), wantV6) {
			o = c
			break
		}
	}
	if o == nil {
		msg := mismatch(want, wantV6, same[0])
		s.mu.Lock()
		s.problem = msg
		s.mu.Unlock()
		s.log.Error("takeover: "+msg, "pid", n.pid, "fd", fd)
		s.count("bind", "refused")
		return 0, unix.EADDRINUSE, 0
	}
	flags, err := fdFlags(n.pid, fd)
	if err != nil {
		s.log.Warn("takeover: cannot read the flags of the app's socket; passed through", "pid", n.pid, "fd", fd, "err", err)
		return pass()
	}
	// O_NONBLOCK lives in the open file description that every generation
	// and the init share: the app gets the mode it set on its own socket
	// (Go, nginx and node want non-blocking, Python's http.server blocking).
	if err := setNonblock(o.fd, flags&unix.O_NONBLOCK != 0); err != nil {
		s.log.Warn("takeover: set O_NONBLOCK", "address", o.addr, "err", err)
	}
	addfd := make([]byte, 24)
	binary.NativeEndian.PutUint64(addfd[0:], n.id)
	binary.NativeEndian.PutUint32(addfd[8:], addFDSetFD)
	binary.NativeEndian.PutUint32(addfd[12:], uint32(o.fd))
	binary.NativeEndian.PutUint32(addfd[16:], uint32(fd))
	binary.NativeEndian.PutUint32(addfd[20:], uint32(flags&unix.O_CLOEXEC))
	if err := ioctl(s.nfd, ioctlAddFD, unsafe.Pointer(&addfd[0])); err != nil {
		if err != unix.ENOENT {
			s.log.Error("takeover: hand the owned socket to the app", "pid", n.pid, "fd", fd, "address", o.addr, "err", err)
			s.count("bind", "failed")
		}
		return 0, unix.EADDRINUSE, 0
	}
	s.log.Info("takeover: bind answered with the owned socket", "pid", n.pid, "fd", fd, "asked", addrString(want), "owned", o.addr)
	s.count("bind", "taken")
	return 0, 0, 0
}

// ownedFd returns the owned listener that the app's fd refers to, if any.
func (s *Session) ownedFd(pid, fd int) *owned {
	var st unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(pid)+"/fd/"+strconv.Itoa(fd), &st) != nil {
		return nil
	}
	for _, o := range s.owned {
		if o.ino == st.Ino {
			return o
		}
	}
	return nil
}

func (s *Session) markListened(o *owned) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.listen = true
	for _, x := range s.owned {
		if !x.listen {
			return
		}
	}
	if !s.listened {
		s.listened = true
		close(s.listens)
	}
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// readMem reads the app's memory; /proc/PID/mem is the fallback where
// process_vm_readv is filtered. Both need ptrace access, which the init
// has over its own children of the same user.
func readMem(pid int, addr uintptr, buf []byte) error {
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: addr, Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err == nil && n == len(buf) {
		return nil
	}
	f, ferr := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if ferr != nil {
		return fmt.Errorf("process_vm_readv: %v; %w", err, ferr)
	}
	defer f.Close()
	if _, ferr = f.ReadAt(buf, int64(addr)); ferr != nil {
		return fmt.Errorf("process_vm_readv: %v; %w", err, ferr)
	}
	return nil
}

// sockProto is the kernel's protocol name of the app's socket ("TCP",
// "TCPv6", "MPTCP", "UDP", ...), without a pidfd_getfd (Docker's default
// profile refuses it).
func sockProto(pid, fd int) (string, error) {
	buf := make([]byte, 32)
	n, err := unix.Getxattr("/proc/"+strconv.Itoa(pid)+"/fd/"+strconv.Itoa(fd), "system.sockprotoname", buf)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(buf[:n]), "\x00"), nil
}

// fdFlags reads the open flags of the app's fd from fdinfo (octal).
func fdFlags(pid, fd int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("fdinfo of fd %d: no flags line", fd)
}

func setNonblock(fd int, on bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	want := fl &^ unix.O_NONBLOCK
	if on {
		want |= unix.O_NONBLOCK
	}
	if want == fl {
		return nil
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, want)
	return err
}

// rawFd returns f's descriptor without (*os.File).Fd, which would make a
// non-blocking file blocking for good.
func rawFd(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(s uintptr) { fd = int(s) })
	return fd
}
