package swap

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The seed framework's /sleep test: a 3 s request started before a hot
// swap completes with 200 from the old generation, while new requests
// already reach the new one.
func TestSwapLongRequestSurvives(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin)
	addr := e.addr("app")
	c := fresh(20 * time.Second)
	oldPid := strings.TrimSpace(get(t, c, addr, "/pid"))

	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/sleep?d=3s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The headers are flushed first: the request is in the old handler.
	e.signal(syscall.SIGUSR1)
	e.waitGeneration("app", 2)
	newPid := eventually(t, c, addr, "/pid", func(b string) bool { return strings.TrimSpace(b) != oldPid })
	if strings.TrimSpace(newPid) == oldPid {
		t.Fatalf("new requests still reach the old generation (pid %s)", oldPid)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("long request: %d %v", resp.StatusCode, err)
	}
	if got := strings.TrimSpace(string(body)); got != oldPid {
		t.Fatalf("long request answered by %q, want the old generation %s", got, oldPid)
	}
}

// The handoff reaches the app as the systemd protocol plus
// ENTRYPOINT_GENERATION, and the app answers with them.
func TestGenerationIsHandedToTheApp(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin)
	c := fresh(5 * time.Second)
	body := get(t, c, e.addr("app"), "/")
	if field(body, "generation") != "1" || field(body, "pid") != strconv.Itoa(e.app("app").Current.Pid) {
		t.Fatalf("answer %q does not match status %+v", body, e.app("app").Current)
	}
}

// Rollback: a new generation that exits, or misses its gate, is killed and
// the old one keeps serving; the CLI says why and exits 1.
func TestSwapRollback(t *testing.T) {
	dir := t.TempDir()
	script := fmt.Sprintf(`if [ -e %[1]s/fail ]; then exec %[2]s -fail-start; fi
if [ -e %[1]s/hang ]; then exec %[2]s -never-ready; fi
exec %[2]s`, dir, exampleBin)
	// The timeout is what the hanging release waits out; a good one must
	// pass its gate within it even on a loaded machine.
	e := startEP(t, "--listen", "127.0.0.1:0", "--readiness-timeout", "5s", "--", "sh", "-c", script)
	addr := e.addr("app")
	c := fresh(5 * time.Second)
	oldPid := strings.TrimSpace(get(t, c, addr, "/pid"))

	for _, mode := range []string{"fail", "hang"} {
		writeFile(t, filepath.Join(dir, mode), "")
		out, err := exec.Command(entrypointBin, "reload", "--control-socket", e.socket).CombinedOutput()
		if err == nil {
			t.Fatalf("%s: reload succeeded: %s", mode, out)
		}
		if !strings.Contains(string(out), "FAILED") || !strings.Contains(string(out), "keeps serving") {
			t.Fatalf("%s: reload output does not say why: %s", mode, out)
		}
		for i := 0; i < 20; i++ {
			if got := strings.TrimSpace(get(t, c, addr, "/pid")); got != oldPid {
				t.Fatalf("%s: request answered by %s, want the old generation %s", mode, got, oldPid)
			}
		}
		a := e.app("app")
		if a.LastAction == nil || a.LastAction.OK || a.Current.Pid != atoi(oldPid) || len(a.Others) != 0 {
			t.Fatalf("%s: status after rollback: %+v", mode, a)
		}
		os.Remove(filepath.Join(dir, mode))
	}
	// A good release afterwards swaps normally.
	if r := e.reload("app"); !r.OK {
		t.Fatalf("reload after rollback: %+v", r)
	}
	eventually(t, c, addr, "/pid", func(b string) bool { return strings.TrimSpace(b) != oldPid })
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// "Publish B over A, then reload": the new generation runs the binary now
// on disk.
func TestSwapRunsReplacedBinary(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	if err := goBuild(app, "./examples/app", "-X main.version=v1"); err != nil {
		t.Fatal(err)
	}
	e := startEP(t, "--listen", "127.0.0.1:0", "--", app)
	c := fresh(5 * time.Second)
	if v := field(get(t, c, e.addr("app"), "/"), "version"); v != "v1" {
		t.Fatalf("version %q, want v1", v)
	}
	// Publish the way a deploy does: write beside, rename over.
	if err := goBuild(app+".new", "./examples/app", "-X main.version=v2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(app+".new", app); err != nil {
		t.Fatal(err)
	}
	if r := e.reload("app"); !r.OK {
		t.Fatalf("reload: %+v", r)
	}
	eventually(t, c, e.addr("app"), "/", func(b string) bool { return field(b, "version") == "v2" })
}

// Zero failed requests over hot swaps under load, keep-alive on and off.
func TestSwapsUnderLoadFailNothing(t *testing.T) {
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin, "-ready-delay", "20ms")
			l := startLoad(e.addr("app"), 4, keepAlive)
			for i := 0; i < 10; i++ {
				if r := e.reload("app"); !r.OK {
					t.Fatalf("swap %d: %+v", i, r)
				}
			}
			l.finish(t, "10 swaps")
		})
	}
}

