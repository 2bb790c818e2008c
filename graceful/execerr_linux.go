package graceful

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/graceful/shim"
)

// execErrWait bounds how long Spawn waits for the exec shim to reach the
// app's execve: a shim that hangs must not hold the reaper's lock.
const execErrWait = 10 * time.Second

// execErrPipe carries the exec shim's execve error back to Spawn, the way
// os/exec does for its own children: the shim gets the write end
// close-on-exec, so a successful execve closes it (EOF, nothing read) and
// a failed one writes the errno first. Without it a binary that cannot be
// executed (exec format error) would only show as exit code 126.
type execErrPipe struct {
	r, w *os.File
	fd   int // the number of the write end in the child
}

func newExecErrPipe(childFd int) (*execErrPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec error pipe: %w", err)
	}
	return &execErrPipe{r: r, w: w, fd: childFd}, nil
}

func (p *execErrPipe) env() string { return shim.ErrFdEnv + "=" + strconv.Itoa(p.fd) }

// wait closes our write end and reads what the shim said: nil once its
// execve succeeded (or it did not answer within execErrWait, so the
// generation's exit and gate decide), else the errno as a *fs.PathError.
func (p *execErrPipe) wait(path string) error {
	p.w.Close()
	_ = p.r.SetReadDeadline(time.Now().Add(execErrWait))
	b, _ := io.ReadAll(io.LimitReader(p.r, 32))
	n, err := strconv.Atoi(string(b))
	if len(b) == 0 || err != nil || n <= 0 {
		return nil
	}
	return &fs.PathError{Op: "exec", Path: path, Err: syscall.Errno(n)}
}

func (p *execErrPipe) close() {
	p.r.Close()
	p.w.Close()
}
