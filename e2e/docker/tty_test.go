//go:build e2e_docker

package dockere2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// term is the host side of `docker run -it`: a real pseudo-terminal whose
// output is collected for expect().
type term struct {
	t   *testing.T
	pty *os.File
	mu  sync.Mutex
	buf bytes.Buffer
	pos int // expect() consumed up to here
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.pty.WriteString(s); err != nil {
		tm.t.Fatalf("write to the terminal: %v", err)
	}
}

// expect waits for re in the output after the last match.
func (tm *term) expect(re string) string {
	tm.t.Helper()
	rx := regexp.MustCompile(re)
	var m string
	poll(tm.t, 30*time.Second, fmt.Sprintf("%q on the terminal", re), func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		rest := tm.buf.Bytes()[tm.pos:]
		if loc := rx.FindIndex(rest); loc != nil {
			m = string(rest[loc[0]:loc[1]])
			tm.pos += loc[1]
			return true
		}
		return false
	})
	return m
}

func (tm *term) all() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.buf.String()
}

// TestInteractiveShell runs `docker run -it IMAGE sh` through a real pty:
// the shell under entrypoint must own the terminal (job control on, Ctrl-C
// reaches the foreground job and not the shell) and its exit code must come
// out of docker run.
func TestInteractiveShell(t *testing.T) {
	name := fmt.Sprintf("entrypoint-e2e-tty-%d", os.Getpid())
	args := append(append([]string{"run", "-it", "--rm", "--name", name}, labelArgs...),
		"--entrypoint", "/entrypoint", imageShell, "--", "sh")
	cmd := exec.Command("docker", args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 100})
	if err != nil {
		t.Fatalf("start docker run -it under a pty: %v", err)
	}
	t.Cleanup(func() {
		docker(t, "rm", "-f", name)
		f.Close()
	})
	tm := &term{t: t, pty: f}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			tm.mu.Lock()
			tm.buf.Write(b[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("terminal:\n%s", tm.all())
		}
	}()

	tm.send("echo tty-$((6*7))\r")
	tm.expect(`tty-42`)

	// Job control: a background job is listed by `jobs`.
	tm.send("sleep 31 &\r")
	tm.send("jobs\r")
	tm.expect(`\[1\]\+?\s+Running\s+sleep 31`)

	// Ctrl-C ends the foreground job, the shell survives and says 130.
	tm.send("sleep 32\r")
	c := &container{t: t, id: name}
	poll(t, 30*time.Second, "sleep 32 to run", func() bool {
		n, _ := psCount(t, c, func(_, _, args string) bool { return args == "sleep 32" })
		return n == 1
	})
	tm.send("\x03")
	tm.send("echo rc=$?\r")
	tm.expect(`rc=130`)

	tm.send("kill %1; exit 3\r")
	<-done
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 3 {
		t.Errorf("docker run -it exited %d (%v), want the shell's 3", code, err)
	}
	out := tm.all()
	for _, bad := range []string{"job control turned off", "can't access tty"} {
		if strings.Contains(out, bad) {
			t.Errorf("the shell says %q: the app does not own the terminal", bad)
		}
	}
}
