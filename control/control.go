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
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

const (
	// startWriteTimeout bounds telling the caller an action starts; it is
	// written from the app's goroutine, which must not wait on a caller.
	startWriteTimeout = time.Second
	// ioTimeout bounds reading a request and writing a response; the
	// action itself may take as long as the supervisor needs.
	ioTimeout = 10 * time.Second
	// maxRequest caps a request; a real one is well under 100 bytes.
	maxRequest = 64 << 10
)

// Response is the init's answer to one request.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Results are the reload or restart outcomes, one per app.
	Results []status.Result `json:"results,omitempty"`
	// Status is set for the "status" action.
	Status *status.Status `json:"status,omitempty"`
	// Started, in a message before the final Response, names an app whose
	// reload or restart starts now: it will run to its end even if the
	// caller leaves.
	Started string `json:"started,omitempty"`
}

// request is one call: action is "reload", "restart", "shutdown" or
// "status"; app "" means every app.
type request struct {
	Action string `json:"action"`
	App    string `json:"app,omitempty"`
}

// Listen binds the control socket. A path starting with "@" is an abstract
// socket (no file, so it works on a read-only root filesystem; guarded by
// the peer-credential check alone). Otherwise the file is created with
// mode 0600; a stale socket left by a dead init is replaced, one that
// still answers or a file that is not a socket is an error.
func Listen(path string) (net.Listener, error) {
	path, err := Expand(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(path, "@") {
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("bind control socket %s: %w", path, err)
		}
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create control socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("bind control socket %s: %w", path, err)
	}
	// bind(2) applies the umask, and changing the umask is process-wide
	// (racy with every other goroutine): chmod right after instead. The
	// peer-credential check covers the moment in between.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict control socket %s to mode 0600: %w", path, err)
	}
	return l, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: the path exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by another process; is another entrypoint running?", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	return nil
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
	resp := s.answer(ctx, c)
	c.end()
	_ = conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		// A caller that gave up is gone (EPIPE); nothing to tell it.
		s.log.Debug("control socket: write response", "err", err)
	}
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

