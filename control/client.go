package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

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
