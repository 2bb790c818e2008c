package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// tools are the binaries the measurements run. An empty path means the
// tool is unavailable and err says why; its rows are skipped.
type tools struct {
	dir         string
	self        string
	entrypoint  string
	entryErr    error
	app         string
	appErr      error
	emptyGo     string // package main; func main(){}: the Go runtime's own start
	emptyGoErr  error
	goInit      string // ./bench/goinit: run the child, catch every signal first
	goInitErr   error
	goInitBare  string // the same built with -tags nosignals
	goInitBErr  error
	tini        string
	tiniErr     error
	startServer string
	ssErr       error
	unshare     string
	unshareErr  error
	selfbind    string
	selfbindErr error
	nginx       string
	nginxErr    error
}

// moduleRoot is the directory of the go.mod that `go env GOMOD` finds from
// the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the entrypoint module: run from the repository root")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds pkg as the image builds the init: static (CGO_ENABLED=0),
// -trimpath; flags go before the package (-tags ...).
func goBuild(ctx context.Context, root, out, pkg string, flags ...string) error {
	args := append(append([]string{"build", "-trimpath", "-o", out}, flags...), pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// aptEnsure finds bin in PATH, or installs pkg with apt-get and looks again.
func aptEnsure(ctx context.Context, log *slog.Logger, bin, pkg string, install bool) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("%s not found and -install=false", bin)
	}
	log.Info("installing", "package", pkg)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lines[len(lines)-1])
		}
		return nil
	}
	if err := run("install", "-y", "-q", pkg); err != nil {
		// A fresh machine has no package lists yet.
		if err := run("update", "-q"); err != nil {
			return "", fmt.Errorf("install %s: %w", pkg, err)
		}
		if err := run("install", "-y", "-q", pkg); err != nil {
			return "", fmt.Errorf("install %s: %w", pkg, err)
		}
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("install %s: %s still not in PATH", pkg, bin)
	}
	return p, nil
}

func prepare(ctx context.Context, log *slog.Logger, install bool) (*tools, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "entrypoint-bench-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	t := &tools{dir: dir}
	if t.self, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	log.Info("building", "dir", dir)
	t.entrypoint = filepath.Join(dir, "entrypoint")
	if t.entryErr = goBuild(ctx, root, t.entrypoint, "./cmd/entrypoint"); t.entryErr != nil {
		t.entrypoint = ""
		log.Warn("entrypoint unavailable", "err", t.entryErr)
	}
	t.app = filepath.Join(dir, "example-app")
	if t.appErr = goBuild(ctx, root, t.app, "./examples/app"); t.appErr != nil {
		t.app = ""
		log.Warn("example-app unavailable", "err", t.appErr)
	}
	t.selfbind = filepath.Join(dir, "selfbind")
	if t.selfbindErr = goBuild(ctx, root, t.selfbind, "./examples/selfbind"); t.selfbindErr != nil {
		t.selfbind = ""
		log.Warn("selfbind unavailable", "err", t.selfbindErr)
	}
	if t.emptyGo, t.emptyGoErr = buildEmptyGo(ctx, dir); t.emptyGoErr != nil {
		log.Warn("empty Go binary unavailable", "err", t.emptyGoErr)
	}
	t.goInit = filepath.Join(dir, "goinit")
	if t.goInitErr = goBuild(ctx, root, t.goInit, "./bench/goinit"); t.goInitErr != nil {
		t.goInit = ""
		log.Warn("goinit unavailable", "err", t.goInitErr)
	}
	t.goInitBare = filepath.Join(dir, "goinit-nosignals")
	if t.goInitBErr = goBuild(ctx, root, t.goInitBare, "./bench/goinit", "-tags", "nosignals"); t.goInitBErr != nil {
		t.goInitBare = ""
		log.Warn("goinit -tags nosignals unavailable", "err", t.goInitBErr)
	}
	if t.tini, t.tiniErr = aptEnsure(ctx, log, "tini", "tini", install); t.tiniErr != nil {
		log.Warn("tini unavailable", "err", t.tiniErr)
	}
	if t.startServer, t.ssErr = aptEnsure(ctx, log, "start_server", "libserver-starter-perl", install); t.ssErr != nil {
		log.Warn("start_server unavailable", "err", t.ssErr)
	}
	if t.nginx, t.nginxErr = aptEnsure(ctx, log, "nginx", "nginx", install); t.nginxErr != nil {
		log.Warn("nginx unavailable", "err", t.nginxErr)
	}
	if t.unshare, t.unshareErr = exec.LookPath("unshare"); t.unshareErr == nil && os.Geteuid() != 0 {
		t.unshare, t.unshareErr = "", fmt.Errorf("unshare --pid needs root")
	}
	return t, nil
}

// buildEmptyGo builds `package main; func main(){}` as a module of its own,
// the way the entrypoint binary is built (static, CGO_ENABLED=0): the
// floor any Go init pays to start.
func buildEmptyGo(ctx context.Context, dir string) (string, error) {
	src := filepath.Join(dir, "emptygo")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", src, err)
	}
	files := map[string]string{
		"go.mod":  "module emptygo\n",
		"main.go": "package main\n\nfunc main() {}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	out := filepath.Join(dir, "emptygo-bin")
	if err := goBuild(ctx, src, out, "."); err != nil {
		return "", err
	}
	return out, nil
}
