package swap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// cli runs `entrypoint args... --control-socket` against e and returns
// stdout, stderr and the exit code.
func (e *ep) cli(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypointBin, append(args, "--control-socket", e.socket)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}

// Issue 11 item 5: a control request whose caller gave up does not run
// later, and the CLI's timeout message says whether the action will still
// happen. Item 16: a failed reload is printed once.
func TestGaveUpRequestDoesNotRunLater(t *testing.T) {
	dir := t.TempDir()
	gateOpen := filepath.Join(dir, "open") // the exec gate passes while it exists
	crash := filepath.Join(dir, "crash")   // new generations exit 3 while it exists
	gate := filepath.Join(dir, "gate.sh")
	if err := os.WriteFile(gate, []byte("#!/bin/sh\ntest -e "+gateOpen+" && ! test -e "+crash+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	touch := func(p string) {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch(gateOpen)
	e := startEP(t, "--readiness", "exec", "--readiness-command", gate, "--readiness-delay", "20ms",
		"--", "sh", "-c", "if [ -e "+crash+" ]; then exit 3; fi; exec sleep 1000")

	// A reload whose caller gives up while its swap waits for the gate:
	// it started, and runs to its end.
	os.Remove(gateOpen)
	_, errOut, code := e.cli("reload", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "no outcome within --timeout 2s") || !strings.Contains(errOut, "already started and will run to its end") {
		t.Errorf("reload that timed out during its swap: exit %d, stderr %q; want it to say the swap continues", code, errOut)
	}
	if a := e.app("app"); a.State != status.StateSwapping {
		t.Fatalf("app state %s after the first reload gave up, want swapping", a.State)
	}
	// A reload queued behind that swap, whose caller gives up: it never
	// starts, and the CLI says so.
	_, errOut, code = e.cli("reload", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "had not started and will not run") {
		t.Errorf("reload that timed out in the queue: exit %d, stderr %q; want it to say nothing will run", code, errOut)
	}
	touch(gateOpen)
	e.waitGeneration("app", 2)
	// Had the abandoned reload run after the first swap, this restart
	// would go from generation 3 to 4.
	out, errOut, code := e.cli("restart")
	if code != 0 || !strings.Contains(out, "generation 2 -> 3") {
		t.Fatalf("restart after the abandoned reload: exit %d, %q %q; want generation 2 -> 3", code, out, errOut)
	}
	if logs := e.stderr.String(); strings.Contains(logs, "context canceled") || !strings.Contains(logs, "caller left before the outcome") {
		t.Errorf("the init's log should say the callers left (not ok=false context canceled):\n%s", logs)
	}

	// A failed reload is told once.
	touch(crash)
	out, errOut, code = e.cli("reload")
	if code != 1 || strings.Count(out+errOut, "exited before it was ready") != 1 {
		t.Errorf("failed reload: exit %d, stdout %q, stderr %q; want the failure once", code, out, errOut)
	}
}
