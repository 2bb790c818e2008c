package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestClusterTakeover is issue 10's Kubernetes proof: an image that holds
// only a server that binds its own port (examples/selfbind, FROM scratch,
// no entrypoint inside), with entrypoint copied in by the chart's init
// container (mode: initContainer) and the bind takeover on, under the
// chart's RuntimeDefault seccomp profile and allowPrivilegeEscalation
// false. `kubectl exec POD -- kill -USR1 1` and a ConfigMap change each
// swap it with zero failed requests through the Service.
func TestClusterTakeover(t *testing.T) {
	c := newCluster(t)
	img := os.Getenv("E2E_IMAGE_SELFBIND")
	if img == "" {
		t.Fatal("E2E_IMAGE_SELFBIND must name the selfbind image loaded into the node (run.sh does it)")
	}
	const rel = "e2e-takeover"
	full := rel + "-entrypoint"
	if _, err := c.run(time.Minute, c.kubectl, "get", "namespace", namespace); err != nil {
		c.run(time.Minute, c.kubectl, "create", "namespace", namespace)
	}
	repo, tag := splitImage(img)
	epRepo, epTag := splitImage(c.imgEP)
	// readiness is the chart's default (auto): selfbind sends no READY=1,
	// its listen() on the owned socket is the signal.
	values := writeValues(t, fmt.Sprintf(`
mode: initContainer
image: {repository: %q, tag: %q, pullPolicy: Never}
entrypoint:
  image: {repository: %q, tag: %q, pullPolicy: Never}
  logFormat: text
command: ["/selfbind", "-addr", ":8080", "-lame-duck", "1s"]
listeners:
  - {name: http, port: 8080, servicePort: 80}
takeover: "on"
config:
  files:
    version.txt: "v1\n"
  debounce: 500ms
service: {type: NodePort}
termination: {preStopDelay: 1s, drainTimeout: 10s}
tests: {enabled: false}
`, repo, tag, epRepo, epTag))
	t.Cleanup(func() {
		if os.Getenv("ENTRYPOINT_E2E_KEEP") != "1" && !t.Failed() {
			c.run(3*time.Minute, c.helm, "uninstall", "-n", namespace, rel, "--wait")
		}
	})
	start := time.Now()
	if _, err := c.run(5*time.Minute, c.helm, "install", rel, c.chart, "-n", namespace, "-f", values, "--wait", "--timeout", "2m"); err != nil {
		pods, _ := c.k("get", "pods", "-l", "app.kubernetes.io/instance="+rel, "-o", "wide")
		logs, _ := c.k("logs", "-l", "app.kubernetes.io/instance="+rel, "-c", "app", "--tail", "30")
		t.Fatalf("%s\n%s\napp container:\n%s", strings.SplitN(err.Error(), "\n", 2)[0], pods, logs)
	}
	p := c.waitReadyPods(rel, 1, time.Minute)[0]
	podName := p.Metadata.Name
	measure(t, "takeover: %s (selfbind alone, binds :8080 itself) under a copied entrypoint Ready in %s", img, time.Since(start).Round(time.Millisecond))

	// The restrictions the issue names, as the pod runs them.
	sec := c.mustK("get", "pod", podName, "-o",
		`jsonpath={.spec.securityContext.seccompProfile.type} {.spec.containers[?(@.name=="app")].securityContext.allowPrivilegeEscalation}`)
	if sec != "RuntimeDefault false" {
		t.Errorf("pod seccompProfile / app allowPrivilegeEscalation = %q, want RuntimeDefault false", sec)
	}
	bin := "/opt/entrypoint/entrypoint"
	st, err := c.status(podName, bin)
	if err != nil {
		t.Fatal(err)
	}
	if a := st.Apps[0]; a.Takeover != "active" || !a.Ready {
		t.Fatalf("status: takeover %q ready %v, want active and ready", a.Takeover, a.Ready)
	}
	code, body, err := httpGet("http://"+p.Status.PodIP+":9090/readyz?verbose", 3*time.Second)
	if err != nil || code != 200 || !strings.Contains(body, "takeover-"+st.Apps[0].Name) {
		t.Errorf("/readyz?verbose: %d %v, want a takeover-%s line:\n%s", code, err, st.Apps[0].Name, body)
	}

	nodePort := strings.TrimSpace(c.mustK("get", "svc", full, "-o", `jsonpath={.spec.ports[?(@.name=="http")].nodePort}`))
	url := fmt.Sprintf("http://%s:%s/", c.nodeIP, nodePort)
	tr := startTraffic(url, 4)
	defer tr.stop()
	if _, ok := tr.waitFor(0, 30*time.Second, func(sample) bool { return true }); !ok {
		t.Fatalf("no answer through the Service at %s: %v", url, summarise(tr.since(0)).failures)
	}
	settled := func(after int) status {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st, err := c.status(podName, bin)
			if err == nil {
				a := st.Apps[0]
				if a.Ready && a.Current != nil && a.Current.N > after && len(a.Others) == 0 {
					return st
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no generation after %d serving alone within 2m: %+v %v", after, st, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	swap := func(what string, fire func(), gen int) status {
		t.Helper()
		before, _ := tr.last()
		mark := tr.mark()
		t0 := time.Now()
		fire()
		s, ok := tr.waitFor(mark, 3*time.Minute, func(s sample) bool { return s.pid != "" && s.pid != before.pid })
		if !ok {
			logs, _ := c.k("logs", podName, "-c", "app", "--tail", "30")
			t.Fatalf("%s: no answer from a new pid within 3m (old pid %s)\n%s", what, before.pid, logs)
		}
		st := settled(gen)
		// Keep the client going a little past the old generation's exit.
		time.Sleep(time.Second)
		w := summarise(tr.since(mark))
		measure(t, "takeover %s: generation %s (pid %s) -> %s (pid %s), first answer from the new one after %s; %d requests, %d failed",
			what, before.gen, before.pid, s.gen, s.pid, s.at.Sub(t0).Round(time.Millisecond), w.sent, w.failed)
		if w.failed != 0 {
			t.Errorf("%s: %d of %d requests failed: %v", what, w.failed, w.sent, w.failures)
		}
		if a := st.Apps[0]; a.Takeover != "active" {
			t.Errorf("%s: status says takeover %q after the swap, want active", what, a.Takeover)
		}
		return st
	}

	st = swap("kubectl exec kill -USR1 1", func() {
		c.mustK("exec", podName, "-c", "app", "--", "/opt/entrypoint/kill", "-USR1", "1")
	}, st.Apps[0].Current.N)
	if la := st.Apps[0].LastAction; la == nil || !la.OK {
		t.Errorf("lastAction %+v, want a successful reload", la)
	}

	st = swap("ConfigMap patch", func() {
		patch, _ := json.Marshal(map[string]any{"data": map[string]string{"version.txt": "v2\n"}})
		c.mustK("patch", "configmap", full+"-config", "--type", "merge", "-p", string(patch))
	}, st.Apps[0].Current.N)
	if lc := st.Apps[0].LastChange; lc == nil || !lc.OK {
		t.Errorf("lastChange %+v, want a successful config swap", lc)
	}
	if rc := c.mustK("get", "pod", podName, "-o", `jsonpath={.status.containerStatuses[?(@.name=="app")].restartCount}`); rc != "0" {
		t.Errorf("app container restartCount %s, want 0", rc)
	}
}
