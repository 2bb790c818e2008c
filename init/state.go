package supervisor

import (
	"slices"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// next lists the states an app may move to from each state: the edges of
// the diagram in doc.go, which TestStateDiagram keeps equal to this (as
// pebble keeps servstate's state-diagram.dot beside its handlers).
func next(from status.State) []status.State {
	switch from {
	case status.StateStarting:
		return []status.State{status.StateRunning, status.StateBackoff, status.StateStopping, status.StateExited, status.StateFailed}
	case status.StateRunning:
		return []status.State{status.StateSwapping, status.StateRestarting, status.StateBackoff, status.StateStopping, status.StateExited, status.StateFailed}
	case status.StateSwapping:
		return []status.State{status.StateRunning, status.StateStopping}
	case status.StateRestarting:
		return []status.State{status.StateRunning, status.StateBackoff, status.StateStopping, status.StateExited, status.StateFailed}
	case status.StateBackoff:
		return []status.State{status.StateRunning, status.StateStopping}
	case status.StateStopping:
		return []status.State{status.StateExited}
	}
	return nil // exited and failed are final
}

// states is every state, in the order doc.go's diagram lists them.
func states() []status.State {
	return []status.State{status.StateStarting, status.StateRunning, status.StateSwapping, status.StateRestarting,
		status.StateBackoff, status.StateStopping, status.StateExited, status.StateFailed}
}

// transition moves the app to state to; see transitionLocked.
func (a *app) transition(to status.State) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.transitionLocked(to)
}

// transitionLocked is the one place an app's state changes. It logs each
// change; a move the diagram does not have is logged as an error and
// reported to Supervisor.illegal (tests fail on it), and still made:
// refusing it would leave the state behind what the processes do. Staying
// in a state (a second backoff) is no change. Supervisor.mu is held.
func (a *app) transitionLocked(to status.State) {
	from := a.state
	if from == to {
		return
	}
	if !slices.Contains(next(from), to) {
		a.log.Error("illegal state transition", "from", from, "to", to)
		if a.s.illegal != nil {
			a.s.illegal(a.cfg.Name, from, to)
		}
	} else {
		a.log.Info("state", "from", from, "to", to)
	}
	a.state = to
}

// statusLocked is the app's part of a Status snapshot; Supervisor.mu is held.
func (a *app) statusLocked() status.AppStatus {
	st := status.AppStatus{
		Name: a.cfg.Name, State: a.state,
		Restarts: a.restarts, LastAction: a.lastAction, LastChange: a.lastChange, ExitCode: a.exitCode,
	}
	if a.sockets != nil {
		st.Listen = a.sockets.Addrs()
	}
	st.Takeover = a.takeoverState
	g := a.cur
	serving := g != nil && g.phase == status.PhaseReady && g.alive()
	// Ready is derived, never stored: someone ready serves and nothing
	// is shutting down or fully restarting.
	st.Ready = serving && (a.state == status.StateRunning || a.state == status.StateSwapping) && !a.s.shuttingDown
	// A crash loop ends once a generation stayed ready for StableAfter.
	stable := serving && time.Since(g.readyAt) >= a.cfg.Restart.StableAfter.D()
	st.CrashLoop = a.cfg.Restart.Policy == "restart" && a.consecutive >= a.cfg.Restart.CrashLoop && !stable
	if g != nil && g.alive() {
		st.Current = &status.Generation{N: g.n, Pid: g.pid, Started: g.started, Phase: g.phase, Status: g.status}
		if wd := a.cfg.Watchdog.D(); wd > 0 && g.phase == status.PhaseReady && time.Since(g.lastWatchdog) > wd {
			st.WatchdogExpired = true
		}
	}
	st.Validating = a.validating
	if len(a.cfg.Watch) > 0 {
		st.Watch = &status.WatchStatus{Paths: a.cfg.Watch, OK: a.watchErr == "", Error: a.watchErr}
		if a.watchErr != "" {
			st.Watch.Since = a.watchSince
		}
	}
	for _, o := range a.others {
		if o.alive() {
			st.Others = append(st.Others, status.Generation{N: o.n, Pid: o.pid, Started: o.started, Phase: o.phase, Status: o.status})
		}
	}
	return st
}
