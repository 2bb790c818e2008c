package reaper

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func startReaper(t *testing.T, opts Options) *Reaper {
	t.Helper()
	r := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// spawn starts argv without waiting for it: the reaper is the only waiter.
func spawn(argv ...string) func() (int, error) {
	return func() (int, error) {
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return 0, err
		}
		return syscall.ForkExec(path, argv, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	}
}

// The stealing regression test: 200 short-lived children started while
// the reaper sweeps; every exit status reaches its owner.
func TestNoStatusLost(t *testing.T) {
	r := startReaper(t, Options{Interval: 5 * time.Millisecond})
	type started struct {
		pid  int
		code int
		ch   <-chan Exit
	}
	var all []started
	for i := 0; i < 200; i++ {
		code := i % 7
		pid, ch, err := r.Start(spawn("sh", "-c", "exit "+string(rune('0'+code))))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, started{pid, code, ch})
	}
	for _, s := range all {
		select {
		case e := <-s.ch:
			if e.Pid != s.pid || e.Code() != s.code {
				t.Fatalf("pid %d: got %+v (code %d), want code %d", s.pid, e, e.Code(), s.code)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("exit of pid %d never delivered", s.pid)
		}
	}
	if n := r.Orphans(); n != 0 {
		t.Fatalf("%d registered children were counted as orphans", n)
	}
}

// A child that exits before Start returns is still its owner's: Start
// holds the reaper's lock across the fork.
func TestExitBeforeRegistration(t *testing.T) {
	r := startReaper(t, Options{Interval: time.Millisecond})
	for i := 0; i < 50; i++ {
		_, ch, err := r.Start(func() (int, error) {
			pid, err := spawn("true")()
			time.Sleep(2 * time.Millisecond) // the child is long gone
			r.Kick()
			return pid, err
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-ch:
			if e.Code() != 0 {
				t.Fatalf("code %d", e.Code())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("status lost")
		}
	}
	if r.Orphans() != 0 {
		t.Fatal("a registered child was counted as an orphan")
	}
}

// Unregistered children are orphans: reaped, counted, reported.
func TestOrphansCounted(t *testing.T) {
	got := make(chan Exit, 10)
	r := startReaper(t, Options{Orphan: func(e Exit) { got <- e }})
	p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 3"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Pid != p.Pid || e.Code() != 3 {
			t.Fatalf("orphan %+v, want pid %d code 3", e, p.Pid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("orphan never reaped")
	}
	if r.Orphans() != 1 {
		t.Fatalf("Orphans() = %d", r.Orphans())
	}
}

// Code is the shell's view: 128+N for a signal.
func TestCodeOfSignal(t *testing.T) {
	r := startReaper(t, Options{})
	_, ch, err := r.Start(spawn("sh", "-c", "kill -TERM $$"))
	if err != nil {
		t.Fatal(err)
	}
	if e := <-ch; e.Code() != 143 || e.String() != "killed by SIGTERM" {
		t.Fatalf("got code %d %q", e.Code(), e.String())
	}
}

// WaitNoChildren returns once every child is reaped.
func TestWaitNoChildren(t *testing.T) {
	r := startReaper(t, Options{})
	if _, _, err := r.Start(spawn("sleep", "0.2")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := r.WaitNoChildren(ctx); err == nil {
		t.Fatal("WaitNoChildren returned while a child ran")
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitNoChildren(ctx); err != nil {
		t.Fatal(err)
	}
}

// BeforeStart runs before every start function, and a Start waits for it:
// the init's way to keep every child from existing before every signal is
// caught.
func TestBeforeStartGatesEveryStart(t *testing.T) {
	gate := make(chan struct{})
	var calls int
	r := startReaper(t, Options{BeforeStart: func() { calls++; <-gate }})
	forked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, ch, err := r.Start(func() (int, error) {
			close(forked)
			return spawn("true")()
		})
		if err == nil {
			<-ch
		}
		done <- err
	}()
	select {
	case <-forked:
		t.Fatal("the child was started before BeforeStart returned")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ch, err := r.Start(spawn("true")); err != nil {
		t.Fatal(err)
	} else {
		<-ch
	}
	if calls != 2 {
		t.Errorf("BeforeStart ran %d times for 2 starts", calls)
	}
}
