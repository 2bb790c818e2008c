package supervisor

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/entrypoint/entrypoint/reaper"
)

// Issue 11 item 8: a generation leader is signalled through a pidfd, which
// answers ESRCH once the leader is reaped instead of reaching whatever
// process got its pid; one opened after the reaping is not trusted.
func TestPidfdNeverOutlivesTheLeader(t *testing.T) {
	r := reaper.New(reaper.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	sleep, err := lookPath("sleep", "", os.Environ())
	if err != nil {
		t.Skip("no sleep(1)")
	}
	pid, exitCh, err := r.Start(func() (int, error) {
		return syscall.ForkExec(sleep, []string{"sleep", "100"}, &syscall.ProcAttr{})
	})
	if err != nil {
		t.Fatal(err)
	}
	p := openPidfd(pid, exitCh)
	if p == nil {
		t.Fatal("no pidfd for a live child (kernel >= 5.3 has them)")
	}
	defer p.close()
	if err := p.signal(0); err != nil {
		t.Fatalf("signal 0 to the live leader: %v", err)
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := <-exitCh
	if e.Code() != 137 {
		t.Fatalf("exit %v", e)
	}
	if err := p.signal(syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("signal after the leader was reaped = %v, want ESRCH", err)
	}
	p.close()
	if err := p.signal(syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("signal after close = %v, want ESRCH", err)
	}
	// Opened after the exit was delivered: not trusted.
	done := make(chan reaper.Exit, 1)
	done <- e
	if q := openPidfd(os.Getpid(), done); q != nil {
		t.Fatal("openPidfd trusted a pid whose exit was already reaped")
	}
}
