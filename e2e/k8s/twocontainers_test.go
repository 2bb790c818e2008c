package k8s

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestClusterTwoContainers is issue 11 item 1 on a real pod: two
// containers, both under entrypoint, share the pod's network namespace
// (and so its abstract socket names). `kubectl exec -c` into each must
// reach that container's own init: status shows its own app, shutdown
// ends only that container.
func TestClusterTwoContainers(t *testing.T) {
	c := newCluster(t)
	const podName = "e2e-two-containers"
	if _, err := c.run(time.Minute, c.kubectl, "get", "namespace", namespace); err != nil {
		c.run(time.Minute, c.kubectl, "create", "namespace", namespace)
	}
	container := func(name string, port int) map[string]any {
		return map[string]any{
			"name": name, "image": c.imgDemo, "imagePullPolicy": "Never",
			// Own ports: the containers share one network namespace.
			"command": []string{"/entrypoint", "--name", name, "--listen", fmt.Sprintf(":%d", port),
				"--health-listen", fmt.Sprintf(":%d", port+1000), "--", "/app"},
			"securityContext": map[string]any{
				"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false,
				"readOnlyRootFilesystem": true, "capabilities": map[string]any{"drop": []string{"ALL"}},
			},
		}
	}
	manifest, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": podName, "namespace": namespace},
		"spec": map[string]any{
			"automountServiceAccountToken":  false,
			"terminationGracePeriodSeconds": 10,
			"containers":                    []any{container("one", 8081), container("two", 8082)},
		},
	})
	f := writeValues(t, string(manifest))
	t.Cleanup(func() {
		if os.Getenv("ENTRYPOINT_E2E_KEEP") != "1" && !t.Failed() {
			c.k("delete", "pod", podName, "--wait")
		}
	})
	c.k("delete", "pod", podName, "--ignore-not-found", "--wait")
	c.mustK("apply", "-f", f)
	if _, err := c.k("wait", "--for=condition=Ready", "pod/"+podName, "--timeout=2m"); err != nil {
		out, _ := c.k("describe", "pod", podName)
		t.Fatalf("%v\n%s", err, out)
	}

	exec := func(ctr string, args ...string) (string, error) {
		return c.run(time.Minute, c.kubectl, append([]string{"-n", namespace, "exec", podName, "-c", ctr, "--", "entrypoint"}, args...)...)
	}
	for _, ctr := range []string{"one", "two"} {
		out, err := c.stdout(time.Minute, c.kubectl, "-n", namespace, "exec", podName, "-c", ctr, "--", "entrypoint", "status", "--json")
		if err != nil {
			t.Fatalf("status in container %s: %v", ctr, err)
		}
		var st status
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Apps) != 1 {
			t.Fatalf("status in container %s: %v\n%s", ctr, err, out)
		}
		if st.Apps[0].Name != ctr {
			t.Errorf("entrypoint status in container %s shows app %q: it reached another container's init", ctr, st.Apps[0].Name)
		}
		logs, _ := c.k("logs", podName, "-c", ctr)
		if strings.Contains(logs, "control socket unavailable") {
			t.Errorf("container %s runs without a control socket:\n%s", ctr, logs)
		}
	}

	// shutdown in two ends two (the kubelet restarts it), and only two.
	// The CLI runs in two's PID namespace, so it may be killed with it
	// (exit 137) once it said the shutdown started; the restart count
	// below is the proof either way.
	if out, err := exec("two", "shutdown"); err != nil && !(strings.Contains(err.Error(), "exit status 137") || strings.Contains(out, "shutdown started")) {
		t.Fatalf("shutdown in container two: %v %s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := c.kJSON("get", "pod", podName, "-o", "json")
		var p pod
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		restarts := map[string]int{}
		for _, s := range p.Status.ContainerStatuses {
			restarts[s.Name] = s.RestartCount
		}
		if restarts["one"] != 0 {
			t.Fatalf("container one restarted (%d) after a shutdown asked in container two", restarts["one"])
		}
		if restarts["two"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container two did not end after entrypoint shutdown in it: %+v", p.Status.ContainerStatuses)
		}
		time.Sleep(time.Second)
	}
	if out, err := exec("one", "status", "--json"); err != nil || !strings.Contains(out, `"name": "one"`) {
		t.Errorf("container one after two's shutdown: %v %s", err, out)
	}
}
