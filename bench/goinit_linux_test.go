//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestGoInitFloors builds both floors of the start-up table and checks they
// are what the report says: each runs its child and passes its exit status
// on, and only the one built as is catches signals before the child starts
// (a SIGTERM sent once the child runs kills the other with the Go
// runtime's default, and is caught by this one).
func TestGoInitFloors(t *testing.T) {
	ctx := context.Background()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caught, bare := filepath.Join(dir, "goinit"), filepath.Join(dir, "goinit-nosignals")
	if err := goBuild(ctx, root, caught, "./bench/goinit"); err != nil {
		t.Fatal(err)
	}
	if err := goBuild(ctx, root, bare, "./bench/goinit", "-tags", "nosignals"); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{caught, bare} {
		err := exec.Command(bin, "/bin/sh", "-c", "exit 3").Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("%s /bin/sh -c 'exit 3': %v, want exit status 3", filepath.Base(bin), err)
		}
	}

	term := func(bin string) (exited bool, ws syscall.WaitStatus) {
		cmd := exec.Command(bin, "/bin/sh", "-c", "echo up; exec sleep 60")
		// Its own group, so that the sleep goes with it whatever happens.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "up\n" {
			t.Fatalf("%s: child said %q, %v", filepath.Base(bin), line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var wstatus syscall.WaitStatus
		// A default SIGTERM kills at once; give a caught one time to show.
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			pid, err := syscall.Wait4(cmd.Process.Pid, &wstatus, syscall.WNOHANG, nil)
			if err != nil {
				t.Fatal(err)
			}
			if pid == cmd.Process.Pid {
				cmd.Process.Release()
				return true, wstatus
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false, 0
	}
	if exited, ws := term(bare); !exited || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("goinit -tags nosignals after SIGTERM: exited %v, status %v; want killed by SIGTERM (no signal caught)", exited, ws)
	}
	if exited, ws := term(caught); exited {
		t.Errorf("goinit after SIGTERM: exited with %v; want it running (every signal caught before the child)", ws)
	}
}
