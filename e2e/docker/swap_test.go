//go:build e2e_docker

package dockere2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwapTriggers swaps the demo app three ways, one after the other in
// one container, each under load from the host: every request must succeed
// and the answer must come from a new process of a new generation.
func TestSwapTriggers(t *testing.T) {
	c, app, _ := runDemo(t, imageDemo)
	triggers := []struct {
		name string
		fire func(t *testing.T)
	}{
		{"docker kill -s USR1", func(t *testing.T) { mustDocker(t, "kill", "-s", "USR1", c.id) }},
		{"docker exec kill -USR1 1", func(t *testing.T) {
			if out, err := c.exec("kill", "-USR1", "1"); err != nil {
				t.Fatalf("kill -USR1 1 in the container: %v\n%s", err, out)
			}
		}},
		{"docker exec entrypoint reload", func(t *testing.T) {
			out, err := c.exec("entrypoint", "reload")
			t.Logf("entrypoint reload: %s", strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("entrypoint reload: %v\n%s", err, out)
			}
		}},
	}
	for _, tr := range triggers {
		t.Run(tr.name, func(t *testing.T) {
			swapUnderLoad(t, app, tr.fire)
		})
	}
}

// swapUnderLoad fires a trigger while the host loads the app and waits for
// a new generation to answer.
func swapUnderLoad(t *testing.T, app string, fire func(t *testing.T)) {
	t.Helper()
	pid0, gen0, err := whoServes(app)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(t, app, 4)
	l.waitServed(t, 50)
	fire(t)
	var pid1, gen1 string
	poll(t, 60*time.Second, "a new generation to answer", func() bool {
		pid1, gen1, err = whoServes(app)
		return err == nil && gen1 != gen0
	})
	// Keep loading while the old generation drains and exits.
	l.waitServed(t, 200)
	l.check(t)
	t.Logf("swapped: pid %s generation %s -> pid %s generation %s", pid0, gen0, pid1, gen1)
	if pid1 == pid0 {
		t.Errorf("generation changed (%s -> %s) but the pid did not (%s)", gen0, gen1, pid0)
	}
}

// TestWatchedConfigSwaps is the compose demo's "edit a file, the app swaps":
// a bind-mounted directory is watched, a kubelet-style atomic replace of
// the file starts a new generation that shows the new content.
func TestWatchedConfigSwaps(t *testing.T) {
	dir := t.TempDir()
	// The container runs as 65532: the mounted directory must be readable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("greeting=one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, app, _ := runDemo(t, "-v", dir+":/config:ro", "-e", "ENTRYPOINT_WATCH_DEBOUNCE=200ms",
		imageDemo, "/app", "-config", "/config/app.conf")
	if _, body, err := get("http://" + app + "/"); err != nil || !strings.Contains(body, "greeting=one") {
		t.Fatalf("GET / before the edit: %q, %v", body, err)
	}
	swapUnderLoad(t, app, func(t *testing.T) {
		tmp := filepath.Join(dir, ".app.conf.tmp")
		if err := os.WriteFile(tmp, []byte("greeting=two\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	})
	if _, body, err := get("http://" + app + "/"); err != nil || !strings.Contains(body, "greeting=two") {
		t.Errorf("GET / after the edit: %q, %v; want the new config", body, err)
	}
}
