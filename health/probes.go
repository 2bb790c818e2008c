package health

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// pingTimeout bounds the event-loop check: kubelet's default probe timeout
// is 1s, so answer (with a failure) before it gives up.
const pingTimeout = 900 * time.Millisecond

// loopCheck is the liveness check that fails when the supervisor's event
// loop does not answer.
const loopCheck = "supervisor-loop"

type probes struct {
	c status.Controller
}

// checks evaluates one probe kind. healthz is the union of livez and
// readyz; a check both report (app-NAME) fails when either fails.
func (p *probes) checks(ctx context.Context, kind string) []status.Check {
	var live, ready []status.Check
	st := p.c.Status()
	if kind != "readyz" {
		ping := status.Check{Name: loopCheck, OK: true}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		if err := p.c.Ping(pctx); err != nil {
			ping = status.Check{Name: loopCheck, Reason: "event loop did not answer: " + err.Error()}
		}
		cancel()
		_, appChecks := st.Live()
		live = append([]status.Check{ping}, appChecks...)
	}
	if kind != "livez" {
		_, ready = st.Ready()
	}
	switch kind {
	case "livez":
		return live
	case "readyz":
		return ready
	}
	return merge(live, ready)
}

func merge(a, b []status.Check) []status.Check {
	out := append([]status.Check(nil), a...)
	idx := make(map[string]int, len(out))
	for i, c := range out {
		idx[c.Name] = i
	}
	for _, c := range b {
		i, ok := idx[c.Name]
		if !ok {
			idx[c.Name] = len(out)
			out = append(out, c)
			continue
		}
		if !c.OK {
			m := &out[i]
			if m.OK {
				m.Reason = c.Reason
			} else if c.Reason != "" && c.Reason != m.Reason {
				m.Reason += "; " + c.Reason
			}
			m.OK = false
		}
	}
	return out
}

// handler answers like kube-apiserver: "ok" or, on failure, 500 with the
// failing checks; ?verbose lists every check; ?exclude=NAME skips one;
// /KIND/NAME evaluates only that check (404 when unknown).
func (p *probes) handler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		checks := p.checks(r.Context(), kind)
		if name := r.PathValue("check"); name != "" {
			var found []status.Check
			for _, c := range checks {
				if c.Name == name {
					found = append(found, c)
				}
			}
			if len(found) == 0 {
				http.Error(w, fmt.Sprintf("no %s check named %q", kind, name), http.StatusNotFound)
				return
			}
			c := found[0]
			if !c.OK {
				http.Error(w, fmt.Sprintf("[-]%s failed: %s", c.Name, reason(c)), http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "ok")
			return
		}
		q := r.URL.Query()
		excluded := map[string]bool{}
		for _, e := range q["exclude"] {
			excluded[e] = true
		}
		_, verbose := q["verbose"]
		var b strings.Builder
		failed := false
		for _, c := range checks {
			if excluded[c.Name] {
				fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.Name)
				continue
			}
			if c.OK {
				if c.Reason != "" {
					fmt.Fprintf(&b, "[+]%s ok: %s\n", c.Name, c.Reason)
					continue
				}
				fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
				continue
			}
			if c.Advisory {
				// Shown, not counted: see status.Check.Advisory.
				fmt.Fprintf(&b, "[!]%s warning: %s\n", c.Name, reason(c))
				continue
			}
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %s\n", c.Name, reason(c))
		}
		if failed {
			fmt.Fprintf(&b, "%s check failed\n", kind)
			http.Error(w, strings.TrimSuffix(b.String(), "\n"), http.StatusInternalServerError)
			return
		}
		if !verbose {
			fmt.Fprint(w, "ok")
			return
		}
		fmt.Fprintf(&b, "%s check passed\n", kind)
		fmt.Fprint(w, b.String())
	}
}

func reason(c status.Check) string {
	if c.Reason == "" {
		return "no reason given"
	}
	return c.Reason
}
