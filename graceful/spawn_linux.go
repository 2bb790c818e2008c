package graceful

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/graceful/shim"
	"github.com/entrypoint/entrypoint/internal/execshim"
)

// handedVars are the variables Spawn owns: they are removed from every
// generation's environment and set again only when they apply.
func handedVars() []string {
	return []string{
		"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
		"SERVER_STARTER_PORT", "SERVER_STARTER_GENERATION",
		"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
		"ENTRYPOINT_GENERATION", shim.Env, shim.TakeoverEnv, shim.ErrFdEnv,
	}
}

// Spec describes one generation to start.
type Spec struct {
	// Path is the executable, resolved by the caller (exec.LookPath) at
	// each start. A relative Path is relative to Dir.
	Path string
	// Argv is the full argv, Argv[0] included; empty means {Path}.
	Argv []string
	// Env is the environment; nil means the init's own.
	Env []string
	// Dir is the working directory; "" means the init's.
	Dir string
	// Sockets are handed over as fds 3..; nil or empty: no fds, no shim.
	Sockets *Sockets
	// Generation is ENTRYPOINT_GENERATION and SERVER_STARTER_GENERATION.
	Generation int
	// Notify, if set, becomes NOTIFY_SOCKET.
	Notify *Notify
	// Watchdog > 0 becomes WATCHDOG_USEC.
	Watchdog time.Duration
	// Stdin, Stdout and Stderr become fds 0, 1, 2; nil means /dev/null
	// (as with exec.Cmd).
	Stdin, Stdout, Stderr *os.File
	// Takeover, if set, is the shim's end of a takeover.Channel: the shim
	// installs the bind() takeover filter and answers on it (DESIGN rule
	// 12). It needs Sockets.
	Takeover *os.File
	// Shim, if set, may run the native exec shim instead of the Go one
	// for a generation with sockets; nil means the Go shim.
	Shim *ExecShim
	// Foreground puts the new process group in the foreground of the
	// terminal on Stdin (when stdin is a terminal and the init runs
	// interactively).
	Foreground bool
}

// Spawn forks and executes one generation in its own process group (pgid ==
// pid) and returns its pid. It never waits: call it inside reaper.Start's
// callback, so the reaper owns the exit status. Safe for concurrent use;
// the files in spec must stay open until it returns.
func Spawn(spec Spec) (int, error) {
	pid, native, err := spec.Shim.start(spec.Shim.image(spec), func(img *os.File) (int, error) { return spawn(spec, img) })
	if err == nil && native && spec.Shim.OnNative != nil {
		spec.Shim.OnNative(pid)
	}
	return pid, err
}

// nativeForkErr is ForkExec failing on the native shim: nothing ran, so
// the Go shim may try. A failure after the fork (the app's own execve,
// reported through the exec-error pipe) is the app's, never retried.
type nativeForkErr struct{ err error }

func (e *nativeForkErr) Error() string { return e.err.Error() }
func (e *nativeForkErr) Unwrap() error { return e.err }

