//go:build e2e_docker

package dockere2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Image names the suite builds; E2E_IMAGE_TAG changes the tag.
var (
	tag        = envOr("E2E_IMAGE_TAG", "e2e")
	imageInit  = "entrypoint:" + tag      // the default target: /entrypoint alone
	imageDemo  = "entrypoint-demo:" + tag // the example app under entrypoint
	imageShell = "entrypoint-shell:" + tag
	// entrypoint + examples/selfbind, a server that binds its own port
	// (bind takeover, e2e/docker/Dockerfile.selfbind).
	imageSelfbind = "entrypoint-selfbind:" + tag
	// entrypoint + the host's nginx and its libraries (Dockerfile.nginx).
	imageNginx = "entrypoint-nginx:" + tag
)

// labelArgs marks everything the suite creates, so a crashed run can be
// cleaned with `docker rm -f $(docker ps -aq -f label=io.entrypoint.e2e)`.
var labelArgs = []string{"--label", "io.entrypoint.e2e=1"}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e_docker: no Docker engine answers (%v: %s); run e2e/docker/run.sh, which starts one\n",
			err, bytes.TrimSpace(out))
		os.Exit(1)
	}
	if os.Getenv("E2E_SKIP_BUILD") == "" {
		if err := buildImages(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e_docker: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// repoRoot is two levels up from this package (go test runs in its dir).
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// buildImages builds the Dockerfile's two targets and the test-only shell
// and selfbind images. GO_IMAGE comes from E2E_GO_IMAGE (run.sh passes the image
// docker/make-builder-image.sh made); without it the Dockerfile's default.
func buildImages() error {
	root := repoRoot()
	common := []string{"build", "-q", "--build-arg", "VERSION=" + envOr("E2E_VERSION", "e2e")}
	common = append(common, labelArgs...)
	if g := os.Getenv("E2E_GO_IMAGE"); g != "" {
		common = append(common, "--build-arg", "GO_IMAGE="+g)
	}
	for _, b := range []struct{ target, image string }{{"entrypoint", imageInit}, {"demo", imageDemo}} {
		args := append(append([]string{}, common...), "--target", b.target, "-t", b.image, root)
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The selfbind image builds from the repository like the Dockerfile
	// (the Dockerfile named by -f is sent even where .dockerignore
	// leaves e2e/ out).
	sb := append(append([]string{}, common...), "-f", filepath.Join(root, "e2e", "docker", "Dockerfile.selfbind"),
		"--build-arg", "BASE="+imageInit, "-t", imageSelfbind, root)
	if out, err := exec.Command("docker", sb...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(sb, " "), err, out)
	}
	if err := buildNginx(common); err != nil {
		return err
	}
	ctx, err := os.MkdirTemp("", "entrypoint-shell-ctx")
	if err != nil {
		return fmt.Errorf("shell image context: %w", err)
	}
	defer os.RemoveAll(ctx)
	busybox := envOr("E2E_BUSYBOX", "/bin/busybox")
	if err := copyFile(busybox, filepath.Join(ctx, "busybox")); err != nil {
		return fmt.Errorf("shell image needs a static busybox (apt-get install busybox-static): %w", err)
	}
	df := filepath.Join(root, "e2e", "docker", "Dockerfile.shell")
	args := append(append([]string{}, common...), "-f", df, "--build-arg", "BASE="+imageDemo, "-t", imageShell, ctx)
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// buildNginx builds imageNginx from the host's /usr/sbin/nginx (Debian's
// nginx package) and the libraries ldd names, copied at their paths.
func buildNginx(common []string) error {
	nginx := envOr("E2E_NGINX", "/usr/sbin/nginx")
	out, err := exec.Command("ldd", nginx).Output()
	if err != nil {
		return fmt.Errorf("the nginx image needs the host's nginx (apt-get install nginx): ldd %s: %w", nginx, err)
	}
	ctx, err := os.MkdirTemp("", "entrypoint-nginx-ctx")
	if err != nil {
		return fmt.Errorf("nginx image context: %w", err)
	}
	defer os.RemoveAll(ctx)
	files := []string{nginx}
	for _, l := range strings.Split(string(out), "\n") {
		// "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vdso has no file.
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(ctx, "rootfs", f)); err != nil {
			return fmt.Errorf("nginx image context: %w", err)
		}
	}
	here := filepath.Join(repoRoot(), "e2e", "docker")
	if err := copyFile(filepath.Join(here, "nginx.conf"), filepath.Join(ctx, "nginx.conf")); err != nil {
		return fmt.Errorf("nginx image context: %w", err)
	}
	args := append(append([]string{}, common...), "-f", filepath.Join(here, "Dockerfile.nginx"),
		"--build-arg", "BASE="+imageInit, "-t", imageNginx, ctx)
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// docker runs the CLI and returns its combined output.
func docker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(t, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// container is one running container the test owns; it is removed (and its
// logs shown when the test failed) at cleanup.
type container struct {
	t  *testing.T
	id string
}

// start runs `docker run -d` with the given run options and image/args and
// registers its removal.
func start(t *testing.T, args ...string) *container {
	t.Helper()
	all := append(append([]string{"run", "-d"}, labelArgs...), args...)
	out := mustDocker(t, all...)
	// The id is the last line: the engine may warn first ("IPv4
	// forwarding is disabled" when dockerd runs with --ip-forward=false
	// on a host where it is off).
	id := out[strings.LastIndex(out, "\n")+1:]
	c := &container{t: t, id: id}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := docker(t, "logs", "--tail", "60", c.id)
			t.Logf("logs of %.12s:\n%s", c.id, logs)
		}
		docker(t, "rm", "-f", "-v", c.id)
	})
	return c
}

// hostAddr is the 127.0.0.1:port the container port is published on.
func (c *container) hostAddr(port string) string {
	c.t.Helper()
	out := mustDocker(c.t, "port", c.id, port+"/tcp")
	// One line per binding; we only publish on 127.0.0.1.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "127.0.0.1:") {
			return strings.TrimSpace(l)
		}
	}
	c.t.Fatalf("container port %s is not published on 127.0.0.1: %q", port, out)
	return ""
}

