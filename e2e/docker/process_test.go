//go:build e2e_docker

package dockere2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procField reads one "Name:\tvalue" line of /proc/PID/status on the host.
func procField(t *testing.T, pid, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("read status of host pid %s: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%s/status", field, pid)
	return ""
}

func cmdline(t *testing.T, pid string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		t.Fatalf("read cmdline of host pid %s: %v", pid, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// nsPID is the pid inside the innermost pid namespace (last NSpid field).
func nsPID(t *testing.T, hostPID string) string {
	f := strings.Fields(procField(t, hostPID, "NSpid"))
	return f[len(f)-1]
}

// TestPID1IsEntrypoint looks at the container from the host: its PID 1 is
// /entrypoint, running as 65532 by default, and the app is its child with
// the pid the app itself reports.
func TestPID1IsEntrypoint(t *testing.T) {
	c, app, _ := runDemo(t, imageDemo)
	init := c.hostPID()
	if argv := cmdline(t, init); argv[0] != "/entrypoint" {
		t.Errorf("PID 1 runs %q, want /entrypoint", argv)
	}
	if p := nsPID(t, init); p != "1" {
		t.Errorf("entrypoint is pid %s in its namespace, want 1", p)
	}
	if uid := strings.Fields(procField(t, init, "Uid"))[0]; uid != "65532" {
		t.Errorf("PID 1 runs as uid %s, want the image's default 65532", uid)
	}
	// children is per thread (the one that forked), and Go forks from any.
	tasks, err := filepath.Glob("/proc/" + init + "/task/*/children")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of host pid %s: %v", init, err)
	}
	var kids []byte
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		kids = append(kids, b...)
	}
	pid, _, err := whoServes(app)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range strings.Fields(string(kids)) {
		if nsPID(t, k) == pid && cmdline(t, k)[0] == "/app" {
			found = true
		}
	}
	if !found {
		t.Errorf("the app (pid %s in the container) is not a child of PID 1; children: %q", pid, kids)
	}
}

// orphanScript makes 10 orphans that outlive their parent by a little, then
// becomes a long sleep: the orphans re-parent to PID 1, which must reap them.
const orphanScript = `for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 2 &); done; echo orphans-made; exec sleep 1000`

// psCount counts the processes in the container whose `ps -o stat,ppid,args`
// line satisfies f.
func psCount(t *testing.T, c *container, f func(stat, ppid, args string) bool) (int, string) {
	t.Helper()
	out, err := c.exec("ps", "-o", "stat,ppid,args")
	if err != nil {
		t.Fatalf("ps in the container: %v\n%s", err, out)
	}
	n := 0
	for _, l := range strings.Split(out, "\n")[1:] {
		fs := strings.Fields(l)
		if len(fs) >= 3 && f(fs[0], fs[1], strings.Join(fs[2:], " ")) {
			n++
		}
	}
	return n, out
}

func zombies(t *testing.T, c *container) (int, string) {
	return psCount(t, c, func(stat, _, _ string) bool { return strings.HasPrefix(stat, "Z") })
}

func TestZombiesAreReaped(t *testing.T) {
	c := start(t, "--entrypoint", "/entrypoint", imageShell, "--", "sh", "-c", orphanScript)
	poll(t, 30*time.Second, "the orphans to be re-parented to PID 1", func() bool {
		n, _ := psCount(t, c, func(_, ppid, args string) bool { return ppid == "1" && args == "sleep 2" })
		return n == 10
	})
	// They exit after ~2 s; then nothing may stay a zombie.
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last ps in the container:\n%s", last)
		}
	})
	poll(t, 30*time.Second, "the orphans to exit and be reaped", func() bool {
		n, out := psCount(t, c, func(stat, _, args string) bool {
			return strings.HasPrefix(stat, "Z") || args == "sleep 2"
		})
		last = out
		return n == 0
	})
}

