package k8s

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The cluster suite. Environment (set by run.sh):
//
//	ENTRYPOINT_E2E_K8S=1        run at all
//	E2E_IMAGE_ENTRYPOINT        the entrypoint image (Dockerfile target entrypoint)
//	E2E_IMAGE_DEMO              the demo image (example app under entrypoint)
//	E2E_IMAGE_PLAIN             an image without entrypoint (initContainer mode)
//	E2E_IMAGE_SELFBIND          examples/selfbind alone, FROM scratch (bind takeover)
//	E2E_NODE_IP                 where NodePorts answer (k8s-local: 10.244.77.1)
//	ENTRYPOINT_E2E_KEEP=1       leave the namespace behind for debugging
//	E2E_NAMESPACE               namespace of the run (default entrypoint-e2e)
//
// namespace is E2E_NAMESPACE or entrypoint-e2e: runs that share a
// cluster keep out of each other's way.
var namespace = envOr("E2E_NAMESPACE", "entrypoint-e2e")

const (
	release  = "e2e"
	fullname = "e2e-entrypoint"
)

type cluster struct {
	t                    *testing.T
	kubectl, helm, chart string
	nodeIP               string
	imgEP, imgDemo       string
	imgPlain             string
}

func newCluster(t *testing.T) *cluster {
	if os.Getenv("ENTRYPOINT_E2E_K8S") != "1" {
		t.Skip("set ENTRYPOINT_E2E_K8S=1 to run against a cluster (e2e/k8s/run.sh starts k8s-local, loads the images and sets it)")
	}
	c := &cluster{
		t:        t,
		kubectl:  envOr("KUBECTL", "kubectl"),
		helm:     helmPath(t),
		chart:    filepath.Join(repoRoot(t), "charts", "entrypoint"),
		nodeIP:   envOr("E2E_NODE_IP", "10.244.77.1"),
		imgEP:    os.Getenv("E2E_IMAGE_ENTRYPOINT"),
		imgDemo:  os.Getenv("E2E_IMAGE_DEMO"),
		imgPlain: envOr("E2E_IMAGE_PLAIN", "localhost/webapp:v1"),
	}
	if c.imgEP == "" || c.imgDemo == "" {
		t.Fatal("E2E_IMAGE_ENTRYPOINT and E2E_IMAGE_DEMO must name images loaded into the node (run.sh does it)")
	}
	return c
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// measure prints a line run.sh collects into its summary.
func measure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Printf("MEASURE %s\n", line)
}