func (c *container) exec(args ...string) (string, error) {
	return docker(c.t, append([]string{"exec", c.id}, args...)...)
}

func (c *container) inspect(format string) string {
	c.t.Helper()
	return mustDocker(c.t, "inspect", "-f", format, c.id)
}

// hostPID is PID 1 of the container as the host sees it.
func (c *container) hostPID() string { return c.inspect("{{.State.Pid}}") }

// poll calls f until it returns true or the deadline passes.
func poll(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady polls /readyz on the published health port.
func (c *container) waitReady(health string) {
	c.t.Helper()
	poll(c.t, 60*time.Second, "/readyz of "+c.id[:12], func() bool {
		code, _, err := get("http://" + health + "/readyz")
		return err == nil && code == http.StatusOK
	})
}

var appLine = regexp.MustCompile(`pid=(\d+) generation=(\S+)`)

// whoServes returns the pid and generation the example app answers with.
func whoServes(addr string) (pid, gen string, err error) {
	code, body, err := get("http://" + addr + "/")
	if err != nil {
		return "", "", err
	}
	m := appLine.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		return "", "", fmt.Errorf("GET /: %d %q", code, body)
	}
	return m[1], m[2], nil
}

// runDemo starts the demo image with its app and health ports published on
// 127.0.0.1 and waits until it is ready.
func runDemo(t *testing.T, runArgs ...string) (c *container, app, health string) {
	t.Helper()
	args := append([]string{"-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090"}, runArgs...)
	c = start(t, args...)
	app, health = c.hostAddr("8080"), c.hostAddr("9090")
	c.waitReady(health)
	return c, app, health
}
