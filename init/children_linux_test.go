package supervisor

import (
	"os/exec"
	"testing"
	"time"
)

// hasChildren tells a process with no child from one with a child, the
// shortcut endLeftovers takes before it scans /proc.
func TestHasChildren(t *testing.T) {
	lone := exec.Command("sleep", "30")
	if err := lone.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { lone.Process.Kill(); lone.Wait() }()
	parent := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { parent.Process.Kill(); parent.Wait() }()

	if got := hasChildren(lone.Process.Pid); got != childrenNone {
		t.Errorf("sleep: hasChildren = %d, want childrenNone", got)
	}
	// sh forks its sleep right after it starts: wait for the fork, not a
	// fixed time.
	deadline := time.Now().Add(10 * time.Second)
	for hasChildren(parent.Process.Pid) != childrenSome {
		if time.Now().After(deadline) {
			t.Fatal("sh never showed its child in /proc/PID/task/*/children")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := hasChildren(1 << 30); got != childrenUnknown {
		t.Errorf("no such process: hasChildren = %d, want childrenUnknown", got)
	}
}
