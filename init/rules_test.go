package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/watch"
)

// These tests run three rules that e2e/ covered alone until now on fake
// processes in virtual time: a watched config change (validate, then
// act), the bind takeover decision, and --signal-target.

// onLoop builds a supervisor of app "web" with args and brings generation
// 1 up the way app.run does (startFirst), with the test goroutine as the
// app's run goroutine.
//
// The test calls a.onChange itself rather than running Supervisor.Run: a
// change reaches onChange through watchLoop (watch.go), which reads a real
// *watch.Watcher, and app.run hands it the concrete watcher with no seam.
// The watcher reads inotify through the runtime poller, and a goroutine
// parked there is not durably blocked, so virtual time in the bubble would
// never advance. Calling onChange with the Change watchLoop would deliver,
// on the one goroutine run calls it on, drives it as the code expects;
// with no Run loop nothing else acts on the app meanwhile.
func onLoop(t *testing.T, args ...string) (*harness, *app, *fakeProc) {
	t.Helper()
	h, err := build(t, newWorld(), webArgs(args...)...)
	if err != nil {
		t.Fatal(err)
	}
	a := h.s.apps[0]
	up := h.w.serveNext()
	if !a.startFirst() {
		t.Fatal("generation 1 did not come up")
	}
	return h, a, <-up
}

// endLoop shuts the app down as app.run does once shutdown begins.
func endLoop(h *harness, a *app) {
	a.stop(0)
	a.stopAll()
	a.busy(a.drains.Wait)
	h.s.closeSockets()
}

// changed is the Change watchLoop delivers after the watched content
// changed.
func changed(a *app) watch.Change {
	return watch.Change{Hash: "f00dfeedf00dfeed", Previous: a.watcher.Hash(), At: time.Now()}
}

// inOrder fails t unless every entry is in trace and each one's first
// occurrence comes after the previous one's.
func inOrder(t *testing.T, trace []string, entries ...string) {
	t.Helper()
	last := -1
	for _, e := range entries {
		i := slices.Index(trace, e)
		if i <= last {
			t.Fatalf("want %q in this order, got %q", entries, trace)
		}
		last = i
	}
}

var validateArgv = []string{"/bin/check", "-c", "/etc/web.conf"}

