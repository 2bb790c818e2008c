package graceful

import (
	"context"
	"errors"
	"github.com/entrypoint/entrypoint/internal/syncbuf"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// syncBuffer is a log sink goroutines write to while the test reads it.
type syncBuffer = syncbuf.Buffer

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The notify gate's hint goes to the Target's Logger, not the global one.
func TestNotifyGateLogsToTargetLogger(t *testing.T) {
	n, err := NewNotify()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var buf syncBuffer
	g := notifyGate{timeout: 300 * time.Millisecond, hint: time.Millisecond}
	err = g.Wait(context.Background(), Target{Pid: 1 << 22, Notify: n, Logger: testLogger(&buf)})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("Wait = %v, want not ready", err)
	}
	if !strings.Contains(buf.String(), "no READY=1 yet") {
		t.Errorf("the hint did not reach the Target's logger: %q", buf.String())
	}
}

// A Notify's drop lines go to the logger SetLogger gave it.
func TestNotifySetLogger(t *testing.T) {
	n, err := NewNotify()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var buf syncBuffer
	n.SetLogger(testLogger(&buf))
	// A generation pid nobody has (pid_max is at most 2^22): the test
	// process is not in it.
	n.Attach(1 << 22)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Addr(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "sender is not in the generation") {
		if time.Now().After(deadline) {
			t.Fatalf("no drop line in the Notify's logger: %q", buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
