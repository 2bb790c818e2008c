package swap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/control"
	"github.com/entrypoint/entrypoint/internal/atomicwriter"
	"github.com/entrypoint/entrypoint/status"
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

// Issue 11 item 6: a config watch that cannot start (inotify instances
// exhausted, EMFILE from inotify_init1) is loud, and comes back. The init
// runs in a user namespace of its own whose inotify instance limit
// (user.max_inotify_instances, per user namespace) is 0; readiness stays
// true, the dead watch shows in status, the CLI, /readyz?verbose and the
// metrics; once the limit is raised the watch is retried, and a change
// made while it was down is applied.
func TestDeadWatchIsLoudAndRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --user and nsenter; CI runs as root")
	}
	dir := t.TempDir()
	vol := filepath.Join(dir, "config")
	w := &atomicwriter.Writer{Dir: vol}
	if err := w.Write(conf("colour=blue")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "entrypoint.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: [%q, "-config", %q]
  listen: ["127.0.0.1:0"]
  watch: [%q]
  watchDebounce: 100ms
`, exampleBin, filepath.Join(vol, "app.conf"), vol))
	health := freeAddr(t)
	wrapper := []string{"unshare", "--user", "--map-root-user", "sh", "-c",
		`echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"`, "sh"}
	e := startEPWrapped(t, wrapper, "--config", cfg, "--health-listen", health)
	e.waitReady()

	var a status.AppStatus
	deadline := time.Now().Add(10 * time.Second)
	for a = e.app("web"); (a.Watch == nil || a.Watch.OK) && time.Now().Before(deadline); a = e.app("web") {
		time.Sleep(10 * time.Millisecond)
	}
	if a.Watch == nil || a.Watch.OK || !strings.Contains(a.Watch.Error, "max_user_instances") {
		t.Fatalf("status does not show the dead watch: %+v", a.Watch)
	}
	if !a.Ready {
		t.Fatalf("a dead watch made the app unready: %+v", a)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	if code := probe(c, "http://"+health+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d with a dead watch, want 200 (the app serves)", code)
	}
	resp, err := c.Get("http://" + health + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "[!]watch-web warning: config watch not running") {
		t.Errorf("/readyz?verbose does not show the dead watch:\n%s", body)
	}
	if code := probe(c, "http://"+health+"/readyz/watch-web"); code != 500 {
		t.Errorf("/readyz/watch-web = %d, want 500", code)
	}
	m := scrape(t, c, "http://"+health+"/metrics")
	checkMetric(t, m, "entrypoint_watch_up", map[string]string{"app": "web"}, 0)
	if f := m["entrypoint_watch_failures_total"]; f == nil || f.Metric[0].Counter.GetValue() < 1 {
		t.Errorf("entrypoint_watch_failures_total not counted: %v", f)
	}
	if out, _ := runCLI(e, "status"); !strings.Contains(out, "web: watch FAILED") {
		t.Errorf("entrypoint status does not show the dead watch:\n%s", out)
	}
	if !strings.Contains(e.stderr.String(), "config watch is not running") {
		t.Errorf("no log line for the dead watch")
	}

	// A change while nothing watches, then inotify becomes available.
	if err := w.Write(conf("colour=green")); err != nil {
		t.Fatal(err)
	}
	raise := exec.Command("nsenter", "--user", "--target", strconv.Itoa(e.cmd.Process.Pid), "sh", "-c", "echo 128 > /proc/sys/user/max_inotify_instances")
	if out, err := raise.CombinedOutput(); err != nil {
		t.Fatalf("raise the limit: %v %s", err, out)
	}
	e.waitGeneration("web", 2)
	a = e.app("web")
	if a.Watch == nil || !a.Watch.OK {
		t.Fatalf("watch did not recover: %+v", a.Watch)
	}
	eventually(t, fresh(5*time.Second), e.addr("web"), "/", func(b string) bool { return field(b, "config") == `"colour=green"` })
	checkMetric(t, scrape(t, c, "http://"+health+"/metrics"), "entrypoint_watch_up", map[string]string{"app": "web"}, 1)
}

// Issue 11 item 3: daemons a generation setsid's away from its process
// group survive its group's SIGKILL. Once it drained after a swap they are
// ended (the one that ignores SIGTERM is SIGKILLed), logged and counted;
// the new generation's own daemons are left alone. One daemon stays the
// leader's child until the leader exits; the other double-forks and is
// re-parented to the init at once.
func TestSwapEndsWhatTheOldGenerationLeftBehind(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	app := filepath.Join(dir, "app.sh")
	writeFile(t, app, fmt.Sprintf(`#!/bin/sh
setsid sh -c 'trap "" TERM; echo $$ >> %[1]s; exec sleep 1000' &
( setsid sh -c 'echo $$ >> %[1]s; exec sleep 1000' & )
exec %[2]s
`, pids, exampleBin))
	if err := os.Chmod(app, 0o755); err != nil {
		t.Fatal(err)
	}
	health := freeAddr(t)
	e := startEP(t, "--listen", "127.0.0.1:0", "--health-listen", health, "--", app)
	first := waitPids(t, pids, 2)
	e.reload("app")
	second := waitPids(t, pids, 4)[2:]
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range first {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Fatalf("daemon %d of the drained generation 1 still runs", pid)
		}
	}
	for _, pid := range second {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("daemon %d of the serving generation 2 was ended: %v", pid, err)
		}
	}
	logs := e.stderr.String()
	if !strings.Contains(logs, "ending processes a drained generation left behind") || !strings.Contains(logs, "leftover processes ignored SIGTERM, killed") {
		t.Errorf("the leftovers were not logged:\n%s", logs)
	}
	checkMetric(t, scrape(t, &http.Client{Timeout: 5 * time.Second}, "http://"+health+"/metrics"),
		"entrypoint_leftover_processes_ended_total", map[string]string{"app": "app"}, 2)
}

