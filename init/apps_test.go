package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
)

// runTwo starts apps "a" and "b" (restart policy exit) and returns their
// first generations, both ready.
func runTwo(t *testing.T) (*harness, map[string]*fakeProc) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	yaml := "health: {listen: \"off\"}\napps:\n- name: a\n  command: [/fake/a]\n- name: b\n  command: [/fake/b]\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	h := runConfig(t, "--config", file)
	ps := []*fakeProc{h.w.next(), h.w.next()}
	gens := map[string]*fakeProc{}
	for _, p := range ps {
		p.becomeReady()
	}
	synctest.Wait()
	for _, p := range ps {
		gens[h.nameOf(p)] = p
	}
	return h, gens
}

// nameOf is the app whose current or other generation p is.
func (h *harness) nameOf(p *fakeProc) string {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	for _, a := range h.s.apps {
		for _, g := range append(slices.Clone(a.others), a.cur) {
			if g != nil && g.pid == p.pid {
				return a.cfg.Name
			}
		}
	}
	return ""
}

// A forwarded signal reaches every app before it is counted for any
// (issue 13: the apps wait on the kill, not on the bookkeeping), and an
// app that was never ready gets it queued, logged before the kills' lines.
func TestSignalReachesEveryAppBeforeTheBookkeeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, gens := runTwo(t)
		h.events.w = h.w
		h.sigs <- syscall.SIGWINCH
		synctest.Wait()
		a, b := -gens["a"].pid, -gens["b"].pid
		inOrder(t, h.w.trace(),
			fmt.Sprintf("kill %d SIGWINCH", a), fmt.Sprintf("kill %d SIGWINCH", b),
			"forwarded a SIGWINCH", "forwarded b SIGWINCH")
		logs := h.logs.String()
		if strings.Count(logs, `msg="signal forwarded"`) != 2 {
			t.Errorf("want two 'signal forwarded' lines:\n%s", logs)
		}
		h.stop()
	})
}

// SIGUSR1 swaps every app one after the other, in config order, from
// Run's loop.
func TestSignalSwapsAppsInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := runTwo(t)
		h.sigs <- syscall.SIGUSR1
		a2 := h.w.next()
		synctest.Wait()
		if n := h.nameOf(a2); n != "a" {
			t.Fatalf("first swap was of %q", n)
		}
		h.w.none(t) // b waits for a's swap
		a2.becomeReady()
		b2 := h.w.next()
		synctest.Wait()
		if n := h.nameOf(b2); n != "b" {
			t.Fatalf("second swap was of %q", n)
		}
		b2.becomeReady()
		synctest.Wait()
		h.w.none(t)
		for _, a := range h.s.Status().Apps {
			if a.Current == nil || a.Current.N != 2 || !a.Ready {
				t.Fatalf("after the round: %+v", a)
			}
		}
		h.stop()
	})
}

// Several apps fail together: one ending with the exit policy stops the
// others, and the init exits with the code of the one that ended.
func TestAppsFailTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, gens := runTwo(t)
		gens["b"].exitWith(3)
		if code := <-h.code; code != 3 {
			t.Fatalf("exit code %d, want 3", code)
		}
		if s := gens["a"].signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGTERM}) {
			t.Fatalf("app a got %v, want its stop signal", s)
		}
	})
}
