package graceful_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
)

func newNotify(t *testing.T) *graceful.Notify {
	t.Helper()
	n, err := graceful.NewNotify()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func notifyGate(t *testing.T, timeout time.Duration) graceful.Gate {
	t.Helper()
	g, err := graceful.NewGate(config.Readiness{Type: "notify", Timeout: config.Duration(timeout)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// sendFromHere sends a datagram from the test process: a process that is
// not the generation and not in its group.
func sendFromHere(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func nextMessage(t *testing.T, n *graceful.Notify) graceful.Message {
	t.Helper()
	select {
	case m := <-n.Messages():
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no notify message")
		return graceful.Message{}
	}
}

func TestNotifyGatePassesOnReadyAndKeepsDelivering(t *testing.T) {
	n := newNotify(t)
	g := spawn(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("notify"), Notify: n, Stderr: os.Stderr})
	n.Attach(g.pid)
	if err := notifyGate(t, 30*time.Second).Wait(context.Background(), graceful.Target{Pid: g.pid, Notify: n}); err != nil {
		t.Fatalf("gate: %v", err)
	}
	// The gate took nothing: both datagrams are still there, in order.
	if m := nextMessage(t, n); !m.Ready || m.Status != "ready" || m.Pid != g.pid {
		t.Errorf("first message %+v, want READY=1 STATUS=ready from %d", m, g.pid)
	}
	if m := nextMessage(t, n); !m.Watchdog || m.Status != "serving" || m.Ready {
		t.Errorf("second message %+v, want WATCHDOG=1 STATUS=serving", m)
	}
}

func TestNotifyAcceptsAWorkerOfTheGeneration(t *testing.T) {
	n := newNotify(t)
	g := spawn(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("notify-child"), Notify: n, Stderr: os.Stderr})
	n.Attach(g.pid)
	if err := notifyGate(t, 30*time.Second).Wait(context.Background(), graceful.Target{Pid: g.pid, Notify: n}); err != nil {
		t.Fatalf("gate: %v", err)
	}
	if m := nextMessage(t, n); !m.Ready || m.Pid == g.pid {
		t.Errorf("message %+v, want READY=1 from a worker, not the leader %d", m, g.pid)
	}
}

// A shell wrapper that reports with systemd-notify, which exits right
// after sending: it waits on BARRIER=1, and the init checks it before
// releasing the barrier.
func TestNotifyFromSystemdNotifyInAShellScript(t *testing.T) {
	if _, err := exec.LookPath("systemd-notify"); err != nil {
		t.Skip("systemd-notify not installed")
	}
	n := newNotify(t)
	g := spawn(t, graceful.Spec{
		Path: "/bin/sh", Argv: []string{"sh", "-c", "systemd-notify --ready --status=up && exec sleep 600"},
		Notify: n, Stderr: os.Stderr,
	})
	n.Attach(g.pid)
	if err := notifyGate(t, 30*time.Second).Wait(context.Background(), graceful.Target{Pid: g.pid, Notify: n}); err != nil {
		t.Fatalf("gate: %v", err)
	}
}

// READY=1 from outside the generation does not count: from the init
// itself, before and after Attach, and from another process group.
func TestNotifyIgnoresOutsiders(t *testing.T) {
	n := newNotify(t)
	r, w := pipe(t)
	g := spawn(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("notify-on-usr1"), Notify: n, Stdout: w, Stderr: os.Stderr})
	w.Close()
	sendFromHere(t, n.Addr(), "READY=1\nSTATUS=early impostor")
	n.Attach(g.pid)
	sendFromHere(t, n.Addr(), "READY=1\nSTATUS=impostor")
	// A process in its own group (RunCommand's), a sibling of the app.
	out, code, err := graceful.RunCommand(context.Background(), testReaper, []string{helperPath(t)},
		helperEnv("send-ready", "NOTIFY_SOCKET="+n.Addr()), "")
	if err != nil || code != 0 {
		t.Fatalf("sender: %d %v %s", code, err, out)
	}
	select {
	case <-n.Ready():
		t.Fatal("READY=1 from outside the generation counted")
	default:
	}
	// Datagrams are read in order: if the impostors counted they would
	// come first.
	if line, err := bufio.NewReader(r).ReadString('\n'); line != "armed\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := syscall.Kill(g.pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, n); m.Pid != g.pid || !m.Ready {
		t.Errorf("first delivered message %+v, want the generation's READY=1", m)
	}
	select {
	case <-n.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("Ready not closed")
	}
}

func TestNotifyGateTimesOut(t *testing.T) {
	n := newNotify(t)
	g := spawn(t, graceful.Spec{Path: helperPath(t), Env: helperEnv("sleep"), Notify: n})
	n.Attach(g.pid)
	err := notifyGate(t, 50*time.Millisecond).Wait(context.Background(), graceful.Target{Pid: g.pid, Notify: n})
	if !errors.Is(err, graceful.ErrNotReady) || !strings.HasPrefix(err.Error(), "readiness gate notify: no READY=1 within 50ms; an app that does not send it needs another --readiness (auto, listen,") {
		t.Errorf("err = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = notifyGate(t, time.Hour).Wait(ctx, graceful.Target{Pid: g.pid, Notify: n})
	if !errors.Is(err, context.Canceled) || errors.Is(err, graceful.ErrNotReady) {
		t.Errorf("cancelled: %v", err)
	}
	err = notifyGate(t, time.Hour).Wait(context.Background(), graceful.Target{Pid: g.pid})
	if err == nil || !strings.Contains(err.Error(), "no notify socket") {
		t.Errorf("without a socket: %v", err)
	}
}

func TestNotifyCloseEndsMessages(t *testing.T) {
	n, err := graceful.NewNotify()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-n.Messages(); ok {
		t.Error("Messages still open after Close")
	}
	n.Close() // idempotent
}
