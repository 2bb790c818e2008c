package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

const (
	// startWriteTimeout bounds telling the caller an action starts; it is
	// written from the app's goroutine, which must not wait on a caller.
	startWriteTimeout = time.Second
	// hangUpWait bounds how long a shutdown waits for its caller to read
	// the answer and hang up; a CLI does so at once.
	hangUpWait = time.Second
)

// peer is a caller (or, for the client, the server) as the kernel
// recorded it at connect(2); pid is 0 for a process in a PID namespace
// that is neither ours nor below it.
type peer struct {
	pid int32
	uid uint32
}

// Options configure Serve.
type Options struct {
	// Logger receives the refusals and actions; nil means slog.Default().
	Logger *slog.Logger
	// AllowOtherPidns serves callers from a PID namespace that is neither
	// ours nor below it. By default they are refused: every container of
	// a pod shares the network namespace, so an abstract socket is
	// reachable from the pod's other containers.
	AllowOtherPidns bool
}

// Serve answers requests on l until ctx ends, then closes l and waits for
// the requests in flight (their actions see ctx cancelled). Each
// connection carries one JSON request and gets one JSON Response, after
// one Response{Started: app} for each app whose action started. Only peers
// running as root or as the init's own uid, in our PID namespace (unless
// o.AllowOtherPidns), are served. A caller that hangs up cancels its
// request: what has not started yet will not (the supervisor asks
// WithStartCheck, which looks at the connection, right before it starts).
// A shutdown starts only after its answer was written and the caller hung
// up, or a second later.
func Serve(ctx context.Context, l net.Listener, c status.Controller, o Options) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	s := &server{c: c, log: logger, uid: uint32(os.Getuid()), otherPidns: o.AllowOtherPidns}
	backoff := time.Duration(0)
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on control socket %s: %w", l.Addr(), err)
			}
			// EMFILE and friends pass; keep the socket rather than lose
			// the CLI for the rest of the container's life.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			logger.Warn("control socket accept failed; retrying", "err", err, "retryIn", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		wg.Go(func() { s.handle(ctx, conn) })
	}
}

type server struct {
	c          status.Controller
	log        *slog.Logger
	uid        uint32
	otherPidns bool
}

// call is one connection's conversation. The supervisor's start check
// and the hang-up watcher meet under mu, so a caller that left is never
// told nothing started while something did, and vice versa.
type call struct {
	conn net.Conn
	mu   sync.Mutex
	// over: the caller hung up, or the action returned; start nothing
	// more. left: the caller hung up before the action returned.
	over, left bool
	started    []string
}

// start is the supervisor's start check: false when the caller is gone;
// else it tells the caller that app's action starts now.
func (c *call) start(app string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The watcher may not have read the hang-up yet (a connection
	// accepted late, after its caller gave up): ask the kernel.
	if c.over || peerGone(c.conn) {
		c.over = true
		return false
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(startWriteTimeout))
	if err := json.NewEncoder(c.conn).Encode(Response{Started: app}); err != nil {
		c.over = true
		return false
	}
	c.started = append(c.started, app)
	return true
}

// hangUp records that the caller left while its action was pending.
func (c *call) hangUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		c.over, c.left = true, true
	}
}

// end closes the conversation to start checks; it says whether the
// caller had left and what had started by then.
func (c *call) end() (left bool, started []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.over = true
	return c.left, c.started
}

func (s *server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	c := &call{conn: conn}
	resp, then := s.answer(ctx, c)
	c.end()
	_ = conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		// A caller that gave up is gone (EPIPE); nothing to tell it.
		s.log.Debug("control socket: write response", "err", err)
	}
	if then != nil {
		// Answer first, act after: a shutdown may end the init, and with
		// it (in its PID namespace) the CLI, before a reply written
		// afterwards was read and shown.
		awaitHangUp(ctx, conn)
		then()
	}
}

// awaitHangUp waits until the caller closed conn (it read the answer),
// hangUpWait passed or ctx ended, whichever comes first.
func awaitHangUp(ctx context.Context, conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(hangUpWait))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	// What is left of the request (its newline) comes first, then EOF.
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, maxRequest))
}

