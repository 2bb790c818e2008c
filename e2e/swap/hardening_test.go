package swap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 11 item 2, DESIGN rule 13: the exec readiness gate gets the app's
// environment rules: none of the init's ENTRYPOINT_* configuration (the
// admin token above all), the app's own env, and ENTRYPOINT_APP_PID.
func TestExecGateGetsTheAppsEnvironment(t *testing.T) {
	t.Setenv("ENTRYPOINT_ADMIN_TOKEN", "s3cret-token")
	t.Setenv("ENTRYPOINT_LOG_LEVEL", "info")
	dir := t.TempDir()
	dump := filepath.Join(dir, "gate-env")
	gate := filepath.Join(dir, "gate.sh")
	writeFile(t, gate, "#!/bin/sh\nenv > "+dump+".tmp && mv "+dump+".tmp "+dump+"\n")
	if err := os.Chmod(gate, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: [%q]
  listen: ["127.0.0.1:0"]
  env: {APP_COLOUR: blue}
  readiness: {type: exec, command: [%q], delay: 50ms}
`, exampleBin, gate))
	e := startEP(t, "--config", cfg)
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	pid := e.app("web").Current.Pid
	for _, bad := range []string{"ENTRYPOINT_ADMIN_TOKEN", "s3cret-token", "ENTRYPOINT_LOG_LEVEL"} {
		if strings.Contains(env, bad) {
			t.Errorf("the exec gate's environment holds %s:\n%s", bad, env)
		}
	}
	for _, want := range []string{"APP_COLOUR=blue", fmt.Sprintf("ENTRYPOINT_APP_PID=%d", pid)} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("the exec gate's environment lacks %s:\n%s", want, env)
		}
	}
}
