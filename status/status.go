// Package status holds the types the supervisor shares with everything
// that watches or drives it: the Controller and Events interfaces, the
// Status snapshot and its health checks, the outcome of an action, and
// Do, the one way the control socket and the admin page ask for a reload
// or restart (action.go).
//
// It is a leaf: it imports only the standard library, so that health,
// control and the CLI build on any OS and never depend on the supervisor
// itself. It must never hold state or do work beyond deriving answers from
// a snapshot and handing requests to a Controller.
package status

import (
	"context"
	"syscall"
	"time"
)

// Controller is the narrow view of the supervisor that the health, admin
// and control-socket code gets: it reads state and asks for actions, and
// never acts itself.
type Controller interface {
	// Status is a consistent snapshot of the whole supervisor.
	Status() Status
	// Reload hot-swaps app ("" = every app, one after the other) and
	// returns when each swap succeeded or rolled back.
	Reload(ctx context.Context, app string) ([]Result, error)
	// Restart fully restarts app ("" = every app) and returns when the new
	// generation passed its gate or failed.
	Restart(ctx context.Context, app string) ([]Result, error)
	// Shutdown starts the shutdown of DESIGN rule 7 and returns at once.
	Shutdown(reason string)
	// Ping returns nil when the supervisor's event loop answered before
	// ctx ended: a stuck loop fails liveness.
	Ping(ctx context.Context) error
}

// Events receives what happened, for metrics. Calls come from the
// supervisor's goroutines and must not block.
type Events interface {
	// SignalForwarded counts a signal delivered to an app.
	SignalForwarded(app string, sig syscall.Signal)
	// ActionDone records a finished reload ("swap") or restart.
	ActionDone(r Result)
	// AppRestarted counts an in-place restart after the app exited on its
	// own (restart policy).
	AppRestarted(app string)
	// ConfigChange records a watched config change and what came of it:
	// "applied", "validate_failed", "swap_failed", "signalled".
	ConfigChange(app, result string)
	// TakeoverCall counts a bind, listen or shutdown the bind takeover
	// answered: "taken", "passed", "refused", "answered", "suppressed" or
	// "failed".
	TakeoverCall(app, call, result string)
	// WatchFailed counts a config watch of app that stopped or could not
	// start (it is retried).
	WatchFailed(app string)
	// LeftoversEnded counts processes a drained generation of app left
	// behind (outside its process group) that the init ended.
	LeftoversEnded(app string, n int)
}

// Status is a snapshot of the supervisor.
type Status struct {
	Pid          int         `json:"pid"`
	Started      time.Time   `json:"started"`
	ShuttingDown bool        `json:"shuttingDown"`
	Apps         []AppStatus `json:"apps"`
}

// Live reports whether the init and every app are alive within policy,
// with named checks (kube-apiserver style).
func (s Status) Live() (bool, []Check) {
	var checks []Check
	ok := true
	for _, a := range s.Apps {
		c := Check{Name: "app-" + a.Name, OK: !a.CrashLoop && !a.WatchdogExpired && a.State != StateFailed}
		switch {
		case a.CrashLoop:
			c.Reason = "crash loop"
		case a.WatchdogExpired:
			c.Reason = "watchdog expired"
		case a.State == StateFailed:
			c.Reason = "app failed"
		}
		ok = ok && c.OK
		checks = append(checks, c)
	}
	return ok, checks
}

// Ready reports whether every app's current generation is ready and
// nothing is shutting down.
func (s Status) Ready() (bool, []Check) {
	ok := !s.ShuttingDown
	checks := []Check{{Name: "shutdown", OK: !s.ShuttingDown}}
	if s.ShuttingDown {
		checks[0].Reason = "shutting down"
	}
	for _, a := range s.Apps {
		c := Check{Name: "app-" + a.Name, OK: a.Ready}
		if !a.Ready {
			c.Reason = string(a.State)
		}
		ok = ok && c.OK
		checks = append(checks, c)
		if a.Takeover != "" {
			// Informational: an unavailable takeover never fails
			// readiness ("on" makes it a start-up error instead).
			checks = append(checks, Check{Name: "takeover-" + a.Name, OK: true, Reason: a.Takeover})
		}
	}
	// A dead config watch is shown but does not fail readiness: the app
	// still serves, with its last config, and taking every pod of a busy
	// node out of service for it would be worse than a late config.
	for _, a := range s.Apps {
		if a.Watch != nil {
			c := Check{Name: "watch-" + a.Name, OK: a.Watch.OK, Advisory: true}
			if !a.Watch.OK {
				c.Reason = "config watch not running, changes are not applied: " + a.Watch.Error
			}
			checks = append(checks, c)
		}
	}
	return ok, checks
}

// Check is one named health check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
	// Advisory checks are listed (?verbose) and can be probed alone
	// (/readyz/NAME fails with them), but do not fail the probe itself.
	Advisory bool `json:"advisory,omitempty"`
}

// State is an app's lifecycle state.
type State string

