package pid1

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Orphans re-parented to the init are reaped: after 5,000 double-forked
// orphans no zombie remains (the app itself checks, from inside the
// namespace, and exits 1 if any is left).
func TestReapsOrphansAsPID1(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--"}, app("orphans", "5000")...)...)
	if code := p.wait(budget(t)); code != 0 {
		t.Fatalf("exit code %d, want 0; app said: %s", code, p.out.String())
	}
	p.out.wait(t, "zombies=0", time.Second)
}

// Outside PID 1 the init registers as child subreaper and reaps the same.
func TestReapsOrphansAsSubreaper(t *testing.T) {
	p := start(t, startOpts{}, append([]string{"--"}, app("orphans", "500")...)...)
	if code := p.wait(budget(t)); code != 0 {
		t.Fatalf("exit code %d, want 0; app said: %s", code, p.out.String())
	}
	p.out.wait(t, "zombies=0", time.Second)
}

// The negative control: the same app under a PID 1 that waits only for
// its own child (never wait4(-1)) finds zombies, so the check above can
// fail.
func TestOrphanCheckSeesZombiesWithoutReaper(t *testing.T) {
	needPID1(t)
	argv := append([]string{selfBin}, app("bad-init")...)
	argv = append(argv, app("orphans", "50")...)
	out, errOut, _ := runCapture(context.Background(), "unshare", append([]string{"--pid", "--fork", "--mount-proc"}, argv[1:]...)...)
	if !strings.Contains(out, "zombies=") || strings.Contains(out, "zombies=0") {
		t.Fatalf("without a reaper the app should see zombies; it said %q %q", out, errOut)
	}
}

func quote(args []string) []string {
	var q []string
	for _, a := range args {
		q = append(q, strconv.Quote(a))
	}
	return q
}

// The app's exit status is never lost while orphans are being reaped.
func TestExitStatusNotLostWhileReaping(t *testing.T) {
	needPID1(t)
	for i := 0; i < 50; i++ {
		code := 40 + i%10
		p := start(t, startOpts{pid1: true}, append([]string{"--"}, app("orphans", "20", strconv.Itoa(code))...)...)
		if got := p.wait(30 * time.Second); got != code {
			t.Fatalf("run %d: exit code %d, want %d\nstderr:\n%s", i, got, code, p.errOut.String())
		}
	}
}