// A watched change whose validate command fails (non-zero exit, an error,
// or still running at validateTimeout, then killed) is rejected whatever
// onChange says: the old generation keeps serving untouched, nothing
// starts, and lastChange and the ConfigChange event say why.
func TestConfigChangeValidateFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		validate func(ctx context.Context, cmd graceful.Command) ([]byte, int, error)
		took     time.Duration
		reason   []string
		output   string
	}{
		{
			name: "non-zero exit",
			validate: func(context.Context, graceful.Command) ([]byte, int, error) {
				time.Sleep(time.Second)
				return []byte("line 3: unknown directive\n"), 1, nil
			},
			took:   time.Second,
			reason: []string{"/bin/check -c /etc/web.conf] failed: exit code 1"},
			output: "line 3: unknown directive\n",
		},
		{
			name: "error",
			validate: func(context.Context, graceful.Command) ([]byte, int, error) {
				return nil, -1, errors.New("run /bin/check: permission denied")
			},
			reason: []string{"failed: run /bin/check: permission denied"},
		},
		{
			// An error rejects whatever the code: graceful.Run reports a
			// cancelled run of a command that had just exited 0 so.
			name: "error with exit code 0",
			validate: func(context.Context, graceful.Command) ([]byte, int, error) {
				return nil, 0, errors.New("run /bin/check: context canceled")
			},
			reason: []string{"failed: run /bin/check: context canceled"},
		},
		{
			name: "timeout",
			// As graceful.Run: the command is killed when ctx ends.
			validate: func(ctx context.Context, cmd graceful.Command) ([]byte, int, error) {
				<-ctx.Done()
				return []byte("checking\n"), 137, fmt.Errorf("run %s: %w", cmd.Argv[0], ctx.Err())
			},
			took:   4 * time.Second,
			reason: []string{"did not finish within 4s (validateTimeout)", "killed"},
			output: "checking\n",
		},
	} {
		for _, onChange := range []string{"swap", "restart", "signal:SIGHUP"} {
			t.Run(tc.name+"/"+onChange, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h, a, g1 := onLoop(t, "--watch", t.TempDir(), "--validate", strings.Join(validateArgv, " "),
						"--validate-timeout", "4s", "--on-change", onChange)
					var during status.AppStatus
					var got graceful.Command
					h.w.validate = func(ctx context.Context, cmd graceful.Command) ([]byte, int, error) {
						got, during = cmd, h.app()
						return tc.validate(ctx, cmd)
					}
					start := time.Now()
					a.onChange(changed(a))
					if d := time.Since(start); d != tc.took {
						t.Errorf("the change took %v, want %v", d, tc.took)
					}
					if !slices.Equal(got.Argv, validateArgv) {
						t.Errorf("validate ran %q, want %q", got.Argv, validateArgv)
					}
					if v := during.Validating; v == nil || !slices.Equal(v.Command, validateArgv) || v.Timeout != 4*time.Second {
						t.Errorf("status while validating: %+v", v)
					}
					if !during.Ready || during.Current == nil || during.Current.N != 1 {
						t.Errorf("generation 1 not serving while validating: %+v", during)
					}
					synctest.Wait()
					want := []string{fmt.Sprintf("start %d", g1.pid), "run /bin/check"}
					if tr := h.w.trace(); !slices.Equal(tr, want) {
						t.Fatalf("a rejected change did %q, want only %q", tr, want)
					}
					st := h.app()
					if !st.Ready || st.State != status.StateRunning || st.Current == nil || st.Current.Pid != g1.pid || st.Validating != nil {
						t.Errorf("after the rejected change: %+v", st)
					}
					lc := st.LastChange
					if lc == nil || lc.OK || lc.Action != "config" || lc.Output != tc.output || lc.To != 1 || lc.Pid != g1.pid || lc.Duration != tc.took {
						t.Fatalf("lastChange %+v", lc)
					}
					for _, r := range tc.reason {
						if !strings.Contains(lc.Reason, r) {
							t.Errorf("reason %q does not say %q", lc.Reason, r)
						}
					}
					if ev := h.events.configChanges(); !slices.Equal(ev, []string{"validate_failed"}) {
						t.Errorf("ConfigChange events %q, want validate_failed", ev)
					}
					endLoop(h, a)
				})
			})
		}
	}
}

// Shutdown during validation ends the command; the change was not judged,
// so it is neither a rejection in the status nor in the metrics.
func TestConfigChangeDroppedAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, a, _ := onLoop(t, "--watch", t.TempDir(), "--validate", strings.Join(validateArgv, " "), "--validate-timeout", "4s")
		h.w.validate = func(ctx context.Context, cmd graceful.Command) ([]byte, int, error) {
			<-ctx.Done()
			return nil, 137, fmt.Errorf("run %s: %w", cmd.Argv[0], ctx.Err())
		}
		go func() {
			time.Sleep(time.Second)
			a.stop(0)
		}()
		a.onChange(changed(a))
		if lc := h.app().LastChange; lc != nil {
			t.Errorf("a change cut short by shutdown was recorded: %+v", lc)
		}
		if ev := h.events.configChanges(); len(ev) != 0 {
			t.Errorf("ConfigChange events %q, want none", ev)
		}
		if !strings.Contains(h.logs.String(), "config change dropped: shutting down") {
			t.Errorf("the log does not say the change was dropped:\n%s", h.logs.String())
		}
		endLoop(h, a)
	})
}

