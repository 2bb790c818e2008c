package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/takeover"
)

// checkTakeover finds out once, before the first app starts, whether the
// kernel and runtime let the shim trap bind(): the kernel's answers first,
// then a probe that installs the filter for real, since only that shows
// another listener in the process tree or a profile that forbids
// seccomp().
func (s *Supervisor) checkTakeover() error {
	s.takeoverOnce.Do(func() { s.takeoverErr = s.procs.takeoverProbe() })
	return s.takeoverErr
}

// probeTimeout bounds the start-up probe's answer; the shim gives it in
// a few milliseconds.
const probeTimeout = 5 * time.Second

// probeTakeover is the check of a running init, through reaper r, with
// the exec shim its generations use.
func probeTakeover(r *reaper.Reaper, sh *graceful.ExecShim) error {
	if err := takeover.Check(); err != nil {
		return err
	}
	ch, err := takeover.NewChannel()
	if err != nil {
		return err
	}
	pid, exit, err := r.Start(func() (int, error) { return graceful.SpawnProbe(ch.Child(), sh) })
	if err != nil {
		ch.Close()
		return err
	}
	// Bounded: no app starts before the probe's answer. A probe that
	// hangs (stopped, or stuck in a runtime's seccomp agent) means no
	// takeover, not no container.
	fd, err := ch.Receive(probeTimeout)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		select {
		case <-exit: // reaped: its pid may be someone else's now
		default:
			_ = syscall.Kill(pid, syscall.SIGKILL) // the reaper collects it
		}
		return fmt.Errorf("the takeover probe did not answer within %s", probeTimeout)
	}
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// setupTakeover decides whether a's generations get the takeover: it
// needs listeners, the mode not off, and a kernel that allows it. "on"
// turns unavailability into a start-up error; "auto" says it once.
func (a *app) setupTakeover() error {
	switch {
	case len(a.cfg.Listen) == 0:
		return nil
	case a.cfg.Takeover == "off":
		a.takeoverState = status.TakeoverOff
		return nil
	}
	err := a.s.checkTakeover()
	if err == nil {
		a.takeover = true
		a.takeoverState = status.TakeoverActive
		a.log.Info("bind takeover active: the app's own bind() of a listened address gets the owned socket", "listen", a.sockets.Addrs())
		return nil
	}
	if a.cfg.Takeover == "on" {
		return fmt.Errorf("app %s: --takeover on, but the bind takeover is unavailable: %w; use --takeover auto to run without it", a.cfg.Name, err)
	}
	if a.cfg.Readiness.Type == "listen" {
		// Every generation would fail its gate: a crash loop that says
		// less than this.
		return fmt.Errorf("app %s: --readiness listen waits for the bind takeover, which is unavailable here: %w; use --readiness auto (READY=1) or tcp, http, exec", a.cfg.Name, err)
	}
	a.takeoverState = status.TakeoverUnavailable + ": " + err.Error()
	a.log.Warn("bind takeover unavailable; apps that take their sockets from fds 3.. (LISTEN_FDS, SERVER_STARTER_PORT) still swap, but an app that binds a listened address itself will fail with address already in use", "reason", err.Error())
	return nil
}

// genTakeover is the takeover side of one generation: its Session once
// the shim answered, and listened, closed when the gate may pass.
type genTakeover struct {
	listened chan struct{}
	addrs    []string

	mu      sync.Mutex
	sess    *takeover.Session
	problem string
	closed  bool
}

// startTakeover receives g's notification fd from the shim and answers
// its calls. It never blocks the caller.
func (a *app) startTakeover(g *gen, ch *takeover.Channel) *genTakeover {
	t := &genTakeover{listened: make(chan struct{}), addrs: a.sockets.Addrs()}
	files := g.socks.Files()
	var ls []takeover.Listener
	for i, addr := range t.addrs {
		if !strings.HasPrefix(addr, "unix:") {
			ls = append(ls, takeover.Listener{Addr: addr, File: files[i]})
		}
	}
	go func() {
		fd, err := ch.Receive(0)
		if err != nil {
			var refused *takeover.Refused
			if errors.As(err, &refused) {
				a.log.Error("bind takeover refused for this generation; it runs without it", "generation", g.n, "reason", err.Error())
				t.setProblem("bind takeover refused: " + err.Error())
			}
			return
		}
		sess, err := takeover.Serve(fd, takeover.Options{
			Listeners: ls,
			Logger:    a.log.With("generation", g.n),
			Count:     func(call, result string) { a.s.events.TakeoverCall(a.cfg.Name, call, result) },
		})
		if err != nil {
			a.log.Error("bind takeover", "generation", g.n, "err", err)
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			sess.Close()
			return
		}
		t.sess = sess
		t.mu.Unlock()
		select {
		case <-sess.Listened():
			close(t.listened)
		case <-g.exited:
		}
	}()
	return t
}

func (t *genTakeover) setProblem(p string) {
	t.mu.Lock()
	t.problem = p
	t.mu.Unlock()
}

// Problem is what went wrong in the takeover, for a failure reason.
func (t *genTakeover) Problem() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess != nil {
		if p := t.sess.Problem(); p != "" {
			return p
		}
	}
	return t.problem
}

// Unlistened names the owned addresses g has not listened on.
func (t *genTakeover) Unlistened() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sess != nil {
		return t.sess.Pending()
	}
	return t.addrs
}

// close ends the session once the generation has exited.
func (t *genTakeover) close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.closed = true
	sess := t.sess
	t.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
}

// bindHint explains a generation that died before it was ready when the
// likely cause is the app binding a port the init holds: the takeover's
// refusal, or, without the takeover, the app's own "address already in
// use".
func (a *app) bindHint(g *gen) string {
	if p := g.take.Problem(); p != "" {
		return ": " + p
	}
	if a.takeover || a.sockets.Len() == 0 {
		return ""
	}
	why := "it is off (--takeover off)"
	if a.takeoverState != status.TakeoverOff {
		why = "it is " + a.takeoverState
	}
	return fmt.Sprintf("; if the app binds %s itself it fails with \"address already in use\": entrypoint holds that address, and the bind takeover that would hand it over is not running (%s); let the app take its socket from fd 3 (LISTEN_FDS) or turn the takeover on",
		strings.Join(a.sockets.Addrs(), ", "), why)
}