func (c *cluster) run(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// stdout runs a command for its standard output alone, the document a
// caller parses: kubectl writes client-side noise to stderr (exec's
// websocket "Unknown stream id ... discarding message", deprecation
// warnings) that CombinedOutput would mix into the JSON. Stderr goes into
// the error only.
func (c *cluster) stdout(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// kJSON is c.k for a command whose output is parsed.
func (c *cluster) kJSON(args ...string) string {
	c.t.Helper()
	out, err := c.stdout(2*time.Minute, c.kubectl, append([]string{"-n", namespace}, args...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cluster) k(args ...string) (string, error) {
	return c.run(2*time.Minute, c.kubectl, append([]string{"-n", namespace}, args...)...)
}

func (c *cluster) mustK(args ...string) string {
	c.t.Helper()
	out, err := c.k(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func splitImage(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

// pod is the part of a Pod the suite reads.
type pod struct {
	Metadata struct {
		Name              string     `json:"name"`
		CreationTimestamp time.Time  `json:"creationTimestamp"`
		DeletionTimestamp *time.Time `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int `json:"terminationGracePeriodSeconds"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type               string    `json:"type"`
			Status             string    `json:"status"`
			LastTransitionTime time.Time `json:"lastTransitionTime"`
		} `json:"conditions"`
		InitContainerStatuses []containerStatus `json:"initContainerStatuses"`
		ContainerStatuses     []containerStatus `json:"containerStatuses"`
	} `json:"status"`
}

type containerStatus struct {
	Name         string `json:"name"`
	RestartCount int    `json:"restartCount"`
	State        struct {
		Terminated *struct {
			ExitCode   int       `json:"exitCode"`
			Reason     string    `json:"reason"`
			StartedAt  time.Time `json:"startedAt"`
			FinishedAt time.Time `json:"finishedAt"`
		} `json:"terminated"`
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
	} `json:"state"`
}

func (p pod) ready() (bool, time.Time) {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True", c.LastTransitionTime
		}
	}
	return false, time.Time{}
}

func (c *cluster) pods(rel string) []pod {
	c.t.Helper()
	out := c.kJSON("get", "pods", "-l", "app.kubernetes.io/instance="+rel, "-o", "json")
	var list struct{ Items []pod }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		c.t.Fatalf("parse pods: %v", err)
	}
	return list.Items
}

// waitReadyPods polls until n pods of rel that are not being deleted are
// Ready, and returns them.
func (c *cluster) waitReadyPods(rel string, n int, timeout time.Duration) []pod {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []pod
	for time.Now().Before(deadline) {
		last = nil
		for _, p := range c.pods(rel) {
			if ok, _ := p.ready(); ok && p.Metadata.DeletionTimestamp == nil {
				last = append(last, p)
			}
		}
		if len(last) >= n {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, _ := c.k("describe", "pods", "-l", "app.kubernetes.io/instance="+rel)
	logs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+rel, "--all-containers", "--tail", "50")
	c.t.Fatalf("%d Ready pods of %s after %s, want %d\n%s\n%s", len(last), rel, timeout, n, out, logs)
	return nil
}

// status is `entrypoint status --json` (status.Status), the part read.
type status struct {
	Apps []struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Ready   bool   `json:"ready"`
		Current *struct {
			N   int `json:"n"`
			Pid int `json:"pid"`
		} `json:"current"`
		Others     []json.RawMessage `json:"others"`
		Restarts   int               `json:"restarts"`
		Takeover   string            `json:"takeover"`
		LastAction *result           `json:"lastAction"`
		LastChange *result           `json:"lastChange"`
	} `json:"apps"`
}

type result struct {
	Action   string        `json:"action"`
	OK       bool          `json:"ok"`
	Reason   string        `json:"reason"`
	From     int           `json:"from"`
	To       int           `json:"to"`
	Duration time.Duration `json:"duration"`
	Output   string        `json:"output"`
}

func (c *cluster) status(podName, bin string) (status, error) {
	out, err := c.stdout(time.Minute, c.kubectl, "-n", namespace, "exec", podName, "-c", "app", "--", bin, "status", "--json")
	var st status
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Apps) == 0 {
		return st, fmt.Errorf("parse entrypoint status --json: %v\n%s", err, out)
	}
	return st, nil
}

// waitSettled polls entrypoint status until the app has one generation
// (the old one of a swap is gone) and returns it.
func (c *cluster) waitSettled(podName string, timeout time.Duration) status {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	var st status
	for time.Now().Before(deadline) {
		st, err = c.status(podName, "entrypoint")
		if err == nil && len(st.Apps[0].Others) == 0 && st.Apps[0].Current != nil && st.Apps[0].Ready {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("app did not settle on one ready generation within %s: %+v %v", timeout, st, err)
	return st
}

func httpGet(url string, timeout time.Duration) (int, string, error) {
	cl := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric returns the value of the first sample whose line starts with
// prefix (name plus label set), 0 when absent.
func metric(body, prefix string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

func (c *cluster) patchConfig(content string) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]any{"data": map[string]string{"config.yaml": content}})
	c.mustK("patch", "configmap", fullname+"-config", "--type", "merge", "-p", string(p))
}

func writeValues(t *testing.T, v string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCluster installs the chart with the demo image and walks through
// what a user does with it, with a client sending requests to the Service
// the whole time.
func TestCluster(t *testing.T) {
	c := newCluster(t)
	if _, err := c.run(time.Minute, c.kubectl, "get", "--raw", "/readyz"); err != nil {
		t.Fatalf("no cluster: %v", err)
	}
	c.run(2*time.Minute, c.kubectl, "delete", "namespace", namespace, "--ignore-not-found", "--wait")
	if _, err := c.run(time.Minute, c.kubectl, "create", "namespace", namespace); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("ENTRYPOINT_E2E_KEEP") == "1" || t.Failed() && os.Getenv("ENTRYPOINT_E2E_KEEP") != "0" {
			t.Logf("namespace %s kept for inspection; delete it with: kubectl delete namespace %s", namespace, namespace)
			return
		}
		c.run(3*time.Minute, c.helm, "uninstall", "-n", namespace, release, "--wait")
		c.run(3*time.Minute, c.kubectl, "delete", "namespace", namespace, "--wait")
	})

	demoRepo, demoTag := splitImage(c.imgDemo)
	epRepo, epTag := splitImage(c.imgEP)
	values := writeValues(t, fmt.Sprintf(`
image: {repository: %q, tag: %q, pullPolicy: Never}
entrypoint:
  image: {repository: %q, tag: %q, pullPolicy: Never}
  logFormat: text
command: ["/app", "-config", "/etc/app/config.yaml", "-drain", "15s"]
config:
  files:
    config.yaml: "logLevel: info # cfg-v1\n"
  # The demo image has no validator of its own: entrypoint's strict config
  # loader rejects an unknown key, which stands for "a config the app
  # would refuse".
  validate: ["/entrypoint", "validate", "--config", "/etc/app/config.yaml", "--", "/app"]
  debounce: 500ms
service: {type: NodePort}
termination: {preStopDelay: 3s, drainTimeout: 15s}
`, demoRepo, demoTag, epRepo, epTag))

	var podName, podIP string
	var tr *traffic
	ok := t.Run("pod becomes Ready through /readyz", func(t *testing.T) {
		start := time.Now()
		if _, err := c.run(5*time.Minute, c.helm, "install", release, c.chart, "-n", namespace, "-f", values, "--wait", "--timeout", "3m"); err != nil {
			out, _ := c.k("describe", "pods")
			logs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+release, "--all-containers", "--tail", "80")
			t.Fatalf("%v\n%s\n%s", err, out, logs)
		}
		p := c.waitReadyPods(release, 1, time.Minute)[0]
		podName, podIP = p.Metadata.Name, p.Status.PodIP
		_, readyAt := p.ready()
		measure(t, "install: helm install --wait took %s; pod Ready %s after creation", time.Since(start).Round(time.Millisecond), readyAt.Sub(p.Metadata.CreationTimestamp))
		probe := c.mustK("get", "pod", podName, "-o", "jsonpath={.spec.containers[0].readinessProbe.httpGet.path} {.spec.containers[0].startupProbe.httpGet.path} {.spec.containers[0].livenessProbe.httpGet.path}")
		if probe != "/readyz /readyz /livez" {
			t.Errorf("probes readiness/startup/liveness on %q, want /readyz /readyz /livez", probe)
		}
		code, body, err := httpGet("http://"+podIP+":9090/readyz?verbose", 3*time.Second)
		if err != nil || code != 200 {
			t.Fatalf("GET /readyz on the pod: %d %v\n%s", code, err, body)
		}
		t.Logf("/readyz?verbose:\n%s", body)
		if user := c.mustK("exec", podName, "--", "entrypoint", "version"); !strings.HasPrefix(user, "entrypoint ") {
			t.Errorf("entrypoint version: %q", user)
		}
	})
	if !ok {
		t.FailNow()
	}

	nodePort := strings.TrimSpace(c.mustK("get", "svc", fullname, "-o", `jsonpath={.spec.ports[?(@.name=="http")].nodePort}`))
	url := fmt.Sprintf("http://%s:%s/", c.nodeIP, nodePort)
	tr = startTraffic(url, 4)
	defer tr.stop()
	if _, ok := tr.waitFor(0, 30*time.Second, func(sample) bool { return true }); !ok {
		t.Fatalf("no answer through the Service at %s: %v", url, summarise(tr.since(0)).failures)
	}
	// Requests before the first answer only measure kube-proxy programming
	// the new NodePort; the suite's count starts at the first answer.
	base := tr.firstOK()
	measure(t, "client: 4 workers, one connection per request, through NodePort %s; %d requests refused before kube-proxy programmed the new NodePort (not counted)", url, base)

	t.Run("kill -USR1 1 swaps with zero failed requests", func(t *testing.T) {
		before, _ := tr.last()
		mark := tr.mark()
		t0 := time.Now()
		c.mustK("exec", podName, "--", "kill", "-USR1", "1")
		s, ok := tr.waitFor(mark, time.Minute, func(s sample) bool { return s.pid != before.pid })
		if !ok {
			t.Fatalf("no answer from a new pid within 1m (old pid %s)", before.pid)
		}
		st := c.waitSettled(podName, time.Minute)
		w := summarise(tr.since(mark))
		measure(t, "USR1 swap: generation %s (pid %s) -> %s (pid %s), first answer from the new one after %s, old one gone after %s; %d requests, %d failed",
			before.gen, before.pid, s.gen, s.pid, s.at.Sub(t0).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), w.sent, w.failed)
		if w.failed != 0 {
			t.Errorf("%d of %d requests failed during the swap: %v", w.failed, w.sent, w.failures)
		}
		if la := st.Apps[0].LastAction; la == nil || !la.OK {
			t.Errorf("status lastAction %+v, want a successful reload", la)
		}
		// The chart's pod (RuntimeDefault seccomp, non-root, read-only
		// root, no capabilities) must let the init execute its native
		// exec shim from a memfd; the Go shim would serve, slower, and
		// say why in this line.
		if logs, _ := c.k("logs", podName); strings.Contains(logs, "native exec shim unusable") {
			t.Errorf("the native exec shim fell back to the Go shim:\n%s", logs)
		}
	})

	t.Run("entrypoint reload waits for the swap and reports it", func(t *testing.T) {
		before, _ := tr.last()
		mark := tr.mark()
		t0 := time.Now()
		out := c.mustK("exec", podName, "--", "entrypoint", "reload")
		took := time.Since(t0)
		if !strings.Contains(out, "ok, generation") {
			t.Errorf("entrypoint reload said %q, want ok, generation N -> N+1", out)
		}
		c.waitSettled(podName, time.Minute)
		w := summarise(tr.since(mark))
		after, _ := tr.last()
		measure(t, "entrypoint reload: %q in %s (kubectl exec included); pid %s -> %s; %d requests, %d failed",
			strings.TrimSpace(out), took.Round(time.Millisecond), before.pid, after.pid, w.sent, w.failed)
		if w.failed != 0 {
			t.Errorf("%d of %d requests failed during the swap: %v", w.failed, w.sent, w.failures)
		}
	})

	t.Run("ConfigMap patch swaps to the new config, restartCount 0, zero failed requests", func(t *testing.T) {
		mark := tr.mark()
		t0 := time.Now()
		c.patchConfig("logLevel: info # cfg-v2\n")
		s, ok := tr.waitFor(mark, 3*time.Minute, func(s sample) bool { return strings.Contains(s.body, "cfg-v2") })
		if !ok {
			logs, _ := c.k("logs", podName, "--tail", "30")
			t.Fatalf("the app never answered with the new config within 3m\n%s", logs)
		}
		st := c.waitSettled(podName, time.Minute)
		w := summarise(tr.since(mark))
		measure(t, "ConfigMap swap: patch -> first answer with the new config %s (kubelet sync + debounce + swap), now generation %s pid %s; %d requests, %d failed",
			s.at.Sub(t0).Round(time.Millisecond), s.gen, s.pid, w.sent, w.failed)
		if w.failed != 0 {
			t.Errorf("%d of %d requests failed: %v", w.failed, w.sent, w.failures)
		}
		if lc := st.Apps[0].LastChange; lc == nil || !lc.OK {
			t.Errorf("status lastChange %+v, want ok", lc)
		}
		for _, p := range c.pods(release) {
			if p.Metadata.Name == podName && p.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("restartCount %d, want 0", p.Status.ContainerStatuses[0].RestartCount)
			}
		}
	})

	t.Run("invalid config is not swapped in, pod stays Ready, failure in status and metrics", func(t *testing.T) {
		_, body, err := httpGet("http://"+podIP+":9090/metrics", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		failedBefore := metric(body, `entrypoint_config_validate_failures_total{app="app"}`)
		before, _ := tr.last()
		mark := tr.mark()
		t0 := time.Now()
		c.patchConfig("bogus: true # cfg-bad\n")
		deadline := time.Now().Add(3 * time.Minute)
		var failed float64
		for time.Now().Before(deadline) {
			if _, body, err = httpGet("http://"+podIP+":9090/metrics", 3*time.Second); err == nil {
				if failed = metric(body, `entrypoint_config_validate_failures_total{app="app"}`); failed > failedBefore {
					break
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		if failed <= failedBefore {
			t.Fatalf("entrypoint_config_validate_failures_total stayed %v for 3m", failed)
		}
		detected := time.Since(t0)
		st, err := c.status(podName, "entrypoint")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := c.k("exec", podName, "--", "entrypoint", "status")
		lc := st.Apps[0].LastChange
		if lc == nil || lc.OK || lc.Reason == "" {
			t.Errorf("status lastChange %+v, want a failure with a reason", lc)
		} else {
			measure(t, "invalid config: rejected %s after the patch; status says: %s; validator output: %s", detected.Round(time.Millisecond), strings.TrimSpace(lc.Reason), strings.TrimSpace(lc.Output))
		}
		t.Logf("entrypoint status:\n%s", text)
		changes := regexp.MustCompile(`(?m)^entrypoint_config_(changes|validate_failures)_total.*$`).FindAllString(body, -1)
		measure(t, "invalid config: metrics %s", strings.Join(changes, "; "))
		// Keep watching a little: a late swap to the bad config would show
		// up as an answer carrying it.
		w := summarise(tr.since(mark))
		after, _ := tr.last()
		for _, s := range tr.since(mark) {
			if strings.Contains(s.body, "cfg-bad") {
				t.Fatalf("the app answered with the rejected config: %s", s.body)
			}
		}
		if after.pid != before.pid {
			t.Errorf("pid changed %s -> %s although the config was rejected", before.pid, after.pid)
		}
		if p := c.pods(release); len(p) != 1 || func() bool { ok, _ := p[0].ready(); return !ok }() {
			t.Errorf("pod not Ready after a rejected config")
		}
		measure(t, "invalid config: %d requests, %d failed, still served by pid %s with cfg-v2", w.sent, w.failed, after.pid)
		if w.failed != 0 {
			t.Errorf("%d of %d requests failed: %v", w.failed, w.sent, w.failures)
		}
	})

	t.Run("a valid config after a rejected one is applied", func(t *testing.T) {
		mark := tr.mark()
		t0 := time.Now()
		c.patchConfig("logLevel: info # cfg-v3\n")
		s, ok := tr.waitFor(mark, 3*time.Minute, func(s sample) bool { return strings.Contains(s.body, "cfg-v3") })
		if !ok {
			t.Fatal("the app never answered with cfg-v3 within 3m")
		}
		c.waitSettled(podName, time.Minute)
		w := summarise(tr.since(mark))
		measure(t, "ConfigMap swap after a rejected one: %s; %d requests, %d failed", s.at.Sub(t0).Round(time.Millisecond), w.sent, w.failed)
		if w.failed != 0 {
			t.Errorf("%d of %d requests failed: %v", w.failed, w.sent, w.failures)
		}
	})

	t.Run("helm test passes", func(t *testing.T) {
		out, err := c.run(3*time.Minute, c.helm, "test", release, "-n", namespace, "--logs", "--timeout", "2m")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", out)
		measure(t, "helm test: passed")
	})

	t.Run("kubectl delete pod: unready first, in-flight requests complete, exit 0 within the grace period", func(t *testing.T) {
		// A second replica takes the Service's traffic, so the client
		// measures the whole hand-over, not a missing backend.
		c.mustK("scale", "deployment", fullname, "--replicas", "2")
		c.waitReadyPods(release, 2, 2*time.Minute)
		var victim pod
		for _, p := range c.pods(release) {
			if p.Metadata.Name == podName {
				victim = p
			}
		}
		grace := time.Duration(victim.Spec.TerminationGracePeriodSeconds) * time.Second

		// In-flight: slow requests straight to the victim, past the
		// Service, that are inside the handler (headers flushed) before
		// the delete.
		type inflight struct {
			body string
			err  error
			at   time.Time
		}
		const nInflight = 4
		results := make(chan inflight, nInflight)
		started := make(chan struct{}, nInflight)
		for range nInflight {
			go func() {
				cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := cl.Get("http://" + podIP + ":8080/sleep?d=6s")
				started <- struct{}{}
				if err != nil {
					results <- inflight{err: err, at: time.Now()}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				results <- inflight{body: strings.TrimSpace(string(b)), err: err, at: time.Now()}
			}()
		}
		for range nInflight {
			<-started
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		var readyzDown, endpointDown, directLastOK, directFirstFail time.Time
		var readyzDownCode int
		poll := func(every time.Duration, f func()) {
			go func() {
				for ctx.Err() == nil {
					f()
					time.Sleep(every)
				}
			}()
		}
		poll(50*time.Millisecond, func() {
			code, _, _ := httpGet("http://"+podIP+":9090/readyz", time.Second)
			mu.Lock()
			if code != 200 && readyzDown.IsZero() {
				readyzDown, readyzDownCode = time.Now(), code
			}
			mu.Unlock()
		})
		poll(50*time.Millisecond, func() {
			code, _, err := httpGet("http://"+podIP+":8080/", time.Second)
			mu.Lock()
			if err == nil && code == 200 {
				directLastOK = time.Now()
			} else if directFirstFail.IsZero() {
				directFirstFail = time.Now()
			}
			mu.Unlock()
		})
		poll(100*time.Millisecond, func() {
			out, err := c.stdout(10*time.Second, c.kubectl, "-n", namespace, "get", "endpointslices", "-l", "kubernetes.io/service-name="+fullname, "-o", "json")
			if err != nil {
				return
			}
			var l struct {
				Items []struct {
					Endpoints []struct {
						Addresses  []string `json:"addresses"`
						Conditions struct {
							Ready *bool `json:"ready"`
						} `json:"conditions"`
					} `json:"endpoints"`
				} `json:"items"`
			}
			json.Unmarshal([]byte(out), &l)
			ready := false
			for _, it := range l.Items {
				for _, e := range it.Endpoints {
					for _, a := range e.Addresses {
						if a == podIP && e.Conditions.Ready != nil && *e.Conditions.Ready {
							ready = true
						}
					}
				}
			}
			mu.Lock()
			if !ready && endpointDown.IsZero() {
				endpointDown = time.Now()
			}
			mu.Unlock()
		})
		// The pod's last status before it disappears carries the exit code.
		term := make(chan containerStatus, 1)
		go c.watchTermination(ctx, podName, term)

		mark := tr.mark()
		t0 := time.Now()
		c.mustK("delete", "pod", podName, "--wait=false")
		var cs containerStatus
		select {
		case cs = <-term:
		case <-time.After(grace + time.Minute):
			t.Fatalf("no terminated state for %s within grace %s + 1m", podName, grace)
		}
		var done []inflight
		for range nInflight {
			select {
			case r := <-results:
				done = append(done, r)
			case <-time.After(30 * time.Second):
				t.Fatalf("in-flight request still running 30s after the container exited")
			}
		}
		cancel()
		c.waitReadyPods(release, 2, 2*time.Minute)
		w := summarise(tr.since(mark))
		mu.Lock()
		defer mu.Unlock()

		since := func(x time.Time) string {
			if x.IsZero() {
				return "never"
			}
			return x.Sub(t0).Round(time.Millisecond).String()
		}
		tm := cs.State.Terminated
		measure(t, "delete: EndpointSlice not-ready after %s, /readyz %d after %s, app last answered on the pod IP after %s (first request refused or stuck >1s: %s), container exit %d at +%s (grace %s)",
			since(endpointDown), readyzDownCode, since(readyzDown), since(directLastOK), since(directFirstFail), tm.ExitCode, tm.FinishedAt.Sub(t0.Truncate(time.Second)), grace)
		unready := endpointDown
		if unready.IsZero() || (!readyzDown.IsZero() && readyzDown.Before(unready)) {
			unready = readyzDown
		}
		if unready.IsZero() || !unready.Before(directLastOK) {
			t.Errorf("the pod was not unready before the app stopped answering (unready %s, last answer %s)", since(unready), since(directLastOK))
		}
		okInflight := 0
		for _, r := range done {
			if r.err == nil && r.body == victimPid(r.body) {
				okInflight++
			} else {
				t.Errorf("in-flight request: %q %v", r.body, r.err)
			}
		}
		measure(t, "delete: %d/%d in-flight /sleep?d=6s requests completed; Service traffic %d requests, %d failed", okInflight, nInflight, w.sent, w.failed)
		if tm.ExitCode != 0 {
			t.Errorf("container exit code %d (%s), want 0", tm.ExitCode, tm.Reason)
		}
		// finishedAt has second precision; allow the truncation.
		if d := tm.FinishedAt.Sub(t0.Truncate(time.Second)); d > grace+time.Second {
			t.Errorf("container finished %s after the delete, grace period %s", d, grace)
		}
		if w.failed != 0 {
			t.Errorf("%d of %d requests through the Service failed during the delete: %v", w.failed, w.sent, w.failures)
		}
	})

	tr.stop()
	all := summarise(tr.since(base))
	measure(t, "client total from the Service's first answer to the end: %d requests, %d failed", all.sent, all.failed)
	if all.failed != 0 {
		t.Errorf("%d requests failed between the checks: %v", all.failed, all.failures)
	}
}

// victimPid accepts the /sleep answer: the pid alone on its line.
func victimPid(body string) string {
	if _, err := strconv.Atoi(body); err == nil {
		return body
	}
	return ""
}

// watchTermination follows the pod through a watch and sends the app
// container's status once it has terminated. The kubelet reports it before
// the pod object goes away.
func (c *cluster) watchTermination(ctx context.Context, name string, out chan<- containerStatus) {
	cmd := exec.CommandContext(ctx, c.kubectl, "get", "--raw",
		"/api/v1/namespaces/"+namespace+"/pods?watch=1&fieldSelector=metadata.name%3D"+name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return
	}
	if err := cmd.Start(); err != nil {
		return
	}
	defer cmd.Wait()
	dec := json.NewDecoder(bufio.NewReader(stdout))
	for {
		var ev struct {
			Type   string `json:"type"`
			Object pod    `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return
		}
		for _, cs := range ev.Object.Status.ContainerStatuses {
			if cs.Name == "app" && cs.State.Terminated != nil {
				out <- cs
				return
			}
		}
	}
}

// TestClusterInitContainer runs an image that knows nothing about
// entrypoint (k8s-local's webapp: it binds :8080 itself) with the binary
// copied in by the init container.
func TestClusterInitContainer(t *testing.T) {
	c := newCluster(t)
	const rel = "e2e-init"
	if _, err := c.run(time.Minute, c.kubectl, "get", "namespace", namespace); err != nil {
		c.run(time.Minute, c.kubectl, "create", "namespace", namespace)
	}
	epRepo, epTag := splitImage(c.imgEP)
	plainRepo, plainTag := splitImage(c.imgPlain)
	values := writeValues(t, fmt.Sprintf(`
mode: initContainer
image: {repository: %q, tag: %q, pullPolicy: Never}
entrypoint:
  image: {repository: %q, tag: %q, pullPolicy: Never}
  logFormat: text
command: ["/webapp", "serve"]
# The app binds its own port: entrypoint owns no socket, and the http gate
# waits for the app's own health check.
listeners: []
readiness: {type: http, address: "http://127.0.0.1:8080/healthz"}
termination: {preStopDelay: 1s, drainTimeout: 5s}
tests: {enabled: false}
`, plainRepo, plainTag, epRepo, epTag))
	t.Cleanup(func() {
		if os.Getenv("ENTRYPOINT_E2E_KEEP") != "1" && !t.Failed() {
			c.run(3*time.Minute, c.helm, "uninstall", "-n", namespace, rel, "--wait")
		}
	})
	start := time.Now()
	if _, err := c.run(5*time.Minute, c.helm, "install", rel, c.chart, "-n", namespace, "-f", values, "--wait", "--timeout", "90s"); err != nil {
		pods, _ := c.k("get", "pods", "-l", "app.kubernetes.io/instance="+rel, "-o", "wide")
		initLogs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+rel, "-c", "install-entrypoint", "--tail", "20")
		logs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+rel, "-c", "app", "--tail", "20")
		t.Fatalf("%v\n%s\ninit container install-entrypoint (%q + the directory):\n%s\napp container:\n%s",
			strings.SplitN(err.Error(), "\n", 2)[0], pods, "/entrypoint install", initLogs, logs)
	}
	p := c.waitReadyPods(rel, 1, time.Minute)[0]
	measure(t, "initContainer mode: %s under a copied entrypoint Ready in %s", c.imgPlain, time.Since(start).Round(time.Millisecond))
	cmdline := c.mustK("exec", p.Metadata.Name, "-c", "app", "--", "/webapp", "cat", "/proc/1/cmdline")
	if !strings.HasPrefix(cmdline, "/opt/entrypoint/entrypoint") {
		t.Errorf("PID 1 is %q, want /opt/entrypoint/entrypoint", strings.ReplaceAll(cmdline, "\x00", " "))
	}
	code, body, err := httpGet("http://"+p.Status.PodIP+":8080/", 3*time.Second)
	if err != nil || code != 200 {
		t.Errorf("app behind the copied entrypoint: %d %v %s", code, err, body)
	}
	st, err := c.status(p.Metadata.Name, "/opt/entrypoint/entrypoint")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Apps[0].Ready {
		t.Errorf("status: %+v", st)
	}
	if out, err := c.k("exec", p.Metadata.Name, "-c", "app", "--", "/opt/entrypoint/kill", "-0", "1"); err != nil {
		t.Errorf("the kill personality next to the copied binary: %v %s", err, out)
	}
}

// TestClusterDefaults installs the chart with nothing but the image
// names: the defaults alone must give a Ready pod and a passing helm test.
func TestClusterDefaults(t *testing.T) {
	c := newCluster(t)
	const rel = "e2e-defaults"
	if _, err := c.run(time.Minute, c.kubectl, "get", "namespace", namespace); err != nil {
		c.run(time.Minute, c.kubectl, "create", "namespace", namespace)
	}
	demoRepo, demoTag := splitImage(c.imgDemo)
	epRepo, epTag := splitImage(c.imgEP)
	t.Cleanup(func() {
		if os.Getenv("ENTRYPOINT_E2E_KEEP") != "1" && !t.Failed() {
			c.run(3*time.Minute, c.helm, "uninstall", "-n", namespace, rel, "--wait")
		}
	})
	start := time.Now()
	if _, err := c.run(5*time.Minute, c.helm, "install", rel, c.chart, "-n", namespace, "--wait", "--timeout", "90s",
		"--set", "image.repository="+demoRepo+",image.tag="+demoTag+",image.pullPolicy=Never",
		"--set", "entrypoint.image.repository="+epRepo+",entrypoint.image.tag="+epTag+",entrypoint.image.pullPolicy=Never"); err != nil {
		pods, _ := c.k("get", "pods", "-l", "app.kubernetes.io/instance="+rel, "-o", "wide")
		logs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+rel, "--tail", "20")
		t.Fatalf("%v\n%s\n%s", err, pods, logs)
	}
	if out, err := c.run(3*time.Minute, c.helm, "test", rel, "-n", namespace, "--logs", "--timeout", "90s"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, "readyz check passed") {
		t.Errorf("helm test log lacks the /readyz?verbose answer:\n%s", out)
	}
	measure(t, "defaults: helm install with only the image names Ready and helm test passed in %s", time.Since(start).Round(time.Millisecond))
}
