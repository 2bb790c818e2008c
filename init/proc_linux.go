package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/graceful/shim"
	"github.com/entrypoint/entrypoint/internal/procstat"
)

// lookPath resolves the app's command with the app's own PATH at every
// start, so a binary replaced on disk is what the next generation runs. A
// name with a slash is relative to the app's dir, as execve will see it.
func lookPath(name, dir string, env []string) (string, error) {
	check := func(p string) error {
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s: %w", p, fs.ErrPermission)
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[5:]
		}
	}
	var firstErr error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && errors.Is(err, fs.ErrPermission) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", fmt.Errorf("command %s: %w", name, firstErr)
	}
	return "", fmt.Errorf("command %s: not found in PATH %s: %w", name, path, fs.ErrNotExist)
}

// spawnExitCode is the init's exit code when an app cannot be started:
// 127 not found, 126 not executable (tini's spawn, POSIX shells).
func spawnExitCode(err error) int {
	if errors.Is(err, fs.ErrNotExist) {
		return shim.ExitNotFound
	}
	return shim.ExitNotExecutable
}

// signalGroup sends sig to the process group led by pid. pid <= 0 would
// address our own group or every process: never.
func signalGroup(pid int, sig syscall.Signal) {
	if pid > 0 {
		_ = syscall.Kill(-pid, sig)
	}
}

// groupGone waits until no process is left in the process group pgid
// (kill(-pgid, 0) answers ESRCH) or deadline closes, and says which. Zombies
// count as present until the reaper collects them, which it does at once.
func groupGone(pgid int, deadline <-chan struct{}) bool {
	if pgid < 1 {
		return true
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-t.C:
		}
	}
}

// signalStrays signals every process left besides the init and returns
// how many there were. As PID 1 that is everyone in the namespace
// (kill(-1) skips the caller); otherwise only our own descendants, found
// through /proc, because kill(-1) would reach the rest of the machine.
func signalStrays(sig syscall.Signal) int {
	self := os.Getpid()
	parents := processParents()
	n := 0
	for pid := range parents {
		if pid == self {
			continue
		}
		if self == 1 || descends(pid, self, parents) {
			n++
			if self != 1 {
				_ = syscall.Kill(pid, sig)
			}
		}
	}
	if self == 1 && n > 0 {
		_ = syscall.Kill(-1, sig)
	}
	return n
}

func descends(pid, ancestor int, parents map[int]int) bool {
	for i := 0; i < 4096 && pid > 1; i++ {
		pid = parents[pid]
		if pid == ancestor {
			return true
		}
	}
	return false
}

// processParents maps every visible PID to its parent's.
func processParents() map[int]int {
	m := make(map[int]int)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procstat.Read(pid)
		if err != nil {
			continue // gone since ReadDir
		}
		m[pid] = st.PPID
	}
	return m
}

func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// yieldCPU offers this thread's CPU to any other runnable thread
// (sched_yield(2)), such as an app this thread just signalled. It returns
// at once when nothing else is waiting for the CPU, otherwise after them:
// under CFS and EEVDF at most about one scheduler slice
// (https://docs.kernel.org/scheduler/sched-eevdf.html). It cannot fail on
// Linux (sched_yield(2): "always succeeds"), so there is no error to see.
func yieldCPU() {
	syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
