package graceful

import (
	"errors"
	"os"
	"sync"
	"syscall"

	"github.com/entrypoint/entrypoint/internal/execshim"
)

// ExecShim chooses what runs between fork and the app's execve when a
// generation gets sockets: the native shim of internal/execshim (a few
// syscalls) where this machine has one and the kernel runs it, else the Go
// shim (this binary again: a Go runtime start, about 10 ms idle). Make one
// per init and set it in every Spec. Safe for concurrent use.
type ExecShim struct {
	// OnFallback, if set, hears once why the native shim is not used.
	OnFallback func(error)
	// OnNative, if set, hears the pid of every generation Spawn started
	// through the native shim.
	OnNative func(pid int)

	mu     sync.Mutex
	opened bool
	img    *os.File // nil once given up, or where there is none
}

// image returns the native shim's memfd for spec, or nil for the Go shim.
// The memfd is made at the takeover's probe or the first generation with
// sockets, whichever comes first; never for an init without sockets.
func (s *ExecShim) image(spec Spec) *os.File {
	if spec.Sockets.Len() == 0 {
		return nil
	}
	return s.native()
}

// native returns the native shim's memfd, made at the first call, or nil
// where there is none or it was given up.
func (s *ExecShim) native() *os.File {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.opened {
		defer s.mu.Unlock()
		return s.img
	}
	s.opened = true
	img, err := execshim.Open()
	s.img = img
	s.mu.Unlock()
	if err != nil {
		s.report(err)
		return nil
	}
	return img
}

// start runs f with the native shim's image img, or with nil (the Go
// shim) when img is nil or executing the native one failed before anything
// ran: a policy against memfd execution, or a fork that failed for a
// reason of its own (a Dir that is gone, a passing EAGAIN), which the Go
// shim then tells. Only a policy's refusal gives the native shim up. It
// says whether the native shim started the process.
func (s *ExecShim) start(img *os.File, f func(img *os.File) (int, error)) (pid int, native bool, err error) {
	if img == nil {
		pid, err = f(nil)
		return pid, false, err
	}
	pid, err = f(img)
	var nf *nativeForkErr
	if !errors.As(err, &nf) {
		return pid, err == nil, err
	}
	pid, err = f(nil)
	if err == nil && refusedByPolicy(nf.err) {
		s.giveUp(nf.err)
	}
	return pid, false, err
}

// giveUp stops using the native shim: executing it failed where the Go
// shim succeeded.
func (s *ExecShim) giveUp(err error) {
	s.mu.Lock()
	had := s.img != nil
	// A Spawn running beside this one may still hand the memfd to its
	// child: it keeps the file referenced until ForkExec returns, and the
	// garbage collector closes it after that.
	s.img = nil
	s.mu.Unlock()
	if had {
		s.report(err)
	}
}

// refusedByPolicy says whether the native shim's exec failed the way a
// policy against executing memfds fails (vm.memfd_noexec, an LSM, a
// seccomp profile), for good. Anything else (EAGAIN at a pids limit,
// ENOMEM) may pass, and must not cost every later swap the Go shim.
func refusedByPolicy(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOEXEC)
}

// Native says whether the native shim runs the generations with sockets:
// false before the first of them, and from the moment it was given up.
func (s *ExecShim) Native() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img != nil
}

// report calls OnFallback, never with s.mu held: it may ask Native.
func (s *ExecShim) report(err error) {
	if s.OnFallback != nil {
		s.OnFallback(err)
	}
}