func (s *server) answer(ctx context.Context, c *call) Response {
	conn := c.conn
	cred, err := peerCred(conn)
	if err != nil {
		s.log.Warn("control socket: refusing a peer without credentials", "err", err)
		return Response{Error: "cannot read the caller's credentials"}
	}
	if cred.uid != 0 && cred.uid != s.uid {
		s.log.Warn("control socket: refusing a caller", who(cred)...)
		return Response{Error: fmt.Sprintf("permission denied: uid %d is neither root nor the init's uid %d", cred.uid, s.uid)}
	}
	if cred.pid == 0 && !s.otherPidns {
		s.log.Warn("control socket: refusing a caller from another PID namespace", who(cred)...)
		return Response{Error: "refused: the caller is in another PID namespace than this entrypoint " +
			"(another container of the pod, or the host); run entrypoint inside this container " +
			"(kubectl exec -c CONTAINER), or start the init with --control-allow-other-pidns"}
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	var req request
	dec := json.NewDecoder(io.LimitReader(conn, maxRequest))
	if err := dec.Decode(&req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}
	}
	_ = conn.SetReadDeadline(time.Time{})
	log := s.log.With(append([]any{"action", req.Action, "app", req.App}, who(cred)...)...)

	st := s.c.Status()
	if req.App != "" && !hasApp(st, req.App) {
		return Response{Error: fmt.Sprintf("unknown app %q; apps: %s", req.App, appNames(st))}
	}
	switch req.Action {
	case "status":
		return Response{OK: true, Status: &st}
	case "shutdown":
		log.Info("shutdown requested through the control socket")
		s.c.Shutdown("control socket (" + cred.String() + ")")
		return Response{OK: true}
	case "reload", "restart":
		log.Info("action requested through the control socket")
		run := s.c.Reload
		if req.Action == "restart" {
			run = s.c.Restart
		}
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
		results, err := run(status.WithStartCheck(ctx, c.start), req.App)
		callerLeft, started := c.end()
		// Unblock the watcher (the caller may still be reading): no
		// goroutine outlives its request.
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		<-watched
		resp := Response{OK: err == nil, Results: results}
		if err != nil {
			resp.Error = err.Error()
		} else if msg := failures(results); msg != "" {
			resp.OK, resp.Error = false, msg
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
	return Response{Error: fmt.Sprintf("unknown action %q; want reload, restart, shutdown or status", req.Action)}
}

func hasApp(st status.Status, name string) bool {
	for _, a := range st.Apps {
		if a.Name == name {
			return true
		}
	}
	return false
}

func appNames(st status.Status) string {
	names := make([]string, 0, len(st.Apps))
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func failures(rs []status.Result) string {
	var msgs []string
	for _, r := range rs {
		if !r.OK {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", r.Action, r.App, r.Reason))
		}
	}
	return strings.Join(msgs, "; ")
}

// verdictWait bounds how long a caller that gave up waits to learn what
// had started; the server answers at once unless it is stuck.
const verdictWait = 3 * time.Second

// Client calls the control socket of one init.
type Client struct {
	// Socket is the init's control socket; NamespaceToken in it is
	// replaced by our own namespaces.
	Socket string
	// AllowOtherPidns talks to an init in a PID namespace that is not ours
	// or below it; by default such an init is refused, because it is most
	// likely another container's (see Options.AllowOtherPidns).
	AllowOtherPidns bool
}

// Call is Client{Socket: path}.Call.
func Call(ctx context.Context, path, action, app string) (Response, error) {
	return Client{Socket: path}.Call(ctx, action, app)
}

// Call sends one request to the init and waits for the answer until ctx
// ends. The error says only that no answer came (no init, permission, an
// init of another container, ctx: then an *AbandonedError saying what
// will still happen); whether the action succeeded is Response.OK, with
// Error and the per-app Results saying why not.
func (cl Client) Call(ctx context.Context, action, app string) (Response, error) {
	path, err := Expand(cl.Socket)
	if err != nil {
		return Response{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if ctx.Err() != nil {
			// Not connected, nothing sent: nothing will run.
			return Response{}, &AbandonedError{Action: action, App: app, Err: ctx.Err()}
		}
		return Response{}, fmt.Errorf("connect to control socket %s (is entrypoint running in this container, and are you root or its user?): %w", path, err)
	}
	defer conn.Close()
	// SO_PEERCRED of a connected socket names the process that called
	// listen(2), as seen from our PID namespace: 0 when it is in another
	// one, such as another container's init on a shared network
	// namespace.
	if srv, err := peerCred(conn); err == nil && srv.pid == 0 && !cl.AllowOtherPidns {
		return Response{}, fmt.Errorf("control socket %s belongs to an entrypoint in another PID namespace "+
			"(another container of this pod?), not to this container's; refusing to send it %s. "+
			"Run entrypoint inside the container you mean (kubectl exec -c CONTAINER), or pass --allow-other-pidns",
			path, action)
	}
	// Unblock I/O once ctx is done (not at its deadline: then ctx.Err()
	// would not say why yet).
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	defer stop()
	// A refusing server answers before reading and hangs up, so a failed
	// write still leaves its answer to read.
	werr := json.NewEncoder(conn).Encode(request{Action: action, App: app})
	dec := json.NewDecoder(conn)
	var started []string
	for {
		var resp Response
		err := dec.Decode(&resp)
		if err == nil && resp.Started != "" {
			started = append(started, resp.Started)
			continue
		}
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			if !stop() {
				<-fired
			}
			return Response{}, abandon(conn, dec, &AbandonedError{Action: action, App: app, Started: started, Err: ctx.Err()})
		}
		if werr != nil {
			return Response{}, fmt.Errorf("send %s request to %s: %w", action, path, werr)
		}
		return Response{}, fmt.Errorf("read %s response from %s: %w", action, path, err)
	}
}

// abandon tells the server we gave up (a half-close: the server cancels
// what has not started) and reads, briefly, which actions started before
// it noticed. Without an answer nothing more started: the server checks
// for the hang-up right before it starts an action.
func abandon(conn net.Conn, dec *json.Decoder, e *AbandonedError) error {
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	_ = conn.SetDeadline(time.Now().Add(verdictWait))
	// The decoder keeps its error: read on from what it had buffered.
	dec = json.NewDecoder(io.MultiReader(dec.Buffered(), conn))
	for {
		var resp Response
		if err := dec.Decode(&resp); err != nil {
			return e
		}
		if resp.Started == "" {
			e.Answered = true
			e.Results = resp.Results
			return e
		}
		e.Started = append(e.Started, resp.Started)
	}
}

// AbandonedError is Call's error when ctx ended before the outcome. It
// says what will still happen: the actions of the apps in Started run to
// their end; every other app's will not run.
type AbandonedError struct {
	Action, App string
	// Started are the apps whose action had started before the init
	// learned that the caller gave up.
	Started []string
	// Answered: the init confirmed the cancel; Results are the actions
	// that had finished by then.
	Answered bool
	Results  []status.Result
	Err      error // ctx.Err()
}

func (e *AbandonedError) Error() string {
	return fmt.Sprintf("gave up waiting (%v): %s", e.Err, e.Outcome())
}

// Outcome says what will still happen, for the user.
func (e *AbandonedError) Outcome() string {
	what := e.Action
	if e.App != "" {
		what += " " + e.App
	}
	if e.Action != "reload" && e.Action != "restart" {
		return "no answer to " + what
	}
	if len(e.Started) == 0 {
		return fmt.Sprintf("the %s had not started and will not run", what)
	}
	done := map[string]bool{}
	for _, r := range e.Results {
		done[r.App] = true
	}
	var running []string
	for _, a := range e.Started {
		if !done[a] {
			running = append(running, a)
		}
	}
	msg := fmt.Sprintf("the %s of %s already started and will run to its end; `entrypoint status` shows the outcome",
		e.Action, strings.Join(running, ", "))
	if len(running) == 0 {
		msg = fmt.Sprintf("the %s of %s finished before the init noticed", e.Action, strings.Join(e.Started, ", "))
	}
	if e.App == "" {
		msg += "; apps it had not reached will not be touched"
	}
	return msg
}

func (e *AbandonedError) Unwrap() error { return e.Err }
