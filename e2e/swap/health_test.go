package swap

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func probe(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// prober samples a probe endpoint continuously and remembers every answer
// other than want.
type prober struct {
	mu   sync.Mutex
	bad  []int
	n    int
	stop chan struct{}
	done chan struct{}
}

func watchProbe(url string, want int) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			code := probe(c, url)
			p.mu.Lock()
			p.n++
			if code != want {
				p.bad = append(p.bad, code)
			}
			p.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return p
}

func (p *prober) finish() (samples int, bad []int) {
	close(p.stop)
	<-p.done
	return p.n, p.bad
}

// Readiness and liveness follow the state through a whole life: not ready
// until the first generation passes its gate; ready throughout a hot swap
// and a failed one; not ready during a full restart; not ready from the
// first instant of shutdown while the app still serves its pre-stop delay.
func TestProbesThroughAFullLife(t *testing.T) {
	dir := t.TempDir()
	health := freeAddr(t)
	script := fmt.Sprintf(`if [ -e %[1]s/fail ]; then exec %[2]s -fail-start; fi; exec %[2]s -ready-delay 300ms`, dir, exampleBin)
	socket := filepath.Join(dir, "control.sock")
	cmd := exec.Command(entrypointBin, "--health-listen", health, "--control-socket", socket,
		"--listen", "127.0.0.1:0", "--pre-stop-delay", "1s", "--", "sh", "-c", script)
	logs := &logLines{}
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // apps of a killed init hold stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("entrypoint stderr:\n%s", logs.String())
		}
	}()
	c := &http.Client{Timeout: 2 * time.Second}
	readyz, livez := "http://"+health+"/readyz", "http://"+health+"/livez"

	// Starting: live but not ready (the app takes 300 ms).
	code := -1
	deadline := time.Now().Add(10 * time.Second)
	for code == -1 && time.Now().Before(deadline) {
		code = probe(c, readyz)
	}
	if code != http.StatusInternalServerError {
		t.Fatalf("readyz while the first generation starts = %d, want 500", code)
	}
	if code := probe(c, livez); code != 200 {
		t.Fatalf("livez while starting = %d, want 200", code)
	}
	e := &ep{t: t, cmd: cmd, socket: socket, stderr: logs, done: make(chan struct{})}
	e.waitReady()
	if code := probe(c, readyz); code != 200 {
		t.Fatalf("readyz once ready = %d", code)
	}

	// Hot swap: ready all along.
	p := watchProbe(readyz, 200)
	if r := e.reload("app"); !r.OK {
		t.Fatalf("reload: %+v", r)
	}
	// Failed swap: still ready, the old generation serves.
	writeFile(t, filepath.Join(dir, "fail"), "")
	if r := e.reload("app"); r.OK {
		t.Fatal("reload with a failing release succeeded")
	}
	os.Remove(filepath.Join(dir, "fail"))
	if n, bad := p.finish(); len(bad) > 0 || n < 10 {
		t.Fatalf("readyz during swaps: %d samples, not 200: %v", n, bad)
	}

	// Full restart: not ready until the new generation is.
	p = watchProbe(readyz, 200)
	e.signal(syscall.SIGUSR2)
	// Generation numbers count starts: the failed swap used number 3.
	e.waitGeneration("app", 4)
	if _, bad := p.finish(); len(bad) == 0 {
		t.Fatal("readyz never failed during a full restart")
	}
	if code := probe(c, readyz); code != 200 {
		t.Fatalf("readyz after the restart = %d", code)
	}

	// Metrics after those events, parsed with Prometheus' own parser.
	m := scrape(t, c, "http://"+health+"/metrics")
	checkMetric(t, m, "entrypoint_reloads_total", map[string]string{"app": "app", "result": "success"}, 1)
	checkMetric(t, m, "entrypoint_reloads_total", map[string]string{"app": "app", "result": "failure"}, 1)
	checkMetric(t, m, "entrypoint_restarts_total", map[string]string{"app": "app", "kind": "manual"}, 1)
	checkMetric(t, m, "entrypoint_generation", map[string]string{"app": "app"}, 4)
	checkMetric(t, m, "entrypoint_app_up", map[string]string{"app": "app"}, 1)
	checkMetric(t, m, "entrypoint_draining", nil, 0)
	if h := m["entrypoint_reload_duration_seconds"]; h == nil || h.Metric[0].Histogram.GetSampleCount() != 2 {
		t.Fatalf("reload duration histogram: %v", h)
	}
	if _, ok := m["entrypoint_app_process_resident_memory_bytes"]; !ok {
		t.Fatal("no process metrics of the app")
	}

	// Shutdown: not ready at once, while the app still answers during the
	// pre-stop delay.
	appAddr := e.addr("app")
	e.signal(syscall.SIGTERM)
	deadline = time.Now().Add(5 * time.Second)
	for probe(c, readyz) != 500 && time.Now().Before(deadline) {
	}
	if code := probe(c, readyz); code != 500 {
		t.Fatalf("readyz after SIGTERM = %d, want 500", code)
	}
	if code := probe(c, "http://"+appAddr+"/"); code != 200 {
		t.Fatalf("the app stopped serving during the pre-stop delay: %d", code)
	}
	if code := probe(c, livez); code != 200 {
		t.Fatalf("livez during shutdown = %d, want 200", code)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("entrypoint exit: %v", err)
	}
}

