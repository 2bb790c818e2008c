package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/watch"
)

// onChange handles a watched config change: validate, then act.
func (a *app) onChange(c watch.Change) {
	start := time.Now()
	a.log.Info("config changed", "hash", short(c.Hash), "previous", short(c.Previous))
	record := func(ok bool, result, reason, output string) {
		r := status.Result{App: a.cfg.Name, Action: "config", OK: ok, Reason: reason, Output: output, Duration: time.Since(start), At: time.Now()}
		if cur := a.current(); cur != nil {
			r.To, r.Pid = cur.n, cur.pid
		}
		a.s.mu.Lock()
		a.lastChange = &r
		a.s.mu.Unlock()
		a.s.events.ConfigChange(a.cfg.Name, result)
	}
	outcome := func(ok bool) string {
		if ok {
			return "applied"
		}
		return "swap_failed"
	}
	if len(a.cfg.Validate) > 0 {
		timeout := a.cfg.ValidateTimeout.D()
		// Shutdown ends the command too: ctx derives from the app's.
		ctx, cancel := context.WithTimeout(a.ctx, timeout)
		a.setValidating(&status.Validation{Command: a.cfg.Validate, Started: time.Now(), Timeout: timeout})
		var (
			out  []byte
			code int
			err  error
		)
		a.busy(func() {
			out, code, err = a.s.procs.run(ctx, graceful.Command{Argv: a.cfg.Validate, Env: a.env(), Dir: a.cfg.Dir, Sockets: a.sockets})
		})
		a.setValidating(nil)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		if a.stopping() {
			// Shutdown ended the command: the config was never judged,
			// and nothing will apply it.
			a.log.Info("config change dropped: shutting down", "hash", short(c.Hash))
			return
		}
		if err != nil || code != 0 {
			reason := fmt.Sprintf("validate %v failed: exit code %d", a.cfg.Validate, code)
			switch {
			case timedOut:
				reason = fmt.Sprintf("validate %v did not finish within %s (validateTimeout) and was killed", a.cfg.Validate, timeout)
			case err != nil:
				reason = fmt.Sprintf("validate %v failed: %v", a.cfg.Validate, err)
			}
			a.log.Warn("config rejected, old generation keeps serving", "reason", reason, "output", string(out))
			record(false, "validate_failed", reason, string(out))
			return
		}
	}
	if name, ok := strings.CutPrefix(a.cfg.OnChange, "signal:"); ok {
		// config validated the name at load time.
		sig, _ := config.ParseSignal(name)
		a.signal(sig)
		record(true, "signalled", "sent "+config.SignalName(sig), "")
		return
	}
	var r status.Result
	if a.cfg.OnChange == "restart" {
		// A restart asked for meanwhile joins this one, as in handle.
		a.joinable = true
		r = a.restart("config changed")
		a.joinable = false
		a.answerJoined(r)
	} else {
		r = a.swap("config changed")
	}
	record(r.OK, outcome(r.OK), r.Reason, "")
}

func (a *app) setValidating(v *status.Validation) {
	a.s.mu.Lock()
	a.validating = v
	a.s.mu.Unlock()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