const (
	StateStarting   State = "starting"   // first generation not ready yet
	StateRunning    State = "running"    // current generation ready
	StateSwapping   State = "swapping"   // hot swap in progress; still ready
	StateRestarting State = "restarting" // full restart; not ready
	StateBackoff    State = "backoff"    // exited, waiting to restart
	StateStopping   State = "stopping"   // shutdown in progress
	StateExited     State = "exited"     // ended; container is ending
	StateFailed     State = "failed"     // ended and not coming back
)

// Phase is where one generation is in its life.
type Phase string

const (
	PhaseStarting Phase = "starting" // started, gate not passed yet
	PhaseReady    Phase = "ready"    // passed its gate, serving
	PhaseDraining Phase = "draining" // replaced or stopping, finishing work
)

// Takeover states of an app with listeners, as status and metrics show
// them; "unavailable" is followed by ": " and the reason.
const (
	TakeoverActive      = "active"
	TakeoverOff         = "off"
	TakeoverUnavailable = "unavailable"
)

// AppStatus is one app in a Status.
type AppStatus struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// Ready is true while a generation that passed its gate serves and is
	// not being drained for shutdown or restart.
	Ready bool `json:"ready"`
	// Current is the serving generation, nil when none runs.
	Current *Generation `json:"current,omitempty"`
	// Others are generations starting or draining beside Current.
	Others []Generation `json:"others,omitempty"`
	// Restarts counts in-place restarts by the restart policy.
	Restarts int `json:"restarts"`
	// CrashLoop is true after too many quick restarts in a row.
	CrashLoop bool `json:"crashLoop"`
	// WatchdogExpired is true when the app enabled the sd_notify watchdog
	// and stopped sending WATCHDOG=1.
	WatchdogExpired bool `json:"watchdogExpired"`
	// LastAction is the last reload or restart.
	LastAction *Result `json:"lastAction,omitempty"`
	// LastChange is the last config-watch event.
	LastChange *Result `json:"lastChange,omitempty"`
	// Listen are the addresses the init holds for the app.
	Listen []string `json:"listen,omitempty"`
	// Takeover is "active", "off", or "unavailable: <why>" for an app
	// with listeners (DESIGN rule 12).
	Takeover string `json:"takeover,omitempty"`
	// ExitCode is set once the app ended for good.
	ExitCode *int `json:"exitCode,omitempty"`
	// Validating is the validate command running now, if any: config
	// changes, reloads and restarts of the app wait for it.
	Validating *Validation `json:"validating,omitempty"`
	// Watch is the state of the app's config watch; nil without --watch.
	Watch *WatchStatus `json:"watch,omitempty"`
}

// Validation is a validate command at work.
type Validation struct {
	Command []string      `json:"command"`
	Started time.Time     `json:"started"`
	Timeout time.Duration `json:"timeout"`
}

// WatchStatus is the state of an app's config watch.
type WatchStatus struct {
	Paths []string `json:"paths"`
	// OK is false while the watch is not running (it is retried); changes
	// of the watched files are then not applied.
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	Since time.Time `json:"since,omitzero"`
}

// Generation is one run of an app.
type Generation struct {
	N       int       `json:"n"`
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"`
	Phase   Phase     `json:"phase"`
	// Status is the last STATUS= the app sent through sd_notify.
	Status string `json:"status,omitempty"`
}

// Result is the outcome of a reload, restart or config change.
type Result struct {
	App    string `json:"app"`
	Action string `json:"action"` // "reload", "restart", "config"
	OK     bool   `json:"ok"`
	// Reason says why it failed (or, for config, what was done).
	Reason   string        `json:"reason,omitempty"`
	From     int           `json:"from"` // generation before
	To       int           `json:"to"`   // generation after (== From on failure)
	Pid      int           `json:"pid"`  // serving PID after
	Duration time.Duration `json:"duration"`
	At       time.Time     `json:"at"`
	// Output is the validate command's output, when one failed.
	Output string `json:"output,omitempty"`
}

// startKey carries the hook of WithStartCheck in a request's context.
type startKey struct{}

// WithStartCheck returns a ctx for Reload or Restart whose check is asked,
// on the app's goroutine, right before the action on app starts (or
// before it joins a swap that is starting). false skips the request as
// if ctx had ended: the control socket uses it to run nothing for a
// caller that hung up, and to tell the caller what started. check must
// not block for long; it is not asked once ctx has ended.
func WithStartCheck(ctx context.Context, check func(app string) bool) context.Context {
	return context.WithValue(ctx, startKey{}, check)
}

// Begins reports whether an action on app requested with ctx may start
// now: ctx has not ended and its WithStartCheck hook, if any, agrees. The
// supervisor asks it once per request, right before the action; a
// Controller of tests should too.
func Begins(ctx context.Context, app string) bool {
	if ctx.Err() != nil {
		return false
	}
	check, ok := ctx.Value(startKey{}).(func(string) bool)
	return !ok || check(app)
}