// A watched change whose validate command passes is applied as onChange
// says, only once the command has ended: "swap" (the default) starts N+1
// while N serves and drains N after, "restart" drains N before N+1
// starts, "signal:NAME" sends NAME to the app's group and starts nothing.
func TestConfigChangeApplied(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		to     int    // generation serving after
		event  string // ConfigChange result
		reason string // lastChange reason
		order  func(g1, g2 int) []string
	}{
		{
			name: "swap by default", to: 2, event: "applied",
			order: func(g1, g2 int) []string {
				return []string{"run /bin/check", fmt.Sprintf("start %d", g2), fmt.Sprintf("kill %d SIGTERM", -g1)}
			},
		},
		{
			name: "restart", args: []string{"--on-change", "restart"}, to: 2, event: "applied",
			order: func(g1, g2 int) []string {
				return []string{"run /bin/check", fmt.Sprintf("kill %d SIGTERM", -g1), fmt.Sprintf("exit %d", g1), fmt.Sprintf("start %d", g2)}
			},
		},
		{
			name: "signal", args: []string{"--on-change", "signal:SIGHUP"}, to: 1, event: "signalled", reason: "sent SIGHUP",
			order: func(g1, _ int) []string {
				return []string{"run /bin/check", fmt.Sprintf("kill %d SIGHUP", -g1)}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, a, g1 := onLoop(t, append([]string{"--watch", t.TempDir(), "--validate", strings.Join(validateArgv, " ")}, tc.args...)...)
				h.w.validate = func(context.Context, graceful.Command) ([]byte, int, error) {
					time.Sleep(2 * time.Second)
					return []byte("ok\n"), 0, nil
				}
				var up <-chan *fakeProc
				if tc.to != 1 {
					up = h.w.serveNext()
				}
				start := time.Now()
				a.onChange(changed(a))
				g2 := 0
				var acted time.Time
				if up != nil {
					p := <-up
					g2, acted = p.pid, p.started
				} else {
					g1.mu.Lock()
					at := slices.Clone(g1.sigAt)
					g1.mu.Unlock()
					if len(at) == 0 {
						t.Fatalf("generation 1 got no signal; did %q", h.w.trace())
					}
					acted = at[0]
				}
				if d := acted.Sub(start); d < 2*time.Second {
					t.Errorf("acted %v after the change, before validate's 2s were over", d)
				}
				synctest.Wait()
				inOrder(t, h.w.trace(), tc.order(g1.pid, g2)...)
				h.w.none(t)
				st := h.app()
				if !st.Ready || st.Current == nil || st.Current.N != tc.to {
					t.Errorf("after the change: %+v", st)
				}
				lc := st.LastChange
				if lc == nil || !lc.OK || lc.Action != "config" || lc.Reason != tc.reason || lc.To != tc.to {
					t.Errorf("lastChange %+v", lc)
				}
				if ev := h.events.configChanges(); !slices.Equal(ev, []string{tc.event}) {
					t.Errorf("ConfigChange events %q, want %s", ev, tc.event)
				}
				if tc.to == 1 && !slices.Equal(g1.signals(), []syscall.Signal{syscall.SIGHUP}) {
					t.Errorf("generation 1 got %v, want SIGHUP", g1.signals())
				}
				endLoop(h, a)
			})
		})
	}
}

