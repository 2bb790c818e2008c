//go:build e2e_docker

package dockere2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runOnce runs a container in the foreground and returns its exit code and
// output (stdout and stderr together, as a user sees them).
func runOnce(t *testing.T, args ...string) (int, string) {
	t.Helper()
	all := append(append([]string{"run", "--rm"}, labelArgs...), args...)
	out, err := docker(t, all...)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(all, " "), err)
	}
	return code, strings.TrimSpace(out)
}

// TestBadInput: each mistake ends the container non-zero with one line that
// names what to fix.
func TestBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(bad, []byte("apps:\n  - name: web\n    command: [/app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A port another process holds: the host's, shared with --network host.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldAddr := held.Addr().String()
	cases := []struct {
		name string
		args []string
		want string // a word the one line must contain
	}{
		// --network none where no network is needed: on a bridge, a
		// daemon that does not forward IPv4 (dockerd --ip-forward=false)
		// prints a warning of its own into the output.
		{"missing command", []string{"--network", "none", imageInit}, "command"},
		{"port given twice", []string{"--network", "none", "--entrypoint", "/entrypoint", imageDemo, "--listen", ":9090", "--", "/app"}, "9090"},
		{"port already taken", []string{"--network", "host", "--entrypoint", "/entrypoint", imageDemo,
			"--health-listen", "off", "--control-socket", "off", "--listen", heldAddr, "--", "/app"}, heldAddr},
		{"config that does not parse", []string{"--network", "none", "-v", bad + ":/etc/entrypoint/config.yaml:ro", imageDemo}, "config.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runOnce(t, tc.args...)
			t.Logf("exit %d: %s", code, out)
			if code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if lines := strings.Split(out, "\n"); len(lines) != 1 {
				t.Errorf("%d lines of output, want one:\n%s", len(lines), out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not mention %q: %s", tc.want, out)
			}
		})
	}
}