// who names a caller in logs: a caller in another PID namespace has no
// pid we could show (SO_PEERCRED reports 0).
func who(cred peer) []any {
	if cred.pid == 0 {
		return []any{"pidns", "other", "uid", cred.uid}
	}
	return []any{"pid", cred.pid, "uid", cred.uid}
}

func (cred peer) String() string {
	if cred.pid == 0 {
		return fmt.Sprintf("uid %d in another PID namespace", cred.uid)
	}
	return fmt.Sprintf("pid %d", cred.pid)
}

// answer reads and runs one request. then, when not nil, must run once
// the Response was written: the shutdown, which must not race its own
// answer.
func (s *server) answer(ctx context.Context, c *call) (resp Response, then func()) {
	conn := c.conn
	cred, err := peerCred(conn)
	if err != nil {
		s.log.Warn("control socket: refusing a peer without credentials", "err", err)
		return Response{Error: "cannot read the caller's credentials"}, nil
	}
	if cred.uid != 0 && cred.uid != s.uid {
		s.log.Warn("control socket: refusing a caller", who(cred)...)
		return Response{Error: fmt.Sprintf("permission denied: uid %d is neither root nor the init's uid %d", cred.uid, s.uid)}, nil
	}
	if cred.pid == 0 && !s.otherPidns {
		s.log.Warn("control socket: refusing a caller from another PID namespace", who(cred)...)
		return Response{Error: "refused: the caller is in another PID namespace than this entrypoint " +
			"(another container of the pod, or the host); run entrypoint inside this container " +
			"(kubectl exec -c CONTAINER), or start the init with --control-allow-other-pidns"}, nil
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	var req request
	dec := json.NewDecoder(io.LimitReader(conn, maxRequest))
	if err := dec.Decode(&req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}, nil
	}
	_ = conn.SetReadDeadline(time.Time{})
	log := s.log.With(append([]any{"action", req.Action, "app", req.App}, who(cred)...)...)

	st := s.c.Status()
	if err := status.CheckApp(st, req.App); err != nil {
		return Response{Error: err.Error()}, nil
	}
	switch req.Action {
	case "status":
		return Response{OK: true, Status: &st}, nil
	case "shutdown":
		log.Info("shutdown requested through the control socket")
		return Response{OK: true}, func() { s.c.Shutdown("control socket (" + cred.String() + ")") }
	}
	return s.act(ctx, c, log, req), nil
}

// act runs a reload or restart through status.Do while watching for the
// caller hanging up.
func (s *server) act(ctx context.Context, c *call, log *slog.Logger, req request) Response {
	log.Info("action requested through the control socket")
	conn := c.conn
	// The caller sends nothing after its request: whatever ends the
	// read (EOF, the half-close of a caller that gave up) means it left.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, maxRequest))
		c.hangUp()
		cancel()
	}()
	results, err := status.Do(status.WithStartCheck(ctx, c.start), s.c, req.Action, req.App)
	callerLeft, started := c.end()
	// Unblock the watcher (the caller may still be reading): no
	// goroutine outlives its request.
	_ = conn.SetReadDeadline(time.Unix(1, 0))
	<-watched
	var unknown *status.UnknownActionError
	if errors.As(err, &unknown) {
		// Nothing was asked of the supervisor.
		return Response{Error: fmt.Sprintf("unknown action %q; want reload, restart, shutdown or status", unknown.Action)}
	}
	resp := Response{OK: err == nil, Results: results}
	if err != nil {
		// A *status.FailedError says which apps failed and why.
		resp.Error = err.Error()
	}
	if callerLeft {
		// Not "ok=false error=context canceled": what started runs
		// to its end and the supervisor logs its outcome.
		log.Info("control socket caller left before the outcome; what started continues, nothing else will run", "started", strings.Join(started, ","))
		resp.Error = "the caller left before the outcome"
	} else {
		log.Info("control socket action done", "ok", resp.OK, "error", resp.Error)
	}
	return resp
}
