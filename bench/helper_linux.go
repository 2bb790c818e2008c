//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// roleEnv switches the re-executed bench binary into a helper app.
const roleEnv = "BENCH_ROLE"

// Helper roles and their parameters.
const (
	roleOrphans = "orphans" // BENCH_ORPHANS=n
	roleSigRecv = "sigrecv" // BENCH_SOCK=path BENCH_SIGNAL=n
)

func runHelper(role string) int {
	switch role {
	case roleOrphans:
		n, err := strconv.Atoi(os.Getenv("BENCH_ORPHANS"))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "orphans: BENCH_ORPHANS must be a positive count")
			return 2
		}
		return makeOrphans(n)
	case roleSigRecv:
		return sigRecv()
	case roleBindLoop:
		return bindLoop()
	case roleShutServer:
		return shutServer()
	}
	fmt.Fprintf(os.Stderr, "unknown %s=%q\n", roleEnv, role)
	return 2
}

// makeOrphans double-forks n processes that block on a pipe, so that each
// is an orphan re-parented to PID 1 (the init under test); then it closes
// the pipe, which makes all of them exit at once, and times how long it
// takes until none of their pids exists any more, i.e. until the init has
// reaped the last one. kill(pid, 0) still succeeds on a zombie, so ESRCH
// means reaped. It prints one line:
//
//	orphans-result n=5000 create_ns=... reap_ns=... remaining=0
//
// Go cannot fork without exec; so the children here are raw clone(2)s that
// run only raw system calls (no runtime, no allocation, no stack growth:
// the functions below are nosplit), with every signal blocked, as the
// runtime's own forkAndExecInChild does before its exec. The orphan then
// execs /bin/cat on the pipe: thousands of live copies of a Go process make
// each further fork slower (the kernel links every child into the parent's
// anon_vma chains), which made creating 5,000 orphans take 19 s.
func makeOrphans(n int) int {
	runtime.LockOSThread()
	debug.SetGCPercent(-1)
	var release, report [2]int
	if err := syscall.Pipe2(release[:], syscall.O_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		return 1
	}
	if err := syscall.Pipe2(report[:], syscall.O_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "pipe:", err)
		return 1
	}
	// The report pipe would fill (64 KiB) before 5,000 pids are read.
	unix.FcntlInt(uintptr(report[1]), unix.F_SETPIPE_SZ, 1<<20)

	devnull, err := syscall.Open(os.DevNull, syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open /dev/null:", err)
		return 1
	}
	// execve's arguments, built before the fork: the child cannot allocate.
	cat := []byte("/bin/cat\x00")
	argv := []uintptr{uintptr(unsafe.Pointer(&cat[0])), 0}
	envp := []uintptr{0}
	ex := execArgs{path: &cat[0], argv: &argv[0], envp: &envp[0], stdin: release[0], stdout: devnull}

	pids := make(map[int32]bool, n)
	begin := time.Now()
	var all, old [2]uint32
	all[0], all[1] = ^uint32(0), ^uint32(0)
	reader := make(chan error, 1)
	go func() {
		// Read the grandchildren's pids as the intermediates report them.
		buf := make([]byte, 4*n)
		got := 0
		for got < len(buf) {
			m, err := syscall.Read(report[0], buf[got:])
			if err != nil || m == 0 {
				reader <- fmt.Errorf("read orphan pids after %d bytes: %v", got, err)
				return
			}
			got += m
		}
		for i := 0; i < n; i++ {
			b := buf[4*i:]
			pids[int32(b[0])|int32(b[1])<<8|int32(b[2])<<16|int32(b[3])<<24] = true
		}
		reader <- nil
	}()
	for range n {
		rawSigmask(&all, &old)
		pid := forkOrphan(&ex, report[1])
		rawSigmask(&old, nil)
		if pid < 0 {
			fmt.Fprintln(os.Stderr, "clone failed:", syscall.Errno(-pid))
			return 1
		}
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
	}
	if err := <-reader; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	created := time.Since(begin)

	start := time.Now()
	syscall.Close(release[1])
	giveUp := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_ORPHANS_TIMEOUT")); err == nil {
		giveUp = d
	}
	deadline := start.Add(giveUp)
	for len(pids) > 0 && time.Now().Before(deadline) {
		for pid := range pids {
			if syscall.Kill(int(pid), 0) == syscall.ESRCH {
				delete(pids, pid)
			}
		}
		if len(pids) > 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	reap := time.Since(start)
	fmt.Printf("orphans-result n=%d create_ns=%d reap_ns=%d remaining=%d\n", n, created.Nanoseconds(), reap.Nanoseconds(), len(pids))
	return 0
}

// rawSigmask sets the calling thread's signal mask without the runtime.
//
//go:nosplit
//go:norace
func rawSigmask(set, old *[2]uint32) {
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
}

// execArgs is what the orphan needs to become `cat </release-pipe >/dev/null`.
type execArgs struct {
	path          *byte
	argv, envp    *uintptr
	stdin, stdout int
}

// forkOrphan clones an intermediate child that clones the orphan, writes
// its pid to report and exits; the orphan execs cat reading the release
// pipe (every other fd is close-on-exec), which exits at EOF. It returns the
// intermediate's pid, or -errno.
//
//go:nosplit
//go:norace
func forkOrphan(ex *execArgs, report int) int {
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		return -int(errno)
	}
	if pid != 0 {
		return int(pid)
	}
	// Intermediate child.
	gpid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 1, 0, 0)
	}
	if gpid == 0 {
		// The orphan.
		syscall.RawSyscall(syscall.SYS_DUP3, uintptr(ex.stdin), 0, 0)
		syscall.RawSyscall(syscall.SYS_DUP3, uintptr(ex.stdout), 1, 0)
		syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(ex.path)),
			uintptr(unsafe.Pointer(ex.argv)), uintptr(unsafe.Pointer(ex.envp)))
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(gpid), byte(gpid>>8), byte(gpid>>16), byte(gpid>>24)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(report), uintptr(unsafe.Pointer(&b[0])), 4)
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	return 0
}

// sigRecv reports, on the unix datagram socket BENCH_SOCK, "ready" once
// its handler is installed and then the CLOCK_MONOTONIC time at which each
// BENCH_SIGNAL reached it. The sender reads the same clock before kill(2).
func sigRecv() int {
	n, err := strconv.Atoi(os.Getenv("BENCH_SIGNAL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigrecv: BENCH_SIGNAL must be a signal number")
		return 2
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.Signal(n), syscall.SIGTERM)
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: os.Getenv("BENCH_SOCK"), Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigrecv:", err)
		return 1
	}
	conn.Write([]byte("ready"))
	for s := range sigs {
		t := monotonic()
		if s == syscall.SIGTERM {
			return 0
		}
		conn.Write([]byte(strconv.FormatInt(t, 10)))
	}
	return 0
}

// monotonic is CLOCK_MONOTONIC in nanoseconds, comparable across processes.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