// TestZombiesNegativeControl shows the zombie check can fail: the same
// script with a PID 1 that never reaps (sleep, after sh exec's it) leaves
// the 10 orphans as zombies.
func TestZombiesNegativeControl(t *testing.T) {
	c := start(t, "--entrypoint", "/bin/sh", imageShell, "-c", orphanScript)
	poll(t, 30*time.Second, "10 zombies under a PID 1 that does not reap", func() bool {
		z, _ := zombies(t, c)
		return z == 10
	})
}

// TestDockerStopDrains: docker stop sends SIGTERM; entrypoint drains the app
// and exits with its code, without docker having to SIGKILL (exit 137).
func TestDockerStopDrains(t *testing.T) {
	t.Run("demo app exits 0", func(t *testing.T) {
		c, app, _ := runDemo(t, "-e", "ENTRYPOINT_DRAIN_TIMEOUT=30s", imageDemo)
		l := startLoad(t, app, 2)
		l.waitServed(t, 20)
		l.halt()
		t0 := time.Now()
		mustDocker(t, "stop", "-t", "60", c.id)
		t.Logf("docker stop took %v (drain timeout 30s, stop timeout 60s)", time.Since(t0).Round(time.Millisecond))
		if code := c.inspect("{{.State.ExitCode}}"); code != "0" {
			t.Errorf("exit code %s, want the app's 0", code)
		}
	})
	t.Run("app's own exit code is kept", func(t *testing.T) {
		c := start(t, "--entrypoint", "/entrypoint", imageShell, "--drain-timeout", "30s", "--",
			"sh", "-c", `trap "exit 7" TERM; echo trap-set; while :; do sleep 0.1; done`)
		poll(t, 30*time.Second, "the app's trap", func() bool {
			out, _ := docker(t, "logs", c.id)
			return strings.Contains(out, "trap-set")
		})
		t0 := time.Now()
		mustDocker(t, "stop", "-t", "60", c.id)
		t.Logf("docker stop took %v", time.Since(t0).Round(time.Millisecond))
		if code := c.inspect("{{.State.ExitCode}}"); code != "7" {
			t.Errorf("exit code %s, want the app's 7", code)
		}
	})
}

// TestReadOnlyNonRootNoCaps: the documented hardened run works, and a
// swap works inside it (the exec shim, sd_notify and the control socket
// need no writable file system and no capability).
func TestReadOnlyNonRootNoCaps(t *testing.T) {
	c, app, _ := runDemo(t, "--read-only", "--user", "65532", "--cap-drop", "ALL",
		"--security-opt", "no-new-privileges", imageDemo)
	if capEff := procField(t, c.hostPID(), "CapEff"); capEff != "0000000000000000" {
		t.Errorf("PID 1 has capabilities %s, want none", capEff)
	}
	swapUnderLoad(t, app, func(t *testing.T) {
		if out, err := c.exec("entrypoint", "reload"); err != nil {
			t.Fatalf("entrypoint reload: %v\n%s", err, out)
		}
	})
	// Docker's default seccomp and AppArmor profiles, no capabilities and
	// a read-only root must still let the init execute its native exec
	// shim from a memfd; the Go shim would serve, slower, and say why.
	if logs, _ := docker(t, "logs", c.id); strings.Contains(logs, "native exec shim unusable") {
		t.Errorf("the native exec shim fell back to the Go shim:\n%s", logs)
	}
	mustDocker(t, "stop", "-t", "60", c.id)
	if code := c.inspect("{{.State.ExitCode}}"); code != "0" {
		t.Errorf("exit code %s after docker stop, want 0", code)
	}
}

// TestImageSize reports the size of both images; the target for the
// default image is under 15 MB.
func TestImageSize(t *testing.T) {
	const limit = 15 << 20
	for _, img := range []string{imageInit, imageDemo} {
		s := mustDocker(t, "image", "inspect", "-f", "{{.Size}}", img)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes (%.1f MB)", img, n, float64(n)/1e6)
		if img == imageInit && n > limit {
			t.Errorf("%s is %d bytes, over the %d-byte target", img, n, limit)
		}
	}
}