func scrape(t *testing.T, c *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	m, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return m
}

func checkMetric(t *testing.T, m map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	f := m[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, metric := range f.Metric {
		match := true
		for _, lp := range metric.Label {
			if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		var got float64
		switch {
		case metric.Counter != nil:
			got = metric.Counter.GetValue()
		case metric.Gauge != nil:
			got = metric.Gauge.GetValue()
		}
		if got != want {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		return
	}
	t.Fatalf("no %s with labels %v", name, labels)
}

// The CLI against a running init that is PID 1: reload, restart and
// status wait for the outcome and say it; shutdown ends the container.
func TestCLIAgainstPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --pid; CI runs as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) not found")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "control.sock")
	// This test process is in the parent PID namespace: a caller the init
	// refuses unless told (issue 11 item 1).
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", entrypointBin,
		"--health-listen", "off", "--control-socket", socket, "--control-allow-other-pidns",
		"--listen", "127.0.0.1:0", "--", exampleBin)
	logs := &logLines{}
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // apps of a killed init hold stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	e := &ep{t: t, cmd: cmd, socket: socket, stderr: logs, done: make(chan struct{})}
	st := e.waitReady()
	if st.Pid != 1 {
		t.Fatalf("status says the init is pid %d, want 1", st.Pid)
	}
	cli := func(args ...string) (string, int) {
		out, err := exec.Command(entrypointBin, append(args, "--control-socket", socket)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	if out, code := cli("reload"); code != 0 || !strings.Contains(out, "generation 1 -> 2") {
		t.Fatalf("entrypoint reload: %d %s", code, out)
	}
	if out, code := cli("restart", "app"); code != 0 || !strings.Contains(out, "restart: ok") {
		t.Fatalf("entrypoint restart: %d %s", code, out)
	}
	if out, code := cli("reload", "nope"); code == 0 || !strings.Contains(out, "nope") {
		t.Fatalf("entrypoint reload nope: %d %s", code, out)
	}
	out, code := cli("status")
	if code != 0 || !strings.Contains(out, "running") || !strings.Contains(out, "restart ok") {
		t.Fatalf("entrypoint status: %d %s", code, out)
	}
	if out, code := cli("status", "--json"); code != 0 || !strings.Contains(out, `"pid": 1`) {
		t.Fatalf("entrypoint status --json: %d %s", code, out)
	}
	if out, code := cli("shutdown"); code != 0 {
		t.Fatalf("entrypoint shutdown: %d %s", code, out)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("container exit after shutdown: %v\n%s", err, logs.String())
	}
}
