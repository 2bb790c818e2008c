package takeover

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Check reports why the takeover cannot work on this kernel, or nil. It
// asks the kernel only (no process starts); what only an install can tell
// (another listener in the process tree, a seccomp profile that forbids
// seccomp()) comes from the shim through a Channel.
func Check() error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return fmt.Errorf("no filter for %s (amd64 and arm64 only)", runtime.GOARCH)
	}
	action := uint32(unix.SECCOMP_RET_USER_NOTIF)
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action))); e != 0 {
		return fmt.Errorf("the kernel has no seccomp user notification (%v); it needs Linux 5.9 or later", e)
	}
	if major, minor, ok := kernelVersion(); ok && (major < 5 || major == 5 && minor < 9) {
		return fmt.Errorf("kernel %d.%d is older than 5.9, which added SECCOMP_IOCTL_NOTIF_ADDFD", major, minor)
	}
	if _, err := notifSizes(); err != nil {
		return err
	}
	return nil
}

type sizes struct{ notif, resp, data uint16 }

func notifSizes() (sizes, error) {
	var s sizes
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s))); e != 0 {
		return s, fmt.Errorf("seccomp(SECCOMP_GET_NOTIF_SIZES): %w", e)
	}
	return s, nil
}

func kernelVersion() (major, minor int, ok bool) {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return 0, 0, false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	digits := func(s string) string {
		if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			return s[:i]
		}
		return s
	}
	major, err1 := strconv.Atoi(digits(parts[0]))
	minor, err2 := strconv.Atoi(digits(parts[1]))
	return major, minor, err1 == nil && err2 == nil
}

// Refused is the shim's report that it could not install the filter.
type Refused struct {
	Step  string // the call that failed: "seccomp(...)", "prctl(...)"
	Errno syscall.Errno
}

func (r *Refused) Error() string {
	why := ""
	switch r.Errno {
	case unix.EBUSY:
		why = ": another seccomp listener already watches this process tree (entrypoint under entrypoint, or a runtime that uses seccomp notification)"
	case unix.EACCES:
		why = ": no_new_privs is not set"
	case unix.EPERM:
		why = ": the container's seccomp profile forbids it"
	case unix.ENOSYS, unix.EINVAL:
		why = ": the kernel does not support it"
	}
	return fmt.Sprintf("%s failed (%v)%s", r.Step, r.Errno, why)
}

// Channel carries the shim's answer: the filter's notification fd, or
// why there is none. Make one per start; give Child to the shim.
type Channel struct {
	parent, child *os.File
}

// NewChannel makes the socketpair. Both ends are close-on-exec; the spawn
// hands Child over as an explicit fd.
func NewChannel() (*Channel, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("takeover socketpair: %w", err)
	}
	// The init's end is non-blocking so the runtime poller serves it and
	// Receive can have a deadline; the shim's stays blocking.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("takeover socketpair: %w", err)
	}
	return &Channel{parent: os.NewFile(uintptr(fds[0]), "takeover"), child: os.NewFile(uintptr(fds[1]), "takeover-shim")}, nil
}

// Child is the end the shim gets.
func (c *Channel) Child() *os.File { return c.child }

// CloseChild closes the init's copy of the shim's end, once the shim has
// been started (or could not be): without it Receive would never see EOF.
func (c *Channel) CloseChild() { c.child.Close() }

// Close closes both ends.
func (c *Channel) Close() {
	c.child.Close()
	c.parent.Close()
}

// errNoAnswer is the shim ending without a word: it never got to the
// filter (the exec failed, or it was killed).
var errNoAnswer = errors.New("the exec shim ended without answering")

// Receive waits for the shim's answer, at most within (0: until the shim
// answers, execs or ends), and closes the channel. It returns the
// notification fd, a *Refused, errNoAnswer, or an error wrapping
// os.ErrDeadlineExceeded.
func (c *Channel) Receive(within time.Duration) (int, error) {
	defer c.Close()
	c.CloseChild()
	if within > 0 {
		if err := c.parent.SetReadDeadline(time.Now().Add(within)); err != nil {
			return -1, fmt.Errorf("takeover: read the shim's answer: %w", err)
		}
	}
	rc, err := c.parent.SyscallConn()
	if err != nil {
		return -1, err
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return -1, fmt.Errorf("takeover: read the shim's answer: %w", err)
	}
	if n == 0 {
		return -1, errNoAnswer
	}
	msg := string(buf[:n])
	if msg[0] == 'K' {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return -1, fmt.Errorf("takeover: the shim's answer carries no fd")
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return -1, fmt.Errorf("takeover: the shim's answer carries no fd")
		}
		return fds[0], nil
	}
	num, step, _ := strings.Cut(msg[1:], " ")
	e, _ := strconv.Atoi(num)
	return -1, &Refused{Step: step, Errno: syscall.Errno(e)}
}
