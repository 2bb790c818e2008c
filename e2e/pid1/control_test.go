package pid1

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// inside runs the entrypoint CLI in p's container: its PID, mount and
// network namespaces, as kubectl exec does.
func (p *initProc) inside(args ...string) (string, string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"-t", fmt.Sprint(p.pid), "--pid", "--mount", "--net", "--", entrypointBin}, args...)
	return runCapture(ctx, "nsenter", argv...)
}

// apps returns the app names `entrypoint status --json` shows in p's
// container.
func (p *initProc) apps() []string {
	p.t.Helper()
	out, errOut, code := p.inside("status", "--json")
	if code != 0 {
		p.t.Fatalf("entrypoint status inside pid %d: exit %d\n%s%s", p.pid, code, out, errOut)
	}
	var st struct{ Apps []struct{ Name string } }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		p.t.Fatalf("status --json: %v\n%s", err, out)
	}
	var names []string
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	return names
}

// controlName is the default control socket name of the init p, as a
// process in its namespaces computes it.
func controlName(t *testing.T, p *initProc) string {
	t.Helper()
	var ids []string
	for _, ns := range []string{"pid", "mnt"} {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", p.pid, ns))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(link, ns+":["), "]"))
	}
	return "@entrypoint-control-" + strings.Join(ids, "-")
}

// Issue 11 item 1: the containers of a pod share one network namespace,
// so one abstract control socket name. Two inits there, each PID 1 of its
// own PID namespace (two containers): each gets its own control socket,
// the CLI inside one acts on that one only, and a caller from another PID
// namespace is refused by the server and an init of another PID
// namespace by the CLI.
func TestControlSocketPerContainerInSharedNetns(t *testing.T) {
	env := []string{"ENTRYPOINT_CONTROL_SOCKET="} // the default name
	a := start(t, startOpts{pid1: true, newNet: true, control: true, env: env}, "--name", "alpha", "--", "sh", "-c", "echo ready; exec sleep 1000")
	a.out.wait(t, "ready", 10*time.Second)
	b := start(t, startOpts{pid1: true, netOf: a.pid, control: true, env: env}, "--name", "beta", "--", "sh", "-c", "echo ready; exec sleep 1000")
	b.out.wait(t, "ready", 10*time.Second)

	same := func(path string) string {
		l, _ := os.Readlink(path)
		return l
	}
	if na, nb := same(fmt.Sprintf("/proc/%d/ns/net", a.pid)), same(fmt.Sprintf("/proc/%d/ns/net", b.pid)); na != nb || na == same("/proc/self/ns/net") {
		t.Fatalf("the two inits are not in one new network namespace: %s, %s", na, nb)
	}

	if got := fmt.Sprint(a.apps()); got != "[alpha]" {
		t.Errorf("status inside container A shows apps %s, want [alpha]", got)
	}
	if got := fmt.Sprint(b.apps()); got != "[beta]" {
		t.Errorf("status inside container B shows apps %s, want [beta] (B's CLI reached A's init)", got)
	}
	for _, p := range []*initProc{a, b} {
		if s := p.errOut.String(); strings.Contains(s, "control socket unavailable") {
			t.Errorf("init pid %d runs without a control socket:\n%s", p.pid, s)
		}
	}

	// The server refuses a caller from another PID namespace: this test
	// process, in A's network namespace but the host's PID namespace.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, code := runCapture(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", a.pid), "--",
		entrypointBin, "shutdown", "--control-socket", controlName(t, a))
	if code == 0 || !strings.Contains(errOut, "another PID namespace") {
		t.Errorf("shutdown of A from the host's PID namespace: exit %d, %s%s; want refused", code, out, errOut)
	}
	t.Logf("from the host's PID namespace: %s", errOut)
	if line := a.errOut.wait(t, "refusing a caller from another PID namespace", 10*time.Second); strings.Contains(line, "pid=0") {
		t.Errorf("refusal logs the caller as pid 0: %s", line)
	}

	// The CLI refuses an init of another PID namespace: B's CLI, told
	// A's socket by name.
	out, errOut, code = b.inside("shutdown", "--control-socket", controlName(t, a))
	if code == 0 || !strings.Contains(errOut, "belongs to an entrypoint in another PID namespace") {
		t.Errorf("shutdown of A's socket from inside B: exit %d, %s%s; want the CLI to refuse", code, out, errOut)
	}
	t.Logf("A's socket from inside B: %s", errOut)

	// shutdown inside B ends B, and only B. The CLI runs in B's PID
	// namespace, so the kernel kills it (exit -1) when B's PID 1 exits,
	// if that comes before the CLI's own exit; either way it said the
	// shutdown started.
	if out, errOut, code := b.inside("shutdown"); code != 0 && !(code == -1 && strings.Contains(out+errOut, "shutdown started")) {
		t.Fatalf("shutdown inside B: exit %d\n%s%s", code, out, errOut)
	}
	if code := b.wait(20 * time.Second); code != 143 && code != 0 {
		t.Errorf("B exited %d after shutdown", code)
	}
	select {
	case <-a.done:
		t.Fatalf("A ended (exit %d) after a shutdown asked inside B", a.code)
	default:
	}
	if got := fmt.Sprint(a.apps()); got != "[alpha]" {
		t.Errorf("after B's shutdown, status inside A shows %s", got)
	}
	if a.errOut.count("shutdown requested") != 0 {
		t.Errorf("A logged a shutdown request:\n%s", a.errOut.String())
	}
	a.signal(15)
	a.wait(20 * time.Second)
}