// spawn is Spawn with the native shim's image, or nil for the Go shim.
func spawn(spec Spec, native *os.File) (int, error) {
	if spec.Path == "" {
		return 0, errors.New("start app: empty path")
	}
	argv := spec.Argv
	if len(argv) == 0 {
		argv = []string{spec.Path}
	}
	exe, env := spec.Path, generationEnv(spec)
	var execErr *execErrPipe // the shim's execve error, when it runs
	if spec.Sockets.Len() > 0 {
		// ForkExec fails synchronously when the app is missing; the shim
		// could only exit 127 later. Check first, so both paths report
		// the same way.
		if err := checkExecutable(spec.Path, spec.Dir); err != nil {
			return 0, fmt.Errorf("start app %q: %w", spec.Path, err)
		}
		// After the sockets: the exec error pipe, then the native shim's
		// own image, then the takeover channel.
		errFd := 3 + spec.Sockets.Len()
		takeoverFd := errFd + 1
		if native != nil {
			takeoverFd++
		}
		pipe, err := newExecErrPipe(errFd)
		if err != nil {
			return 0, fmt.Errorf("start app %q: %w", spec.Path, err)
		}
		defer pipe.close()
		execErr = pipe
		if native != nil {
			// internal/execshim's contract: argv ["errfd[:takeoverfd]",
			// path, argv...], the pid slot first in envp, the image at
			// errfd+1.
			shimArg := strconv.Itoa(errFd)
			if spec.Takeover != nil {
				shimArg += ":" + strconv.Itoa(takeoverFd)
			}
			exe = "/proc/self/fd/" + strconv.Itoa(errFd+1)
			argv = append([]string{shimArg, spec.Path}, argv...)
			env = append([]string{execshim.PIDSlot}, env...)
		} else {
			// /proc/self/exe is this very binary even if the file was
			// replaced or deleted since: the shim always matches the init.
			exe = "/proc/self/exe"
			env = append(env, shim.Env+"="+spec.Path, pipe.env())
			if spec.Takeover != nil {
				env = append(env, shim.TakeoverEnv+"="+strconv.Itoa(takeoverFd))
			}
		}
	}

	var keep []*os.File
	var files []uintptr
	for i, f := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr} {
		if f == nil {
			flag := os.O_WRONLY
			if i == 0 {
				flag = os.O_RDONLY
			}
			null, err := os.OpenFile(os.DevNull, flag, 0)
			if err != nil {
				return 0, fmt.Errorf("start app %q: %w", spec.Path, err)
			}
			defer null.Close()
			f = null
		}
		fd, err := rawFd(f)
		if err != nil {
			return 0, fmt.Errorf("start app %q: fd %d: %w", spec.Path, i, err)
		}
		keep = append(keep, f)
		files = append(files, fd)
	}
	if spec.Sockets != nil {
		for _, f := range spec.Sockets.Files() {
			fd, err := rawFd(f)
			if err != nil {
				return 0, fmt.Errorf("start app %q: socket %s: %w", spec.Path, f.Name(), err)
			}
			keep = append(keep, f)
			files = append(files, fd)
		}
	}
	if execErr != nil {
		fd, err := rawFd(execErr.w)
		if err != nil {
			return 0, fmt.Errorf("start app %q: exec error pipe: %w", spec.Path, err)
		}
		keep = append(keep, execErr.w)
		files = append(files, fd)
	}
	if native != nil && execErr != nil {
		fd, err := rawFd(native)
		if err != nil {
			return 0, fmt.Errorf("start app %q: exec shim: %w", spec.Path, err)
		}
		keep = append(keep, native)
		files = append(files, fd)
	}
	if spec.Takeover != nil && execErr != nil {
		fd, err := rawFd(spec.Takeover)
		if err != nil {
			return 0, fmt.Errorf("start app %q: takeover channel: %w", spec.Path, err)
		}
		keep = append(keep, spec.Takeover)
		files = append(files, fd)
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if spec.Foreground {
		// Ctty is a descriptor of the parent when Foreground is set
		// (syscall.SysProcAttr docs): the terminal on our stdin side.
		sys.Foreground, sys.Ctty = true, int(files[0])
	}
	closeOnExecInherited()
	pid, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{Dir: spec.Dir, Env: env, Files: files, Sys: sys})
	runtime.KeepAlive(keep)
	if err != nil {
		if native != nil {
			return 0, &nativeForkErr{fmt.Errorf("exec the native shim %s: %w", exe, err)}
		}
		return 0, fmt.Errorf("start app %q: %w", spec.Path, err)
	}
	if execErr != nil {
		if err := execErr.wait(spec.Path); err != nil {
			// The shim exits 126/127; its exit is reaped as an orphan.
			return 0, fmt.Errorf("start app %q: %w", spec.Path, err)
		}
	}
	return pid, nil
}

// handoffEnv describes the sockets as fds 3.. in both protocols (the
// systemd one without LISTEN_PID, which the shim sets).
func (s *Sockets) handoffEnv() []string {
	ports := make([]string, len(s.starter))
	for i, k := range s.starter {
		ports[i] = k + "=" + strconv.Itoa(3+i)
	}
	return []string{
		"LISTEN_FDS=" + strconv.Itoa(s.Len()),
		"LISTEN_FDNAMES=" + strings.Join(s.names, ":"),
		"SERVER_STARTER_PORT=" + strings.Join(ports, ";"),
	}
}