// Every catchable signal without a meaning of its own reaches the app.
func TestForwardsEverySignal(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--readiness", "notify", "--"}, app("print-signals")...)...)
	p.out.wait(t, "ready", 10*time.Second)
	sigs := []syscall.Signal{syscall.SIGABRT, syscall.SIGALRM, syscall.SIGSTKFLT, syscall.SIGCONT, syscall.SIGXCPU,
		syscall.SIGXFSZ, syscall.SIGVTALRM, syscall.SIGWINCH, syscall.SIGIO, syscall.SIGPWR,
		syscall.Signal(35), syscall.Signal(40), syscall.Signal(64)}
	for _, s := range sigs {
		p.signal(s)
		p.out.wait(t, "got "+unixName(s), 5*time.Second)
	}
	p.signal(syscall.SIGTERM)
	p.out.wait(t, "got SIGTERM", 5*time.Second)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// The default target is the process group, so an app behind a shell that
// does not exec still gets SIGTERM; with --signal-target child only the
// shell does (shown with SIGWINCH, which sh ignores).
func TestSignalTargetGroupAndChild(t *testing.T) {
	wrapper := func(extra ...string) []string {
		argv := append(extra, "--", "sh", "-c", strings.Join(quote(app("print-signals")), " ")+"; echo wrapper-done")
		return argv
	}
	p := start(t, startOpts{pid1: true}, wrapper()...)
	p.out.wait(t, "ready", 10*time.Second)
	p.signal(syscall.SIGWINCH)
	p.out.wait(t, "got SIGWINCH", 5*time.Second)
	p.signal(syscall.SIGTERM)
	p.out.wait(t, "got SIGTERM", 5*time.Second)
	p.wait(10 * time.Second)

	c := start(t, startOpts{pid1: true}, wrapper("--signal-target", "child")...)
	c.out.wait(t, "ready", 10*time.Second)
	c.signal(syscall.SIGWINCH)
	// The child target is sh, which ignores SIGWINCH; a sentinel signal
	// sent to the group proves the app would have printed it by now.
	c.signal(syscall.SIGTERM)
	c.wait(10 * time.Second)
	if n := c.out.count("got SIGWINCH"); n != 0 {
		t.Fatalf("with --signal-target child the grandchild got SIGWINCH:\n%s", c.out.String())
	}
}

// --rewrite changes what the app receives.
func TestRewrite(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--rewrite", "TERM:QUIT", "--"}, app("print-signals")...)...)
	p.out.wait(t, "ready", 10*time.Second)
	p.signal(syscall.SIGTERM)
	p.out.wait(t, "got SIGQUIT", 5*time.Second)
	p.wait(10 * time.Second)
}

// A signal sent right after start, before the app exists or can take it
// (the app installs its handlers only after a pause here), is queued by
// the init and delivered once the app is ready: without the queue the
// app would drop it, since a Go program ignores SIGWINCH it did not ask
// for. The earliest moment is the init's first log line; before that the
// only window is the Go runtime's own start-up, measured in the README.
//
// The init catches the common signals in its first init() and the rarer
// ones (realtime, PWR, XCPU, ...) in the background, finished before the
// first child starts: those sent at "app started" must arrive as well.
func TestEarlySignalNotLost(t *testing.T) {
	p := start(t, startOpts{pid1: true, env: []string{"EPTEST_DELAY=300ms"}}, append([]string{"--readiness", "notify", "--"}, app("print-signals")...)...)
	p.errOut.wait(t, "app started", 10*time.Second)
	early := []syscall.Signal{syscall.SIGWINCH, syscall.Signal(40), syscall.SIGPWR, syscall.SIGXCPU}
	for _, s := range early {
		p.signal(s)
	}
	p.out.wait(t, "ready", 10*time.Second)
	for _, s := range early {
		p.out.wait(t, "got "+unixName(s), 5*time.Second)
	}
	p.signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
}

// Shutdown: readiness would turn false at once (tested with the health
// endpoints), the pre-stop delay passes while the app still runs, then
// the app gets the signal.
func TestShutdownPreStopDelay(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--pre-stop-delay", "700ms", "--"}, app("print-signals")...)...)
	p.out.wait(t, "ready", 10*time.Second)
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	p.out.wait(t, "got SIGTERM", 10*time.Second)
	if d := time.Since(sent); d < 700*time.Millisecond {
		t.Fatalf("app got SIGTERM %s after the init did: the pre-stop delay was skipped", d)
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// An app that ignores SIGTERM is SIGKILLed after the drain timeout, and
// the init reports 128+9.
func TestDrainTimeoutKills(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--drain-timeout", "300ms", "--"}, app("ignore-term")...)...)
	p.out.wait(t, "ready", 10*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 137 {
		t.Fatalf("exit code %d, want 137 (SIGKILL after the drain timeout)", code)
	}
}

// A daemon left behind by the app does not keep the container alive: it
// gets SIGTERM, a short grace, SIGKILL; the init exits with the app's code.
func TestStrayProcessesEnded(t *testing.T) {
	// As a subreaper the daemon is visible from here, so we can check it
	// is gone afterwards.
	p := start(t, startOpts{}, append([]string{"--"}, app("stray")...)...)
	line := p.out.wait(t, "stray=", 10*time.Second)
	pid, _ := strconv.Atoi(strings.TrimPrefix(line, "stray="))
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("stray daemon %d outlived the init", pid)
	}
	// As PID 1 the init must exit too, not wait for the daemon.
	q := start(t, startOpts{pid1: true}, append([]string{"--"}, app("stray")...)...)
	if code := q.wait(20 * time.Second); code != 0 {
		t.Fatalf("PID 1: exit code %d, want 0", code)
	}
}

// Exit codes: the app's; 128+N for a signal; remapped by
// --success-exit-codes; never 0 when the app failed.
func TestExitCodes(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--"}, app("exit", "3")...)...)
	if code := p.wait(10 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	p = start(t, startOpts{pid1: true}, "--", "sh", "-c", "kill -9 $$")
	if code := p.wait(10 * time.Second); code != 137 {
		t.Fatalf("exit code %d, want 137", code)
	}
	p = start(t, startOpts{pid1: true}, "--success-exit-codes", "143", "--", "sh", "-c", "kill -TERM $$")
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0 (143 remapped)", code)
	}
	p = start(t, startOpts{pid1: true}, "--", "/nonexistent/app")
	if code := p.wait(10 * time.Second); code != 127 {
		t.Fatalf("exit code %d, want 127 for a missing command", code)
	}
	p.errOut.wait(t, "/nonexistent/app", time.Second)
}

// Restart policy: the app is restarted in place with backoff until it
// stays up; restarts are counted.
func TestRestartPolicy(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--restart", "restart", "--restart-backoff", "10ms", "--restart-max-backoff", "40ms", "--readiness", "notify", "--"}, app("crash-until", "4")...)...)
	p.out.wait(t, "ready pid=", 20*time.Second)
	for g := 1; g <= 4; g++ {
		p.out.wait(t, fmt.Sprintf("generation %d", g), time.Second)
	}
	if n := p.errOut.count("restarting app"); n != 3 {
		t.Fatalf("%d restarts logged, want 3:\n%s", n, p.errOut.String())
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// Default policy exit: the container ends with the app's code.
func TestRestartPolicyExit(t *testing.T) {
	p := start(t, startOpts{pid1: true}, append([]string{"--"}, app("crash-until", "2")...)...)
	if code := p.wait(10 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if n := p.out.count("generation "); n != 1 {
		t.Fatalf("app ran %d times, want 1 with policy exit", n)
	}
}

// Logs are one JSON object per line with the events the issue names.
func TestJSONLogs(t *testing.T) {
	p := start(t, startOpts{pid1: true, env: []string{"ENTRYPOINT_LOG_FORMAT=json"}}, append([]string{"--"}, app("exit", "0")...)...)
	p.wait(10 * time.Second)
	var msgs []string
	for _, l := range strings.Split(p.errOut.String(), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		msgs = append(msgs, fmt.Sprint(m["msg"]))
	}
	for _, want := range []string{"app started", "app exited", "all done"} {
		found := false
		for _, m := range msgs {
			found = found || m == want
		}
		if !found {
			t.Fatalf("no %q event in %v", want, msgs)
		}
	}
}

// kill(1) personality through a symlink named kill.
func TestKillPersonality(t *testing.T) {
	dir := t.TempDir()
	kill := filepath.Join(dir, "kill")
	if err := os.Symlink(entrypointBin, kill); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, _, code := runCapture(ctx, kill, "-l")
	if code != 0 || !strings.HasPrefix(out, "HUP INT QUIT") || !strings.Contains(out, "USR1") {
		t.Fatalf("kill -l: %d %q", code, out)
	}
	if out, _, _ := runCapture(ctx, kill, "-l", "15"); strings.TrimSpace(out) != "TERM" {
		t.Fatalf("kill -l 15 = %q", out)
	}
	if out, _, _ := runCapture(ctx, kill, "-l", "143"); strings.TrimSpace(out) != "TERM" {
		t.Fatalf("kill -l 143 = %q", out)
	}
	_, errOut, code := runCapture(ctx, kill, "-9", "999999999")
	if code != 1 || !strings.Contains(errOut, "(999999999): No such process") {
		t.Fatalf("kill -9 missing pid: %d %q", code, errOut)
	}
	_, errOut, code = runCapture(ctx, kill, "-s", "NOPE", "1")
	if code != 1 || !strings.Contains(errOut, "unknown signal name") {
		t.Fatalf("kill -s NOPE: %d %q", code, errOut)
	}
	_, errOut, code = runCapture(ctx, kill, "abc")
	if code != 1 || !strings.Contains(errOut, "failed to parse argument: 'abc'") {
		t.Fatalf("kill abc: %d %q", code, errOut)
	}
	// Real signals to a real process: -USR1, -s TERM, -9, and the
	// "entrypoint kill" spelling.
	cmd := exec.Command(selfBin)
	cmd.Env = append(os.Environ(), roleEnv+"=print-signals")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out2 := newLines(stdout)
	out2.wait(t, "ready", 10*time.Second)
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{kill, "-USR1", pid}, "got SIGUSR1"},
		{[]string{kill, "-s", "WINCH", pid}, "got SIGWINCH"},
		{[]string{entrypointBin, "kill", "-SIGALRM", pid}, "got SIGALRM"},
		{[]string{kill, "-s", "TERM", pid}, "got SIGTERM"},
	} {
		if _, e, c := runCapture(ctx, tc.argv[0], tc.argv[1:]...); c != 0 {
			t.Fatalf("%v: exit %d: %s", tc.argv, c, e)
		}
		out2.wait(t, tc.want, 5*time.Second)
	}
	cmd.Wait()
	sleeper := exec.Command("sleep", "100")
	sleeper.Start()
	if _, e, c := runCapture(ctx, kill, "-9", strconv.Itoa(sleeper.Process.Pid)); c != 0 {
		t.Fatalf("kill -9: %d %s", c, e)
	}
	err := sleeper.Wait()
	if ws := sleeper.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("sleep was not SIGKILLed: %v", err)
	}
}

// Config errors are reported all at once with the field named.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "config.yaml")
	os.WriteFile(f, []byte("apps:\n- name: web\n  command: [\"/bin/true\"]\n  drainTimeout: forever\n  colour: red\n"), 0o644)
	_, errOut, code := runCapture(context.Background(), entrypointBin, "validate", "--config", f)
	if code == 0 || !strings.Contains(errOut, "colour") || !strings.Contains(errOut, f) {
		t.Fatalf("validate bad config: exit %d: %s", code, errOut)
	}
	os.WriteFile(f, []byte("apps:\n- name: web\n  command: [\"/bin/true\"]\n  drainTimeout: 5s\n"), 0o644)
	out, errOut, code := runCapture(context.Background(), entrypointBin, "validate", "--config", f)
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "5s") {
		t.Fatalf("validate good config: exit %d: %s %s", code, out, errOut)
	}
	p := start(t, startOpts{}, "--config", f, "--drain-timeout", "nonsense")
	if code := p.wait(10 * time.Second); code == 0 {
		t.Fatal("a bad flag must not start")
	}
	p.errOut.wait(t, "drain", time.Second)
}

// `entrypoint probe ready` (the image's HEALTHCHECK) finds the health
// listener from PID 1's own flags, not only from the env.
func TestProbeFindsHealthListenerOfPID1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	script := fmt.Sprintf(`for i in $(seq 100); do %s probe ready >/dev/null 2>&1 && echo probe=ok && exit 0; sleep 0.05; done; exit 1`, entrypointBin)
	p := start(t, startOpts{pid1: true}, "--health-listen", addr, "--", "sh", "-c", script)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("probe from inside the container never passed (exit %d)", code)
	}
	p.out.wait(t, "probe=ok", time.Second)
}

