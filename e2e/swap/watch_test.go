package swap

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/internal/atomicwriter"
	"github.com/entrypoint/entrypoint/status"
)

// configApp starts the example app under entrypoint watching a ConfigMap-
// style directory written by the kubelet's atomic writer; the app shows
// its config file on /. validate rejects any config containing INVALID.
func configApp(t *testing.T, extra string) (*ep, *atomicwriter.Writer, string) {
	t.Helper()
	dir := t.TempDir()
	vol := filepath.Join(dir, "config")
	w := &atomicwriter.Writer{Dir: vol}
	if err := w.Write(map[string]atomicwriter.Payload{"app.conf": {Data: []byte("colour=blue")}}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "entrypoint.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: [%q, "-config", %q]
  listen: ["127.0.0.1:0"]
  watch: [%q]
  watchDebounce: 200ms
  validate: ["sh", "-c", "! grep -q INVALID %s/app.conf"]
%s`, exampleBin, filepath.Join(vol, "app.conf"), vol, vol, extra))
	return startEP(t, "--config", cfg), w, vol
}

func conf(s string) map[string]atomicwriter.Payload {
	return map[string]atomicwriter.Payload{"app.conf": {Data: []byte(s)}}
}

// waitChange polls until the app's last config change is newer than
// since, and returns it.
func (e *ep) waitChange(app string, since time.Time) *status.Result {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		a := e.app(app)
		if c := a.LastChange; c != nil && c.At.After(since) && a.State == "running" && len(a.Others) == 0 {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no config change handled for %s: %+v", app, e.app(app))
	return nil
}

func served(t *testing.T, e *ep) (config string, gen int) {
	t.Helper()
	body := get(t, fresh(5*time.Second), e.addr("web"), "/")
	g, _ := strconv.Atoi(field(body, "generation"))
	c, _ := strconv.Unquote(field(body, "config"))
	return c, g
}

// One kubelet update is exactly one swap; an identical re-write (the
// kubelet's re-sync) is none; 20 updates inside the debounce are one.
func TestConfigMapUpdateSwapsOnce(t *testing.T) {
	e, w, _ := configApp(t, "")
	if c, g := served(t, e); c != "colour=blue" || g != 1 {
		t.Fatalf("serving %q from generation %d", c, g)
	}
	since := time.Now()
	if err := w.Write(conf("colour=green")); err != nil {
		t.Fatal(err)
	}
	if r := e.waitChange("web", since); !r.OK {
		t.Fatalf("change: %+v", r)
	}
	if c, g := served(t, e); c != "colour=green" || g != 2 {
		t.Fatalf("after one update: serving %q from generation %d, want colour=green from 2", c, g)
	}

	// Identical content, then a sentinel real change: the sentinel must
	// be the very next swap (generation 3), so the re-write made none.
	w.Write(conf("colour=green"))
	since = time.Now()
	w.Write(conf("colour=red"))
	e.waitChange("web", since)
	if c, g := served(t, e); c != "colour=red" || g != 3 {
		t.Fatalf("after identical re-write and one change: %q from generation %d, want colour=red from 3", c, g)
	}

	// A burst of 20 inside the debounce: one swap, to the last content.
	since = time.Now()
	for i := 0; i < 20; i++ {
		w.Write(conf(fmt.Sprintf("colour=burst-%d", i)))
	}
	e.waitChange("web", since)
	if c, g := served(t, e); c != "colour=burst-19" || g != 4 {
		t.Fatalf("after a burst of 20: %q from generation %d, want colour=burst-19 from 4", c, g)
	}
}

// A config that fails validate: no swap, the old generation keeps
// serving, the failure is in status (with the command's output) and in
// the metrics; a later good change swaps.
func TestInvalidConfigKeepsOldGeneration(t *testing.T) {
	e, w, _ := configApp(t, "")
	pid := e.app("web").Current.Pid
	since := time.Now()
	w.Write(conf("colour=INVALID"))
	r := e.waitChange("web", since)
	if r.OK || !strings.Contains(r.Reason, "validate") {
		t.Fatalf("invalid config was not rejected: %+v", r)
	}
	a := e.app("web")
	if a.Current.Pid != pid || a.Current.N != 1 {
		t.Fatalf("invalid config swapped: %+v", a.Current)
	}
	if c, _ := served(t, e); c != "colour=blue" {
		t.Fatalf("serving %q after an invalid change, want the old colour=blue", c)
	}
	out, _ := runCLI(e, "status")
	if !strings.Contains(out, "config FAILED: validate") {
		t.Fatalf("entrypoint status does not show the failure:\n%s", out)
	}
	since = time.Now()
	w.Write(conf("colour=fixed"))
	if r := e.waitChange("web", since); !r.OK {
		t.Fatalf("good change after a bad one: %+v", r)
	}
	if c, g := served(t, e); c != "colour=fixed" || g != 2 {
		t.Fatalf("serving %q from generation %d, want colour=fixed from 2", c, g)
	}
}

// Secret volumes: files with mode 0400; a content change swaps, and the
// app can still read its file.
func TestSecretStyleModes(t *testing.T) {
	e, w, _ := configApp(t, "")
	since := time.Now()
	if err := w.Write(map[string]atomicwriter.Payload{"app.conf": {Data: []byte("token=s3cret"), Mode: 0o400}}); err != nil {
		t.Fatal(err)
	}
	if r := e.waitChange("web", since); !r.OK {
		t.Fatalf("secret change: %+v", r)
	}
	if c, _ := served(t, e); c != "token=s3cret" {
		t.Fatalf("serving %q", c)
	}
}

// The watched directory is deleted and recreated (a volume remounted): the
// watch follows it, and the new content swaps.
func TestWatchedDirectoryRecreated(t *testing.T) {
	e, _, vol := configApp(t, "")
	if err := os.RemoveAll(vol); err != nil {
		t.Fatal(err)
	}
	// The deletion is a change too: the app's file is gone, so validate
	// (grep) fails and nothing is swapped.
	since := time.Now()
	w := &atomicwriter.Writer{Dir: vol}
	if err := w.Write(conf("colour=reborn")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, _ := served(t, e); c == "colour=reborn" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never served the recreated directory's config; last change %+v (since %s)", e.app("web").LastChange, since)
}

// onChange: signal:SIGHUP sends the app a signal instead of a new
// generation (nginx, prometheus, haproxy reload their own config).
func TestOnChangeSignal(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "config")
	w := &atomicwriter.Writer{Dir: vol}
	w.Write(conf("v1"))
	marker := filepath.Join(dir, "hups")
	script := fmt.Sprintf(`trap 'echo hup >> %s' HUP; trap 'exit 0' TERM; while :; do sleep 0.05; done`, marker)
	e := startEP(t, "--watch", vol, "--watch-debounce", "100ms", "--on-change", "signal:SIGHUP", "--", "sh", "-c", script)
	pid := e.app("app").Current.Pid
	since := time.Now()
	w.Write(conf("v2"))
	r := e.waitChange("app", since)
	if !r.OK || !strings.Contains(r.Reason, "SIGHUP") {
		t.Fatalf("change: %+v", r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(marker); strings.Count(string(b), "hup") == 1 {
			if a := e.app("app"); a.Current.Pid != pid {
				t.Fatalf("signal:SIGHUP started a new generation")
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the app never got SIGHUP")
}

func runCLI(e *ep, args ...string) (string, error) {
	out, err := execCommand(entrypointBin, append(args, "--control-socket", e.socket)...)
	return out, err
}