// SpawnProbe starts the exec shim as a probe of the takeover: it installs
// the filter, answers on child (a takeover.Channel's shim end) and exits 0,
// so that what only an install can tell (another listener in the process
// tree, a profile that forbids seccomp()) is known before the first app
// starts. It runs the native shim where sh has one, as Spawn does, and
// falls back to the Go shim the same way. Call it inside reaper.Start's
// callback, as Spawn.
func SpawnProbe(child *os.File, sh *ExecShim) (int, error) {
	pid, _, err := sh.start(sh.native(), func(img *os.File) (int, error) { return spawnProbe(child, img) })
	return pid, err
}

// spawnProbe is SpawnProbe through the native shim's image, or the Go
// shim for nil.
func spawnProbe(child, native *os.File) (int, error) {
	fd, err := rawFd(child)
	if err != nil {
		return 0, fmt.Errorf("takeover probe: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("takeover probe: %w", err)
	}
	defer null.Close()
	exe, argv := "/proc/self/exe", []string{"entrypoint-takeover-probe"}
	env := []string{shim.Env + "=", shim.TakeoverEnv + "=3"}
	files := []uintptr{null.Fd(), null.Fd(), os.Stderr.Fd(), fd}
	if native != nil {
		// internal/execshim's contract with an empty path: errfd 3
		// (nobody reads it), the image at 4, the channel at 5.
		img, err := rawFd(native)
		if err != nil {
			return 0, fmt.Errorf("takeover probe: %w", err)
		}
		exe, argv, env = "/proc/self/fd/4", []string{"3:5", "", "entrypoint-takeover-probe"}, []string{execshim.PIDSlot}
		files = []uintptr{null.Fd(), null.Fd(), os.Stderr.Fd(), null.Fd(), img, fd}
	}
	closeOnExecInherited()
	pid, err := syscall.ForkExec(exe, argv, &syscall.ProcAttr{Env: env, Files: files})
	runtime.KeepAlive(child)
	runtime.KeepAlive(native)
	if err != nil {
		if native != nil {
			return 0, &nativeForkErr{fmt.Errorf("exec the native shim %s: %w", exe, err)}
		}
		return 0, fmt.Errorf("takeover probe: %w", err)
	}
	return pid, nil
}

// generationEnv is spec.Env without any handed variable, plus the ones that
// apply to this generation (the package doc lists them).
func generationEnv(spec Spec) []string {
	base := spec.Env
	if base == nil {
		base = os.Environ()
	}
	env := withoutVars(base, handedVars())
	g := strconv.Itoa(spec.Generation)
	env = append(env, "ENTRYPOINT_GENERATION="+g)
	if s := spec.Sockets; s.Len() > 0 {
		env = append(env, s.handoffEnv()...)
		env = append(env, "SERVER_STARTER_GENERATION="+g)
	}
	if spec.Notify != nil {
		env = append(env, "NOTIFY_SOCKET="+spec.Notify.Addr())
	}
	if spec.Watchdog > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(spec.Watchdog.Microseconds(), 10))
	}
	return env
}

func withoutVars(env, names []string) []string {
	out := make([]string, 0, len(env)+8)
next:
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		for _, n := range names {
			if k == n {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func checkExecutable(path, dir string) error {
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

// rawFd returns f's descriptor without (*os.File).Fd, which would switch a
// non-blocking file (a pipe from os.Pipe, say) to blocking for good.
func rawFd(f *os.File) (uintptr, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd uintptr
	if err := rc.Control(func(s uintptr) { fd = s }); err != nil {
		return 0, err
	}
	return fd, nil
}

// closeOnExecInherited marks every fd from 3 up close-on-exec. Go opens
// everything with O_CLOEXEC, but an init inherits whatever its parent left
// open (a runtime's pipe, a debugger's fd), and those would reach every app.
// ForkExec clears the flag on the fds it hands over, so the sockets are not
// affected. close_range(2) needs Linux 5.11; older kernels walk /proc.
func closeOnExecInherited() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}