// `entrypoint install DIR` puts the binary and its kill(1) link into DIR,
// for the chart's init container (the image has no cp).
func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "opt")
	if out, errOut, code := runCapture(context.Background(), entrypointBin, "install", dir); code != 0 {
		t.Fatalf("install: %d %s %s", code, out, errOut)
	}
	out, _, code := runCapture(context.Background(), filepath.Join(dir, "kill"), "-l", "10")
	if code != 0 || strings.TrimSpace(out) != "USR1" {
		t.Fatalf("installed kill -l 10: %d %q", code, out)
	}
	out, _, code = runCapture(context.Background(), filepath.Join(dir, "entrypoint"), "version")
	if code != 0 || !strings.HasPrefix(out, "entrypoint ") {
		t.Fatalf("installed entrypoint version: %d %q", code, out)
	}
}

// Workers in the app's process group get the drain time too: the init
// waits for the whole group, not only for the process it started, before
// SIGKILL (here the started process is a shell that dies at once).
func TestWorkersGetTheDrainTime(t *testing.T) {
	script := strings.Join(quote(app("slow-drain")), " ") + "; echo shell-done"
	p := start(t, startOpts{pid1: true}, "--drain-timeout", "10s", "--", "sh", "-c", script)
	p.out.wait(t, "ready", 10*time.Second)
	p.signal(syscall.SIGTERM)
	p.wait(20 * time.Second)
	if p.out.count("drained") != 1 {
		t.Fatalf("the worker was killed before it finished draining:\n%s", p.out.String())
	}
}

