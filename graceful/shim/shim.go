// Package shim is the exec shim of the fd handoff: a generation that gets
// sockets is started as this binary with ENTRYPOINT_INTERNAL_SHIM set to
// the app's path; the shim sets LISTEN_PID to its own pid (which the app
// keeps across execve) and becomes the app.
//
// It does that in its init(), imports nothing but syscall, and so runs
// before nearly every other package of the binary is initialised: the
// net/http, crypto and YAML inits, and earlysig's signal registration,
// would otherwise add milliseconds to every hot swap. Go
// initialises packages in import-path order as their dependencies allow,
// and a package that needs only syscall is ready almost at once.
//
// When the init takes over the app's own bind() (DESIGN rule 12), the shim
// also installs the seccomp filter that traps it, just before the exec, and
// hands the init the filter's notification fd (trap_linux.go).
//
// It must never do anything else, and never run in any other mode: without
// the variable its init returns at once.
package shim

import "syscall"

// Env names the variable that carries the app's path. earlysig reads it
// too, to leave the shim's signals alone.
const Env = "ENTRYPOINT_INTERNAL_SHIM"

// ErrFdEnv names the variable that carries the number of the exec-error
// pipe's write end: the shim makes it close-on-exec, so a successful execve
// closes it and the init reads EOF; a failed one writes the error there
// first (os/exec's pattern, across the shim). Never passed to the app.
const ErrFdEnv = "ENTRYPOINT_INTERNAL_SHIM_ERRFD"

// Exit codes when the app cannot be executed (tini's spawn, POSIX shells).
const (
	ExitNotFound      = 127
	ExitNotExecutable = 126
)

func init() {
	path, ok := syscall.Getenv(Env)
	if !ok {
		return
	}
	if v, ok := syscall.Getenv(TakeoverEnv); ok {
		if fd := atoi(v); fd > 2 {
			trap(fd)
		}
		if path == "" {
			// The init's start-up probe: the answer is all it wanted.
			syscall.Exit(0)
		}
	}
	argv, err := cmdline()
	if err != nil || len(argv) == 0 {
		fail("read own argv: ", err, ExitNotExecutable)
	}
	errFd := errPipe()
	env := []string{"LISTEN_PID=" + itoa(syscall.Getpid())}
	for _, kv := range syscall.Environ() {
		if hasKey(kv, Env) || hasKey(kv, TakeoverEnv) || hasKey(kv, "LISTEN_PID") || hasKey(kv, ErrFdEnv) {
			continue
		}
		env = append(env, kv)
	}
	err = syscall.Exec(path, argv, env)
	code := ExitNotExecutable
	if err == syscall.ENOENT || err == syscall.ENOTDIR || path == "" {
		code = ExitNotFound
	}
	if errFd >= 0 && err != nil {
		// The errno, so the init reports the real cause (exec format
		// error), not only the exit code.
		if en, ok := err.(syscall.Errno); ok {
			syscall.Write(errFd, []byte(itoa(int(en))))
		}
	}
	fail("exec "+path+": ", err, code)
}

// errPipe returns the exec-error pipe's fd, made close-on-exec, or -1.
func errPipe() int {
	s, ok := syscall.Getenv(ErrFdEnv)
	if !ok {
		return -1
	}
	fd := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		fd = fd*10 + int(s[i]-'0')
	}
	if fd < 3 {
		return -1
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC); e != 0 {
		return -1
	}
	return fd
}

func hasKey(kv, key string) bool {
	return len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '='
}

// cmdline reads argv from /proc/self/cmdline: the os package, which holds
// os.Args, is not initialised yet.
func cmdline() ([]string, error) {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, chunk)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		buf = append(buf, chunk[:n]...)
	}
	var argv []string
	start := 0
	for i, b := range buf {
		if b == 0 {
			argv = append(argv, string(buf[start:i]))
			start = i + 1
		}
	}
	return argv, nil
}

func fail(what string, err error, code int) {
	msg := "entrypoint: " + what
	if err != nil {
		msg += err.Error()
	}
	syscall.Write(2, []byte(msg+"\n"))
	syscall.Exit(code)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
