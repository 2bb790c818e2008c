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

	supervisor "github.com/entrypoint/entrypoint/init"
)

const (
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
	Results []supervisor.Result `json:"results,omitempty"`
	// Status is set for the "status" action.
	Status *supervisor.Status `json:"status,omitempty"`
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

// Serve answers requests on l until ctx ends, then closes l and waits for
// the requests in flight (their actions see ctx cancelled). Each
// connection carries one JSON request and gets one JSON Response. Only
// peers running as root or as the init's own uid are served.
func Serve(ctx context.Context, l net.Listener, c supervisor.Controller, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	s := &server{c: c, log: logger, uid: uint32(os.Getuid())}
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
	c   supervisor.Controller
	log *slog.Logger
	uid uint32
}

func (s *server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	resp := s.answer(ctx, conn)
	_ = conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		s.log.Debug("control socket: write response", "err", err)
	}
}

func (s *server) answer(ctx context.Context, conn net.Conn) Response {
	cred, err := peerCred(conn)
	if err != nil {
		s.log.Warn("control socket: refusing a peer without credentials", "err", err)
		return Response{Error: "cannot read the caller's credentials"}
	}
	if cred.uid != 0 && cred.uid != s.uid {
		s.log.Warn("control socket: refusing a caller", "pid", cred.pid, "uid", cred.uid)
		return Response{Error: fmt.Sprintf("permission denied: uid %d is neither root nor the init's uid %d", cred.uid, s.uid)}
	}
	_ = conn.SetReadDeadline(time.Now().Add(ioTimeout))
	var req request
	if err := json.NewDecoder(io.LimitReader(conn, maxRequest)).Decode(&req); err != nil {
		return Response{Error: fmt.Sprintf("bad request: %v", err)}
	}
	_ = conn.SetReadDeadline(time.Time{})
	log := s.log.With("action", req.Action, "app", req.App, "pid", cred.pid, "uid", cred.uid)

	st := s.c.Status()
	if req.App != "" && !hasApp(st, req.App) {
		return Response{Error: fmt.Sprintf("unknown app %q; apps: %s", req.App, appNames(st))}
	}
	switch req.Action {
	case "status":
		return Response{OK: true, Status: &st}
	case "shutdown":
		log.Info("shutdown requested through the control socket")
		s.c.Shutdown(fmt.Sprintf("control socket (pid %d)", cred.pid))
		return Response{OK: true}
	case "reload", "restart":
		log.Info("action requested through the control socket")
		run := s.c.Reload
		if req.Action == "restart" {
			run = s.c.Restart
		}
		results, err := run(ctx, req.App)
		resp := Response{OK: err == nil, Results: results}
		if err != nil {
			resp.Error = err.Error()
		} else if msg := failures(results); msg != "" {
			resp.OK, resp.Error = false, msg
		}
		log.Info("control socket action done", "ok", resp.OK, "error", resp.Error)
		return resp
	}
	return Response{Error: fmt.Sprintf("unknown action %q; want reload, restart, shutdown or status", req.Action)}
}

func hasApp(st supervisor.Status, name string) bool {
	for _, a := range st.Apps {
		if a.Name == name {
			return true
		}
	}
	return false
}

func appNames(st supervisor.Status) string {
	names := make([]string, 0, len(st.Apps))
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func failures(rs []supervisor.Result) string {
	var msgs []string
	for _, r := range rs {
		if !r.OK {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", r.Action, r.App, r.Reason))
		}
	}
	return strings.Join(msgs, "; ")
}

// Call sends one request to the init's control socket at path and waits
// for the answer until ctx ends. The error says only that no answer came
// (no init, permission, ctx); whether the action succeeded is Response.OK,
// with Error and the per-app Results saying why not.
func Call(ctx context.Context, path, action, app string) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Response{}, fmt.Errorf("connect to control socket %s (is entrypoint running, and are you root or its user?): %w", path, err)
	}
	defer conn.Close()
	// Unblock I/O once ctx is done (not at its deadline: then ctx.Err()
	// would not say why yet).
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// A refusing server answers before reading and hangs up, so a failed
	// write still leaves its answer to read.
	werr := json.NewEncoder(conn).Encode(request{Action: action, App: app})
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		if ctx.Err() != nil {
			return Response{}, fmt.Errorf("wait for %s on %s: %w", action, path, ctx.Err())
		}
		if werr != nil {
			return Response{}, fmt.Errorf("send %s request to %s: %w", action, path, werr)
		}
		return Response{}, fmt.Errorf("read %s response from %s: %w", action, path, err)
	}
	return resp, nil
}
