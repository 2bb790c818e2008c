package graceful

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/graceful/shim"
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
	return Run(ctx, r, Command{Argv: argv, Env: env, Dir: dir})
}

// Command is one command for Run.
type Command struct {
	Argv, Env []string
	Dir       string
	// Sockets, if set, are handed over as the app gets them: fds 3..,
	// LISTEN_FDS (with LISTEN_PID, through the exec shim),
	// LISTEN_FDNAMES and SERVER_STARTER_PORT. A validate command that
	// checks a config naming fd@3 (HAProxy) needs them (DESIGN rule 13).
	Sockets *Sockets
}

// Run is RunCommand for a Command.
func Run(ctx context.Context, r *reaper.Reaper, c Command) ([]byte, int, error) {
	argv, env, dir := c.Argv, c.Env, c.Dir
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
	exe := path
	var extra []uintptr
	if s := c.Sockets; s.Len() > 0 {
		env = append(withoutVars(env, handedVars()), s.handoffEnv()...)
		env = append(env, shim.Env+"="+path)
		exe = "/proc/self/exe"
		for _, f := range s.Files() {
			fd, err := rawFd(f)
			if err != nil {
				return nil, -1, fmt.Errorf("run %s: socket %s: %w", argv[0], f.Name(), err)
			}
			extra = append(extra, fd)
		}
		defer runtime.KeepAlive(s)
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
		return syscall.ForkExec(exe, argv, &syscall.ProcAttr{
			Dir:   dir,
			Env:   env,
			Files: append([]uintptr{nullFd, wFd, wFd}, extra...),
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
