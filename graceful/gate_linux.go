package graceful

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/reaper"
)

// ErrNotReady is wrapped by every gate error that means "the generation did
// not become ready in time" (as opposed to ctx ending).
var ErrNotReady = errors.New("graceful: not ready")

// Gate decides when a new generation is ready.
type Gate interface {
	// Wait returns nil once t is ready, or an error saying why not:
	// a timeout wrapping ErrNotReady with the last failure, or ctx's
	// error. It does not watch the process; the caller races Wait against
	// the generation's exit and cancels ctx.
	Wait(ctx context.Context, t Target) error
}

// Target is the generation a gate waits for.
type Target struct {
	Pid    int            // the generation's pid (== its pgid)
	Notify *Notify        // the notify gate's socket
	Reaper *reaper.Reaper // the exec gate runs its command through it
	// Listened is closed once the generation listened on every owned
	// socket (the bind takeover saw it); nil without the takeover.
	Listened <-chan struct{}
	// Unlistened names the owned addresses not listened on yet, for the
	// listen and auto gates' timeout message.
	Unlistened func() []string
	// Sockets are handed to the exec gate's command as the app gets them.
	Sockets *Sockets
	// Env is the exec gate command's environment, built by CommandEnv
	// like the app's own; nil means CommandEnv(nil). ENTRYPOINT_APP_PID is
	// added to it.
	Env []string
	// Logger receives the gates' warnings (the notify gate's "no READY=1
	// yet" hint); nil means slog.Default().
	Logger *slog.Logger
}

func (t Target) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

// NewGate returns the gate r describes: "notify", "exec", "http", "tcp",
// "delay" or "none". A zero timeout or retry interval takes config's
// default (config.DefaultReadinessTimeout, DefaultReadinessRetry), as Load
// fills them in; the delay gate has no default delay, as in config.
func NewGate(r config.Readiness) (Gate, error) {
	timeout := r.Timeout.D()
	if timeout <= 0 {
		timeout = config.DefaultReadinessTimeout
	}
	retry := config.DefaultReadinessRetry
	if r.Delay > 0 {
		retry = r.Delay.D()
	}
	switch r.Type {
	case "none":
		return noneGate{}, nil
	case "notify":
		return notifyGate{timeout: timeout, hint: notifyHintAfter}, nil
	case "listen":
		return eventGate{timeout: timeout, listen: true}, nil
	case "auto":
		return eventGate{timeout: timeout, notify: true, listen: true}, nil
	case "delay":
		if r.Delay <= 0 {
			return nil, errors.New("readiness gate delay: no delay; set readiness.delay, like \"5s\"")
		}
		return delayGate{delay: r.Delay.D()}, nil
	case "exec":
		if len(r.Command) == 0 {
			return nil, errors.New("readiness gate exec: command is empty")
		}
		return execGate{argv: r.Command, every: retry, timeout: timeout}, nil
	case "http":
		u := r.Address
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("readiness gate http: address %q: want a URL like http://127.0.0.1:8081/healthz", r.Address)
		}
		return httpGate{url: pu.String(), every: retry, timeout: timeout}, nil
	case "tcp":
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			return nil, fmt.Errorf("readiness gate tcp: address %q: want host:port like 127.0.0.1:8081", r.Address)
		}
		return tcpGate{addr: r.Address, every: retry, timeout: timeout}, nil
	default:
		return nil, fmt.Errorf("readiness type %q: want auto, notify, listen, exec, http, tcp, delay or none", r.Type)
	}
}

type noneGate struct{}

func (noneGate) Wait(context.Context, Target) error { return nil }

type delayGate struct{ delay time.Duration }

func (g delayGate) Wait(ctx context.Context, _ Target) error {
	t := time.NewTimer(g.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("readiness gate delay: %w", ctx.Err())
	}
}

// notifyHintAfter is how long the notify gate waits for READY=1 before it
// says, once, that the app may never send it: an app that serves without
// sd_notify would otherwise sit silent until the gate's timeout (60 s).
const notifyHintAfter = 5 * time.Second

type notifyGate struct {
	timeout time.Duration
	hint    time.Duration // notifyHintAfter; shorter in tests
}

func (g notifyGate) Wait(ctx context.Context, t Target) error {
	if t.Notify == nil {
		return errors.New("readiness gate notify: the generation has no notify socket")
	}
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	var hint <-chan time.Time
	if g.hint > 0 && g.hint < g.timeout {
		h := time.NewTimer(g.hint)
		defer h.Stop()
		hint = h.C
	}
	for {
		select {
		case <-t.Notify.Ready():
			return nil
		case <-hint:
			hint = nil
			t.logger().Warn("readiness gate notify: no READY=1 yet; if the app does not send it (sd_notify), set --readiness to "+
				"auto (READY=1 or listen() on every owned socket), listen, exec, http, tcp, delay or none",
				"pid", t.Pid, "waited", g.hint, "timeout", g.timeout)
		case <-timer.C:
			return &notReady{msg: "readiness gate notify: no READY=1 within " + seconds(g.timeout) +
				"; an app that does not send it needs another --readiness (auto, listen, exec, http, tcp, delay or none)"}
		case <-ctx.Done():
			return fmt.Errorf("readiness gate notify: %w", ctx.Err())
		}
	}
}