// waitPids waits until path lists at least n pids and returns them.
func waitPids(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			pids = append(pids, atoi(f))
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists %d pids, want %d", path, len(pids), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Issue 11 item 7: a hanging validate command is shown in status while it
// runs and is killed after its own validateTimeout (not the readiness
// timeout); the old generation keeps serving.
func TestHangingValidateIsShownAndBounded(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "config")
	w := &atomicwriter.Writer{Dir: vol}
	if err := w.Write(conf("colour=blue")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "entrypoint.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: [%q, "-config", %q]
  listen: ["127.0.0.1:0"]
  watch: [%q]
  watchDebounce: 100ms
  validate: ["sh", "-c", "if grep -q HANG %s/app.conf; then exec sleep 1000; fi"]
  validateTimeout: 2s
`, exampleBin, filepath.Join(vol, "app.conf"), vol, vol))
	e := startEP(t, "--config", cfg)
	since := time.Now()
	if err := w.Write(conf("colour=HANG")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.app("web").Validating == nil {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the running validation: %+v", e.app("web"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out, _ := runCLI(e, "status"); !strings.Contains(out, "web: validating a config change") {
		t.Errorf("entrypoint status does not show the running validation:\n%s", out)
	}
	r := e.waitChange("web", since)
	if r.OK || !strings.Contains(r.Reason, "did not finish within 2s (validateTimeout)") {
		t.Fatalf("hanging validate: %+v", r)
	}
	a := e.app("web")
	if a.Validating != nil || a.Current.N != 1 {
		t.Fatalf("after the timeout: %+v", a)
	}
}

// Issue 11 item 15: never 0 while any app failed. The worker failed and
// waits in its restart backoff when web ends the container with 0: the
// init exits with the worker's 3.
func TestExitCodeCountsAnAppInBackoff(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: ["sh", "-c", "while [ ! -e %s ]; do sleep 0.02; done"]
- name: worker
  command: ["sh", "-c", "exit 3"]
  restart: {policy: restart, backoff: 1m, maxBackoff: 1m}
`, done))
	e := startEPNoWait(t, "--config", cfg)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := control.Call(ctx, e.socket, "status", "")
		cancel()
		if err == nil && resp.Status != nil && len(resp.Status.Apps) == 2 {
			if a := resp.Status.Apps[1]; a.State == status.StateBackoff && a.Restarts > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker never waited in backoff: %+v", e.app("worker"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeFile(t, done, "")
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		t.Fatal("entrypoint did not end after web exited")
	}
	if e.code != 3 {
		t.Fatalf("exit code %d, want the failed worker's 3:\n%s", e.code, e.stderr.String())
	}
}

// Issue 11 item 14: a binary that cannot be executed (here: not a format
// the kernel runs) fails the swap with the real cause, in the result, in
// status and in the CLI, not only "exit code 126"; the old generation
// keeps serving.
func TestSwapToUnexecutableBinarySaysWhy(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	b, err := os.ReadFile(exampleBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(app, b, 0o755); err != nil {
		t.Fatal(err)
	}
	e := startEP(t, "--listen", "127.0.0.1:0", "--", app)
	if err := os.WriteFile(app+".new", []byte("\x00\x01 not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(app+".new", app); err != nil {
		t.Fatal(err)
	}
	r := e.reload("app")
	if r.OK || !strings.Contains(r.Reason, "exec format error") {
		t.Fatalf("reload to an unexecutable binary: %+v, want a failure saying exec format error", r)
	}
	if a := e.app("app"); a.Current == nil || a.Current.N != 1 || !a.Ready {
		t.Fatalf("generation 1 does not keep serving: %+v", a)
	}
	if out, _ := runCLI(e, "status"); !strings.Contains(out, "exec format error") {
		t.Errorf("entrypoint status does not say why:\n%s", out)
	}
}

// Issue 11 item 12, through the binary: a misspelt variable is named,
// with the right spelling, by the init and by entrypoint validate.
func TestMisspeltEnvIsWarned(t *testing.T) {
	cmd := exec.Command(entrypointBin, "validate", "--", "/bin/true")
	cmd.Env = append(os.Environ(), "ENTRYPOINT_DRAIN_TIMOUT=5s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ENTRYPOINT_DRAIN_TIMOUT is not a setting of entrypoint and is ignored; did you mean ENTRYPOINT_DRAIN_TIMEOUT?") {
		t.Errorf("validate does not warn:\n%s", out)
	}
	t.Setenv("ENTRYPOINT_DRAIN_TIMOUT", "5s")
	e := startEP(t, "--", "sleep", "100")
	if !strings.Contains(e.stderr.String(), "did you mean ENTRYPOINT_DRAIN_TIMEOUT?") {
		t.Errorf("the init does not warn:\n%s", e.stderr.String())
	}
}
