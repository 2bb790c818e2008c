package status

import (
	"context"
	"fmt"
	"strings"
)

// The actions Do runs; they are also the words of the control protocol
// and of the admin routes.
const (
	ActionReload  = "reload"
	ActionRestart = "restart"
)

// UnknownAppError is Do's error for an app the supervisor does not run.
type UnknownAppError struct {
	App string
	// Apps are the names the supervisor runs, in its order.
	Apps []string
}

func (e *UnknownAppError) Error() string {
	return fmt.Sprintf("unknown app %q; apps: %s", e.App, strings.Join(e.Apps, ", "))
}

// UnknownActionError is Do's error for an action other than reload and
// restart.
type UnknownActionError struct {
	Action string
}

func (e *UnknownActionError) Error() string {
	return fmt.Sprintf("unknown action %q; want %s or %s", e.Action, ActionReload, ActionRestart)
}

// FailedError is Do's error when the supervisor ran the action but an
// app rolled back or failed its gate; Results (also Do's first result)
// say which and why.
type FailedError struct {
	Results []Result
}

// Error joins the reasons of the failed results, as the CLI and the admin
// page show them: "reload web: readiness gate timed out; ...".
func (e *FailedError) Error() string {
	var msgs []string
	for _, r := range e.Results {
		if !r.OK {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", r.Action, r.App, r.Reason))
		}
	}
	return strings.Join(msgs, "; ")
}

// CheckApp returns an *UnknownAppError when app is neither "" (every app)
// nor one of st's apps.
func CheckApp(st Status, app string) error {
	if app == "" {
		return nil
	}
	names := make([]string, 0, len(st.Apps))
	for _, a := range st.Apps {
		if a.Name == app {
			return nil
		}
		names = append(names, a.Name)
	}
	return &UnknownAppError{App: app, Apps: names}
}

// Do asks c for a reload or restart of app ("" = every app) and waits
// for the outcome, so that every front end (control socket, admin page)
// validates and dispatches the same way and only maps the answer to its
// own form. Its error is an *UnknownAppError or *UnknownActionError
// before anything was asked, a *FailedError when an app's action failed
// (the results are returned too), or the supervisor's own error (ctx
// ended, shutting down) unchanged. Do holds no lock and may be called
// concurrently; ctx may carry a WithStartCheck hook.
func Do(ctx context.Context, c Controller, action, app string) ([]Result, error) {
	// The app is checked first: a typo in the app name is the likelier
	// mistake and its message lists the apps.
	if err := CheckApp(c.Status(), app); err != nil {
		return nil, err
	}
	var run func(context.Context, string) ([]Result, error)
	switch action {
	case ActionReload:
		run = c.Reload
	case ActionRestart:
		run = c.Restart
	default:
		return nil, &UnknownActionError{Action: action}
	}
	results, err := run(ctx, app)
	if err != nil {
		return results, err
	}
	for _, r := range results {
		if !r.OK {
			return results, &FailedError{Results: results}
		}
	}
	return results, nil
}