// eventGate waits for READY=1, for listen() on every owned socket, or, as
// the default "auto", for whichever comes first: an app written for
// sd_notify is ready when it says so, an app whose bind() was taken over
// when it accepts.
type eventGate struct {
	timeout        time.Duration
	notify, listen bool
}

func (g eventGate) Wait(ctx context.Context, t Target) error {
	var ready, listened <-chan struct{}
	if g.notify && t.Notify != nil {
		ready = t.Notify.Ready()
	}
	if g.listen {
		listened = t.Listened
	}
	name := "listen"
	if g.notify {
		name = "auto"
	}
	if ready == nil && listened == nil {
		return fmt.Errorf("readiness gate %s: the generation has neither a notify socket nor the bind takeover", name)
	}
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-listened:
		return nil
	case <-timer.C:
		return &notReady{msg: g.timeoutMessage(name, t)}
	case <-ctx.Done():
		return fmt.Errorf("readiness gate %s: %w", name, ctx.Err())
	}
}

// timeoutMessage says what did not happen and which flag fits an app that
// does neither: one that takes its sockets from fds 3.. and never listens.
func (g eventGate) timeoutMessage(name string, t Target) string {
	var what []string
	if g.notify && t.Notify != nil {
		what = append(what, "sent READY=1")
	}
	if t.Listened != nil {
		addrs := "its listeners"
		if t.Unlistened != nil {
			if u := t.Unlistened(); len(u) > 0 {
				addrs = strings.Join(u, ", ")
			}
		}
		what = append(what, "listened on "+addrs)
	} else if g.listen && g.notify {
		what = append(what, "listened (the bind takeover is off or unavailable)")
	}
	did := "has not " + what[0]
	if len(what) == 2 {
		did = "has neither " + what[0] + " nor " + what[1]
	}
	return fmt.Sprintf("readiness gate %s: within %s the app %s; an app that takes its sockets from fds 3.. and does neither needs --readiness delay (or exec, http, tcp, none)",
		name, seconds(g.timeout), did)
}

// poll calls try every interval until it succeeds, the timeout passes (the
// error wraps ErrNotReady and try's last error) or ctx ends. try gets a
// context bounded by the timeout.
func poll(ctx context.Context, name string, timeout, every time.Duration, try func(context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := try(tctx)
		if err == nil {
			return nil
		}
		// An attempt cut short by the deadline says less than the
		// failure before it.
		if last == nil || tctx.Err() == nil {
			last = err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("readiness gate %s: %w", name, ctx.Err())
		}
		t := time.NewTimer(every)
		select {
		case <-t.C:
		case <-tctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return fmt.Errorf("readiness gate %s: %w", name, ctx.Err())
			}
			return &notReady{msg: "readiness gate " + name + ": not ready within " + seconds(timeout) + ": " + last.Error(), last: last}
		}
	}
}

type execGate struct {
	argv    []string
	every   time.Duration
	timeout time.Duration
}

func (g execGate) Wait(ctx context.Context, t Target) error {
	if t.Reaper == nil {
		return errors.New("readiness gate exec: no reaper")
	}
	env := t.Env
	if env == nil {
		env = CommandEnv(nil)
	}
	env = append(slices.Clip(env), "ENTRYPOINT_APP_PID="+strconv.Itoa(t.Pid))
	return poll(ctx, "exec", g.timeout, g.every, func(ctx context.Context) error {
		out, code, err := Run(ctx, t.Reaper, Command{Argv: g.argv, Env: env, Sockets: t.Sockets})
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("%s exited %d: %s", g.argv[0], code, tail(out, 512))
		}
		return nil
	})
}

type httpGate struct {
	url     string
	every   time.Duration
	timeout time.Duration
}

func (g httpGate) Wait(ctx context.Context, _ Target) error {
	client := &http.Client{
		// No proxy from the environment, no connection reuse: each probe
		// must reach the new generation itself.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// A redirect is an answer: 3xx counts as ready.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	return poll(ctx, "http", g.timeout, g.every, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %s: %s", g.url, resp.Status)
		}
		return nil
	})
}

type tcpGate struct {
	addr    string
	every   time.Duration
	timeout time.Duration
}

func (g tcpGate) Wait(ctx context.Context, _ Target) error {
	var d net.Dialer
	return poll(ctx, "tcp", g.timeout, g.every, func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", g.addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// notReady is a gate timeout: it matches ErrNotReady and the last failure.
type notReady struct {
	msg  string
	last error
}

func (e *notReady) Error() string { return e.msg }
func (e *notReady) Unwrap() []error {
	if e.last == nil {
		return []error{ErrNotReady}
	}
	return []error{ErrNotReady, e.last}
}

// seconds prints whole seconds as "60s" rather than "1m0s".
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// tail returns the last n bytes of out, trimmed, for an error message.
func tail(out []byte, n int) string {
	s := strings.TrimSpace(string(out))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
