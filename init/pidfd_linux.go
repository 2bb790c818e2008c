package supervisor

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/reaper"
)

// errNoPidfd: the kernel has no pidfds (before 5.3) or opening one failed.
var errNoPidfd = errors.New("supervisor: no pidfd")

// pidfd refers to one generation leader for good: unlike its pid, it can
// never name another process after the leader was reaped (pidfd_open(2)).
// Safe for concurrent use; the zero of *pidfd (nil) has no fd.
type pidfd struct {
	mu sync.Mutex
	fd int
}

// openPidfd opens a pidfd for pid, a child registered with the reaper
// whose exit channel is exitCh, not yet read by anyone. It is only
// trusted if the child was not reaped by then: a reaped pid may already
// be another process's.
func openPidfd(pid int, exitCh <-chan reaper.Exit) *pidfd {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	if len(exitCh) > 0 {
		// Reaped before the open: the fd may name someone else.
		unix.Close(fd)
		return nil
	}
	return &pidfd{fd: fd}
}

// signal sends sig through the pidfd: ESRCH once the process is gone,
// never a signal to a process that reused its pid.
func (p *pidfd) signal(sig syscall.Signal) error {
	if p == nil {
		return errNoPidfd
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return syscall.ESRCH
	}
	return unix.PidfdSendSignal(p.fd, sig, nil, 0)
}

// close releases the fd; later signals answer ESRCH.
func (p *pidfd) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}