// Every generation with sockets, and the takeover's probe, start through
// the native exec shim; where the kernel will not execute a memfd
// (vm.memfd_noexec=2, set in the test's own PID namespace), the init says
// so once and uses the Go shim. Either way each generation, a hot swap's
// included, gets its own pid as LISTEN_PID.
func TestExecShimNativeOrFallback(t *testing.T) {
	for _, c := range []struct {
		name      string
		noexec    bool
		fallbacks int
	}{
		{"native", false, 0},
		{"memfd_noexec=2", true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "app.sock")
			p := start(t, startOpts{pid1: true, memfdNoexec: c.noexec},
				append([]string{"--listen", "unix:" + sock, "--readiness", "notify", "--log-level", "debug", "--"}, app("listen-pid")...)...)
			for gen := 1; gen <= 2; gen++ {
				line := p.out.wait(t, fmt.Sprintf("generation=%d ", gen), 10*time.Second)
				var g, listenPID, pid int
				if n, _ := fmt.Sscanf(line, "generation=%d LISTEN_PID=%d pid=%d", &g, &listenPID, &pid); n != 3 || listenPID != pid {
					t.Errorf("generation %d printed %q: LISTEN_PID must be its own pid", gen, line)
				}
				if gen == 1 {
					p.errOut.wait(t, "app ready", 10*time.Second)
					p.signal(syscall.SIGUSR1)
				}
			}
			p.errOut.wait(t, "reload done", 10*time.Second)
			if n := p.errOut.count("native exec shim unusable"); n != c.fallbacks {
				t.Errorf("%d lines say the native exec shim is unusable, want %d:\n%s", n, c.fallbacks, p.errOut.String())
			}
			want := 2
			if c.noexec {
				want = 0
			}
			if n := p.errOut.count("started through the native exec shim"); n != want {
				t.Errorf("%d generations started through the native exec shim, want %d:\n%s", n, want, p.errOut.String())
			}
			p.signal(syscall.SIGTERM)
			if code := p.wait(10 * time.Second); code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
		})
	}
}