// SIGUSR2 (full restart): stop, then start; connections that arrive in
// between wait in the backlog and are served; none is refused.
func TestFullRestartRefusesNothing(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin, "-ready-delay", "300ms")
	l := startLoad(e.addr("app"), 4, false)
	for i := 2; i <= 4; i++ {
		e.signal(syscall.SIGUSR2)
		a := e.waitGeneration("app", i)
		if a.LastAction == nil || a.LastAction.Action != "restart" || !a.LastAction.OK {
			t.Fatalf("restart %d: %+v", i, a.LastAction)
		}
	}
	l.finish(t, "3 full restarts")
}

// The init's own fds are the same after 100 swaps as before, but for the
// listening sockets of the app's address: under the bind takeover each
// generation gets a socket of its own in one SO_REUSEPORT group, and a
// socket whose removal would move the one new connections go to stays,
// free, until the next swap reuses it (internal/steer). Those are bounded
// by the generations alive at once, never one per swap.
func TestNoFDLeakAcross100Swaps(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin)
	pid := e.cmd.Process.Pid
	_, port, _ := net.SplitHostPort(e.addr("app"))
	// Old generations drain in the background; count once they are gone.
	drained := func() {
		deadline := time.Now().Add(10 * time.Second)
		for len(e.app("app").Others) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	count := func() (int, int) {
		n, l := countFDs(t, pid), listeners(t, pid, port)
		return n - l, l
	}
	e.reload("app") // the first swap allocates what every later one reuses
	drained()
	// The old generation's notify socket closes just after its exit is
	// known: count once two readings agree.
	before, _ := count()
	for i := 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		n, _ := count()
		if n == before {
			break
		}
		before = n
	}
	for i := 0; i < 100; i++ {
		if r := e.reload("app"); !r.OK {
			t.Fatalf("swap %d: %+v", i, r)
		}
	}
	drained()
	// A control-socket connection of the status polls may still be
	// closing: allow it a moment, then compare.
	after, socks := count()
	for deadline := time.Now().Add(5 * time.Second); after != before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after, socks = count()
	}
	// Back-to-back swaps of a fast app keep a few generations draining at
	// once (each waits for its accept queue and 100 ms before its stop
	// signal); a leak would hold one socket per swap.
	if after != before || socks < 1 || socks > 20 {
		t.Fatalf("init has %d fds after 100 swaps, %d before, and %d listening sockets of port %s: %v", after, before, socks, port, listFDs(pid))
	}
	t.Logf("%d fds besides %d listening sockets of the app's port", after, socks)
}

// listeners counts pid's fds that are TCP sockets listening on port.
func listeners(t *testing.T, pid int, port string) int {
	t.Helper()
	out, err := exec.Command("ss", "-Hltne", "sport = :"+port).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	inodes := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		if ino, ok := strings.CutPrefix(f, "ino:"); ok {
			inodes["socket:["+ino+"]"] = true
		}
	}
	n := 0
	for _, fd := range listFDs(pid) {
		if _, link, _ := strings.Cut(fd, "->"); inodes[link] {
			n++
		}
	}
	return n
}

// Triggers that arrive during a swap collapse into one more swap.
func TestTriggersCollapse(t *testing.T) {
	e := startEP(t, "--listen", "127.0.0.1:0", "--", exampleBin, "-ready-delay", "400ms")
	for i := 0; i < 6; i++ {
		e.signal(syscall.SIGUSR1)
	}
	e.waitGeneration("app", 2)
	// Let any collapsed follow-up finish, then count.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a := e.app("app")
		if a.State == "running" && len(a.Others) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // a third swap would have started by now
	if n := e.app("app").Current.N; n > 3 {
		t.Fatalf("6 triggers made %d generations; they should collapse into at most 2 swaps", n)
	}
}

// Several apps: each has its own listeners and generations; a swap of one
// leaves the others alone; SIGUSR1 swaps them all.
func TestSeveralApps(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apps:
- name: web
  command: [%q]
  listen: [{name: http, address: "127.0.0.1:0"}]
- name: api
  command: [%q, "-version", "api"]
  listen: [{name: http, address: "127.0.0.1:0"}, {name: admin, address: "unix:%s/api.sock"}]
`, exampleBin, exampleBin, dir))
	e := startEP(t, "--config", cfg)
	c := fresh(5 * time.Second)
	web, api := e.addr("web"), e.addr("api")
	if v := field(get(t, c, api, "/"), "version"); v != "api" {
		t.Fatalf("api answered version %q", v)
	}
	// The unix socket serves the same app.
	uc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
			return dialUnix(ctx, filepath.Join(dir, "api.sock"))
		},
	}}
	if v := field(get(t, uc, "api", "/"), "version"); v != "api" {
		t.Fatalf("api over unix socket answered version %q", v)
	}
	webPid := e.app("web").Current.Pid
	if r := e.reload("api"); !r.OK || r.To != 2 {
		t.Fatalf("reload api: %+v", r)
	}
	if e.app("web").Current.Pid != webPid || e.app("web").Current.N != 1 {
		t.Fatal("reloading api swapped web too")
	}
	e.signal(syscall.SIGUSR1)
	e.waitGeneration("web", 2)
	e.waitGeneration("api", 3)
	_ = web
}
