package pid1

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// screen accumulates what a pseudo-terminal shows.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
	ch  chan struct{}
}

func (s *screen) run(r io.Reader) {
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		s.mu.Lock()
		s.buf.Write(b[:n])
		close(s.ch)
		s.ch = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until want appears after position from, and returns the
// position after it.
func (s *screen) waitFor(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		s.mu.Lock()
		text, ch := s.buf.String(), s.ch
		s.mu.Unlock()
		if i := strings.Index(text[min(from, len(text)):], want); i >= 0 {
			return from + i + len(want)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("terminal never showed %q; it shows:\n%s", want, text[min(from, len(text)):])
		}
	}
}

// `docker run -it IMAGE sh`: the app gets the terminal as its foreground
// process group, Ctrl-C reaches the program in the foreground, and job
// control (Ctrl-Z, jobs, fg) works in an interactive shell.
func TestInteractiveShell(t *testing.T) {
	needPID1(t)
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", entrypointBin, "--", "sh", "-i")
	cmd.Env = append(os.Environ(), "ENTRYPOINT_HEALTH_LISTEN=off", "ENTRYPOINT_CONTROL_SOCKET=off", "PS1=$ ", "ENV=")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("start on a pty: %v", err)
	}
	defer tty.Close()
	done := make(chan int, 1)
	go func() {
		cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	s := &screen{ch: make(chan struct{})}
	go s.run(tty)
	send := func(keys string) {
		if _, err := tty.Write([]byte(keys)); err != nil {
			t.Fatalf("type %q: %v", keys, err)
		}
	}

	at := s.waitFor(t, 0, "$ ")
	// Ctrl-C stops the foreground program and the shell survives.
	send("sleep 30; echo after-sleep-$?\n")
	at = s.waitFor(t, at, "sleep 30")
	waitForeground(t, "sleep")
	send("\x03")
	at = s.waitFor(t, at, "$ ")
	// Job control: Ctrl-Z stops the job, jobs lists it.
	send("sleep 31\n")
	waitForeground(t, "sleep")
	send("\x1a")
	at = s.waitFor(t, at, "Stopped")
	send("jobs\n")
	at = s.waitFor(t, at, "sleep 31")
	// fg brings it back to the foreground, where Ctrl-C ends it.
	send("fg\n")
	waitForeground(t, "sleep")
	send("\x03")
	send("echo back-$((6*7))\n")
	at = s.waitFor(t, at, "back-42")
	send("exit 7\n")
	select {
	case code := <-done:
		if code != 7 {
			t.Fatalf("exit code %d, want 7 (the shell's)", code)
		}
	case <-time.After(15 * time.Second):
		s.mu.Lock()
		t.Fatalf("entrypoint did not exit after the shell did; screen:\n%s", s.buf.String())
	}
	_ = at
}

// waitForeground waits until a process named name exists (the shell has
// started the job), so keys typed next reach it and not the shell.
func waitForeground(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil || !strings.Contains(string(b), "("+name+")") {
				continue
			}
			// Field 8 (tpgid) equals field 5 (pgrp) for a foreground job.
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(f) > 5 && f[2] == f[5] {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no foreground %s appeared", name)
}

var _ = syscall.SIGINT
