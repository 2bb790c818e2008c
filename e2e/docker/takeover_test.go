//go:build e2e_docker

package dockere2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// selfbindLine is examples/selfbind's answer; the first submatch is the
// generation.
var selfbindLine = regexp.MustCompile(`selfbind generation=(\S+) pid=(\d+)`)

// appStatus is the part of `entrypoint status --json` the takeover test reads.
type appStatus struct {
	Apps []struct {
		Name    string `json:"name"`
		Ready   bool   `json:"ready"`
		Current *struct {
			N   int `json:"n"`
			Pid int `json:"pid"`
		} `json:"current"`
		Others     []json.RawMessage `json:"others"`
		Takeover   string            `json:"takeover"`
		LastAction *struct {
			OK     bool   `json:"ok"`
			Reason string `json:"reason"`
			To     int    `json:"to"`
		} `json:"lastAction"`
	} `json:"apps"`
}

func (c *container) status() (appStatus, error) {
	var st appStatus
	out, err := c.exec("entrypoint", "status", "--json")
	if err != nil {
		return st, fmt.Errorf("entrypoint status --json: %w: %s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Apps) != 1 {
		return st, fmt.Errorf("parse entrypoint status --json (%v): %s", err, out)
	}
	return st, nil
}

// settled waits until generation n or later serves alone and ready.
func (c *container) settled(t *testing.T, after int) appStatus {
	t.Helper()
	var st appStatus
	var err error
	poll(t, 60*time.Second, fmt.Sprintf("a generation after %d serving alone", after), func() bool {
		st, err = c.status()
		if err != nil {
			return false
		}
		a := st.Apps[0]
		return a.Ready && a.Current != nil && a.Current.N > after && len(a.Others) == 0
	})
	return st
}

// TestTakeoverSelfbind is issue 10's Docker proof: a server that binds
// its own port (examples/selfbind, no LISTEN_FDS, no READY=1) under
// Docker's default seccomp profile, non-root, read-only, with every
// capability dropped, is swapped 20 times under load with a new
// connection per request, and no request fails.
func TestTakeoverSelfbind(t *testing.T) {
	takeoverSwaps(t, imageSelfbind, nil, selfbindLine, "/selfbind")
}

// TestTakeoverNginx is the same for Debian's nginx, unmodified (master +
// 2 workers, SIGQUIT for its graceful stop; the answer names the worker,
// not the generation). nginx writes its pid and temp files, so the
// read-only container gets a tmpfs at /tmp.
func TestTakeoverNginx(t *testing.T) {
	takeoverSwaps(t, imageNginx, []string{"--tmpfs", "/tmp:mode=1777"}, regexp.MustCompile(`nginx pid=(\d+)`), "nginx: master")
}

// takeoverSwaps runs image (entrypoint --listen :8080 in front of a server
// that binds :8080 itself) as --user 65532 --read-only --cap-drop ALL
// under the engine's default seccomp profile and swaps it 20 times under
// load; line's first submatch tells the answering process apart, app is
// the start of the server's cmdline.
func takeoverSwaps(t *testing.T, image string, runArgs []string, line *regexp.Regexp, app string) {
	if so := mustDocker(t, "info", "--format", "{{.SecurityOptions}}"); !strings.Contains(so, "seccomp") {
		t.Fatalf("the engine applies no seccomp profile (SecurityOptions %s): the test would prove nothing", so)
	}
	args := append([]string{"--read-only", "--user", "65532", "--cap-drop", "ALL",
		"-p", "127.0.0.1::8080", "-p", "127.0.0.1::9090"}, runArgs...)
	c := start(t, append(args, image)...)
	addr, health := c.hostAddr("8080"), c.hostAddr("9090")
	c.waitReady(health)
	if so := c.inspect("{{.HostConfig.SecurityOpt}}"); strings.Contains(so, "seccomp") {
		t.Fatalf("container runs with SecurityOpt %s, want the engine's default seccomp profile", so)
	}

	st, err := c.status()
	if err != nil {
		t.Fatal(err)
	}
	a := st.Apps[0]
	if a.Takeover != "active" {
		t.Fatalf("status says takeover %q, want active", a.Takeover)
	}
	_, verbose, err := get("http://" + health + "/readyz?verbose")
	if err != nil || !strings.Contains(verbose, "takeover-"+a.Name) || !strings.Contains(verbose, "active") {
		t.Errorf("/readyz?verbose lacks takeover-%s active: %v\n%s", a.Name, err, verbose)
	}
	checkFilters(t, c, app)

	l := startLoadWith(t, addr, 4, false, line, 1)
	l.waitServed(t, 50)
	gen := a.Current.N
	const swaps = 20
	t0 := time.Now()
	for i := range swaps {
		// Both ways a user swaps a container from outside.
		if i%2 == 0 {
			mustDocker(t, "kill", "-s", "USR1", c.id)
		} else if out, err := c.exec("kill", "-USR1", "1"); err != nil {
			t.Fatalf("docker exec kill -USR1 1: %v\n%s", err, out)
		}
		st = c.settled(t, gen)
		a = st.Apps[0]
		if a.LastAction == nil || !a.LastAction.OK {
			t.Fatalf("swap %d: lastAction %+v, want a successful reload", i+1, a.LastAction)
		}
		gen = a.Current.N
		l.waitServed(t, 20)
	}
	l.check(t)
	t.Logf("%d swaps in %s; generation now %d", swaps, time.Since(t0).Round(time.Millisecond), gen)
	if a.Takeover != "active" {
		t.Errorf("after the swaps status says takeover %q, want active", a.Takeover)
	}
	if len(l.served) < swaps {
		t.Errorf("answers came from %d processes, want at least %d: %v", len(l.served), swaps, l.served)
	}

	code, metrics, err := get("http://" + health + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	if v := sample(metrics, `entrypoint_takeover_active{app="`+a.Name+`",state="active"}`); v != 1 {
		t.Errorf("entrypoint_takeover_active{state=active} = %v, want 1", v)
	}
	// One taken bind per generation: the first and every swap's.
	if v := sample(metrics, `entrypoint_takeover_calls_total{app="`+a.Name+`",call="bind",result="taken"}`); v < swaps+1 {
		t.Errorf("takeover bind taken = %v, want at least %d", v, swaps+1)
	}
}

// checkFilters looks at the app from the host: it runs under Docker's
// filter plus the shim's, with no_new_privs, as uid 65532 and without
// capabilities.
func checkFilters(t *testing.T, c *container, app string) {
	t.Helper()
	init := c.hostPID()
	tasks, err := filepath.Glob("/proc/" + init + "/task/*/children")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of host pid %s: %v", init, err)
	}
	var kids []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		kids = append(kids, strings.Fields(string(b))...)
	}
	initFilters, _ := strconv.Atoi(procField(t, init, "Seccomp_filters"))
	for _, k := range kids {
		if !strings.HasPrefix(cmdline(t, k)[0], app) {
			continue
		}
		appFilters, _ := strconv.Atoi(procField(t, k, "Seccomp_filters"))
		t.Logf("app host pid %s: Seccomp %s, filters %d (PID 1: %d), NoNewPrivs %s, Uid %s, CapEff %s",
			k, procField(t, k, "Seccomp"), appFilters, initFilters, procField(t, k, "NoNewPrivs"),
			procField(t, k, "Uid"), procField(t, k, "CapEff"))
		if initFilters < 1 || appFilters != initFilters+1 {
			t.Errorf("seccomp filters: PID 1 %d, app %d; want Docker's and one more (the shim's)", initFilters, appFilters)
		}
		if procField(t, k, "NoNewPrivs") != "1" {
			t.Errorf("app NoNewPrivs %s, want 1", procField(t, k, "NoNewPrivs"))
		}
		if capEff := procField(t, k, "CapEff"); strings.Trim(capEff, "0") != "" {
			t.Errorf("app CapEff %s, want none", capEff)
		}
		return
	}
	t.Fatalf("no %s among PID 1's children %v", app, kids)
}

// sample returns the value of the metric line that starts with prefix, -1
// when there is none.
func sample(body, prefix string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, prefix)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
