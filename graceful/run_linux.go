package graceful

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/reaper"
)

// maxOutput bounds what RunCommand keeps of a command's output: enough to
// show why a validate command failed, not enough to hurt the init.
const maxOutput = 64 << 10

// outputGrace is how long RunCommand keeps reading after the command ended
// and its group was killed, for a process that escaped the group with the
// pipe still open.
const outputGrace = time.Second

// RunCommand runs argv (argv[0] looked up in the init's PATH) with env (nil:
// CommandEnv(nil)) in dir, in its own process group, stdin on /dev/null, and
// returns its combined stdout and stderr (the first 64 KiB) and its exit
// code (128+N when killed by signal N), as delivered by r. A non-zero exit
// is not an error. When ctx ends first the whole group is SIGKILLed and err
// wraps ctx.Err(). Processes the command left behind in its group are
// killed when it exits. Safe for concurrent use.
func RunCommand(ctx context.Context, r *reaper.Reaper, argv, env []string, dir string) ([]byte, int, error) {
	if len(argv) == 0 {
		return nil, -1, errors.New("run: empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	if env == nil {
		env = CommandEnv(nil)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	defer pr.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		pw.Close()
		return nil, -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	nullFd, err1 := rawFd(null)
	wFd, err2 := rawFd(pw)
	if err := errors.Join(err1, err2); err != nil {
		null.Close()
		pw.Close()
		return nil, -1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	closeOnExecInherited()
	pid, exited, err := r.Start(func() (int, error) {
		return syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Dir:   dir,
			Env:   env,
			Files: []uintptr{nullFd, wFd, wFd},
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
	})
	// Only the child holds the write end now: EOF means it (and every
	// process that inherited its output) is gone.
	null.Close()
	pw.Close()
	if err != nil {
		return nil, -1, fmt.Errorf("run %s: %w", argv[0], err)
	}

	out := &capped{max: maxOutput}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr)
	}()

	var exit reaper.Exit
	var ctxErr error
	select {
	case exit = <-exited:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		// The leader is not reaped yet, so its pid is still our group's.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		r.Kick()
		exit = <-exited
	}
	// Leftovers in the group would hold the pipe open and outlive a
	// command that is over; ESRCH (none) is the common case.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(outputGrace):
		_ = pr.SetReadDeadline(time.Now())
		<-copied
	}
	if ctxErr != nil {
		return out.Bytes(), exit.Code(), fmt.Errorf("run %s: %w", argv[0], ctxErr)
	}
	return out.Bytes(), exit.Code(), nil
}

// capped keeps the first max bytes written to it and discards the rest,
// noting that it did.
type capped struct {
	bytes.Buffer
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - c.Buffer.Len(); room < len(p) {
		p = p[:max(room, 0)]
		c.truncated = true
	}
	c.Buffer.Write(p)
	return n, nil
}

func (c *capped) Bytes() []byte {
	if c.truncated {
		return append(c.Buffer.Bytes(), "\n[output truncated]\n"...)
	}
	return c.Buffer.Bytes()
}
