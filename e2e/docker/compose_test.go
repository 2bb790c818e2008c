//go:build e2e_docker

package dockere2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freePort asks the kernel for a free loopback port for docker-compose.yml's
// DEMO_PORT / DEMO_HEALTH_PORT (compose cannot publish on an ephemeral
// port and tell us which in a way both implementations share).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// TestCompose runs the demo through docker-compose.yml with each compose
// implementation installed: Debian's docker-compose (v1) and the
// `docker compose` plugin (v2, not packaged by Debian 12).
func TestCompose(t *testing.T) {
	impls := map[string][]string{"docker-compose": {"docker-compose"}, "docker compose": {"docker", "compose"}}
	ran := 0
	for name, argv := range impls {
		t.Run(name, func(t *testing.T) {
			if out, err := exec.Command(argv[0], append(argv[1:], "version")...).CombinedOutput(); err != nil {
				t.Skipf("%s is not installed: %s", name, strings.TrimSpace(string(out)))
			}
			ran++
			composeDemo(t, argv)
		})
	}
	if ran == 0 {
		t.Fatal("neither docker-compose nor the docker compose plugin is installed (apt-get install docker-compose)")
	}
}

func composeDemo(t *testing.T, argv []string) {
	root := repoRoot()
	project := fmt.Sprintf("entrypoint-e2e-%d", os.Getpid())
	appPort, healthPort := freePort(t), freePort(t)
	env := append(os.Environ(), "DEMO_PORT="+appPort, "DEMO_HEALTH_PORT="+healthPort,
		"VERSION="+envOr("E2E_VERSION", "e2e"))
	if g := os.Getenv("E2E_GO_IMAGE"); g != "" {
		env = append(env, "GO_IMAGE="+g)
	}
	compose := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		all := append(append(append([]string{}, argv[1:]...),
			"-p", project, "-f", filepath.Join(root, "docker-compose.yml")), args...)
		cmd := exec.CommandContext(ctx, argv[0], all...)
		cmd.Env = env
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose("logs", "--tail", "40")
			t.Logf("compose logs:\n%s", out)
		}
		compose("down", "-v", "--timeout", "30")
	})
	if out, err := compose("up", "-d", "--build"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	// The image's HEALTHCHECK (entrypoint probe ready) is what ps shows.
	poll(t, 90*time.Second, "(healthy) in compose ps", func() bool {
		out, _ := compose("ps")
		return strings.Contains(out, "(healthy)") || strings.Contains(out, "healthy")
	})
	app := "127.0.0.1:" + appPort
	_, body, err := get("http://" + app + "/")
	if err != nil || !strings.Contains(body, "config=") {
		t.Fatalf("GET / of the demo: %q, %v; want the demo config shown", body, err)
	}
	swapUnderLoad(t, app, func(t *testing.T) {
		if out, err := compose("kill", "-s", "USR1", "app"); err != nil {
			t.Fatalf("compose kill -s USR1 app: %v\n%s", err, out)
		}
	})
	if out, err := compose("stop", "--timeout", "30"); err != nil {
		t.Fatalf("compose stop: %v\n%s", err, out)
	}
	out, _ := compose("ps", "-a")
	t.Logf("after stop:\n%s", out)
	if !strings.Contains(out, "Exit 0") && !strings.Contains(out, "Exited (0)") {
		t.Errorf("the demo did not exit 0 on stop:\n%s", out)
	}
}