// The bind takeover needs listeners and is asked about once: "auto" runs
// without it when the probe says it is unavailable (status says why),
// "on" refuses to start then, "off" never probes. Generations get the
// shim's end of the channel only when it is active.
func TestTakeoverDecision(t *testing.T) {
	unavailable := errors.New("seccomp user notification needs Linux 5.9")
	// The gate is fake anyway; "none" keeps the notify socket of "auto",
	// read through the runtime poller, out of the bubble.
	listen := []string{"--listen", "127.0.0.1:0", "--readiness", "none"}
	for _, tc := range []struct {
		name    string
		args    []string
		probe   error
		probes  int
		refused []string // what the start-up error says, when refused
		state   string   // status Takeover
	}{
		{name: "auto, available", args: listen, probes: 1, state: status.TakeoverActive},
		{name: "auto, unavailable", args: listen, probe: unavailable, probes: 1, state: status.TakeoverUnavailable + ": " + unavailable.Error()},
		{name: "on, available", args: append([]string{"--takeover", "on"}, listen...), probes: 1, state: status.TakeoverActive},
		{name: "on, unavailable", args: append([]string{"--takeover", "on"}, listen...), probe: unavailable, probes: 1, refused: []string{"app web", "--takeover on", unavailable.Error(), "--takeover auto"}},
		{name: "auto, unavailable, listen gate", args: []string{"--listen", "127.0.0.1:0", "--readiness", "listen"}, probe: unavailable, probes: 1, refused: []string{"app web", "--readiness listen", unavailable.Error(), "--readiness auto"}},
		{name: "off", args: append([]string{"--takeover", "off"}, listen...), state: status.TakeoverOff},
		{name: "no listeners", args: []string{"--takeover", "on"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld()
				w.probeErr = tc.probe
				h, err := build(t, w, webArgs(tc.args...)...)
				if w.probes != tc.probes {
					t.Errorf("%d probes, want %d", w.probes, tc.probes)
				}
				if tc.refused != nil {
					if err == nil {
						t.Fatal("started without the takeover it needs")
					}
					for _, s := range tc.refused {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("error %q does not say %q", err, s)
						}
					}
					if !errors.Is(err, unavailable) {
						t.Errorf("error %v does not wrap the probe's", err)
					}
					w.none(t)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				h.start()
				g1 := w.next()
				if active := g1.spec.Takeover != nil; active != (tc.state == status.TakeoverActive) {
					t.Errorf("generation 1 got the takeover: %v, with state %q", active, tc.state)
				}
				g1.becomeReady()
				synctest.Wait()
				if st := h.app(); !st.Ready || st.Takeover != tc.state {
					t.Errorf("status: ready %v, takeover %q; want ready, %q", st.Ready, st.Takeover, tc.state)
				}
				h.stop()
			})
		})
	}
}

// Forwarded signals, and the stop signal, go to the app's process group
// by default and to its main process alone with --signal-target child,
// whose group gets the stop signal only once the main process is gone.
func TestSignalTarget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		order func(pid int) []string
		never func(pid int) []string
	}{
		{
			name: "group by default",
			order: func(pid int) []string {
				return []string{fmt.Sprintf("kill %d SIGWINCH", -pid), fmt.Sprintf("kill %d SIGTERM", -pid), fmt.Sprintf("exit %d", pid)}
			},
			never: func(pid int) []string {
				return []string{fmt.Sprintf("kill %d SIGWINCH", pid), fmt.Sprintf("kill %d SIGTERM", pid)}
			},
		},
		{
			name: "child",
			args: []string{"--signal-target", "child"},
			order: func(pid int) []string {
				return []string{fmt.Sprintf("kill %d SIGWINCH", pid), fmt.Sprintf("kill %d SIGTERM", pid), fmt.Sprintf("exit %d", pid), fmt.Sprintf("kill %d SIGTERM", -pid)}
			},
			never: func(pid int) []string {
				return []string{fmt.Sprintf("kill %d SIGWINCH", -pid)}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, g1 := run(t, tc.args...)
				g1.becomeReady()
				synctest.Wait()
				h.sigs <- syscall.SIGWINCH
				synctest.Wait()
				if s := g1.signals(); !slices.Equal(s, []syscall.Signal{syscall.SIGWINCH}) {
					t.Fatalf("app got %v, want SIGWINCH", s)
				}
				h.stop()
				tr := h.w.trace()
				inOrder(t, tr, tc.order(g1.pid)...)
				for _, e := range tc.never(g1.pid) {
					if slices.Contains(tr, e) {
						t.Errorf("%q in %q", e, tr)
					}
				}
			})
		})
	}
}
