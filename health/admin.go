package health

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/entrypoint/entrypoint/status"
)

// adminActionTimeout bounds how long an admin request waits for a reload
// or restart; a swap waits for the readiness gate (default 60s) and the
// old generation's drain (default 30s).
const adminActionTimeout = 5 * time.Minute

// adminHeader must be sent by API clients when no token is configured: a
// custom header cannot be sent cross-origin without a CORS preflight,
// which this server never answers, so a form on another site cannot post.
const adminHeader = "X-Entrypoint-Admin"

const adminBase = "/debug/admin"

//go:embed admin.html
var adminPage string

// adminTemplate parses the admin page. It runs when the admin routes are
// enabled, not in a package init: most inits never serve the page, and
// parsing it costs every start-up (issue 13).
func adminTemplate() *template.Template {
	return template.Must(template.New("admin").Parse(adminPage))
}

type admin struct {
	c     status.Controller
	token string
	log   *slog.Logger
	tmpl  *template.Template // adminTemplate()
}

// actionResponse has the JSON shape of the control socket's Response.
type actionResponse struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Results []status.Result `json:"results,omitempty"`
	Status  *status.Status  `json:"status,omitempty"`
}

func (a *admin) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+adminBase, a.page)
	mux.HandleFunc("GET "+adminBase+"/status", a.guard(a.status))
	mux.HandleFunc("POST "+adminBase+"/reload", a.guard(a.action(status.ActionReload)))
	mux.HandleFunc("POST "+adminBase+"/restart", a.guard(a.action(status.ActionRestart)))
	mux.HandleFunc("POST "+adminBase+"/shutdown", a.guard(a.shutdown))
}

// page serves the shell of the admin page. It holds no state and no
// secret, so it needs no token: the script asks for the token and sends it
// with every API call.
func (a *admin) page(w http.ResponseWriter, _ *http.Request) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce) // never fails (crypto/rand documents it)
	n := base64.StdEncoding.EncodeToString(nonce)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", fmt.Sprintf(
		"default-src 'none'; script-src 'nonce-%[1]s'; style-src 'nonce-%[1]s'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", n))
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if err := a.tmpl.Execute(w, map[string]any{"Nonce": n, "Base": adminBase, "Header": adminHeader, "TokenRequired": a.token != ""}); err != nil {
		a.log.Warn("render admin page", "err", err)
	}
}

// guard applies the admin route's security checks before h runs:
// cross-site requests are refused, then the token (or, without one, the
// custom header and a loopback Host against DNS rebinding) is required.
func (a *admin) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			a.log.Warn("admin request refused: cross-site", "path", r.URL.Path, "remote", r.RemoteAddr, "secFetchSite", site)
			writeJSON(w, http.StatusForbidden, actionResponse{Error: "cross-site admin requests are refused"})
			return
		}
		if a.token != "" {
			if !a.tokenOK(r.Header.Get("Authorization")) {
				a.log.Warn("admin request refused: missing or wrong bearer token", "path", r.URL.Path, "remote", r.RemoteAddr)
				w.Header().Set("WWW-Authenticate", `Bearer realm="entrypoint-admin"`)
				writeJSON(w, http.StatusUnauthorized, actionResponse{Error: "a valid admin token is required: Authorization: Bearer <token>"})
				return
			}
		} else {
			if r.Header.Get(adminHeader) != "1" {
				writeJSON(w, http.StatusForbidden, actionResponse{Error: "header " + adminHeader + ": 1 is required"})
				return
			}
			if !loopbackHost(r.Host) {
				a.log.Warn("admin request refused: Host is not loopback", "path", r.URL.Path, "remote", r.RemoteAddr, "host", r.Host)
				writeJSON(w, http.StatusForbidden, actionResponse{Error: "without an admin token the admin API answers only to a loopback Host"})
				return
			}
		}
		h(w, r)
	}
}

// tokenOK compares digests so that neither the content nor the length of
// the token leaks through timing.
func (a *admin) tokenOK(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	want := sha256.Sum256([]byte(a.token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *admin) status(w http.ResponseWriter, _ *http.Request) {
	st := a.c.Status()
	writeJSON(w, http.StatusOK, actionResponse{OK: true, Status: &st})
}

// action runs a reload or restart and answers with its outcome: 200 when
// every app succeeded, 404 for an unknown app, 409 when an app rolled back
// or failed its gate, 503 when the caller left or timed out first, 500
// when the supervisor could not run it.
func (a *admin) action(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app := r.URL.Query().Get("app")
		if err := status.CheckApp(a.c.Status(), app); err != nil {
			// Checked before the write deadline and the log line below: a
			// typo is not an action.
			writeJSON(w, http.StatusNotFound, actionResponse{Error: fmt.Sprintf("unknown app %q", app)})
			return
		}
		// A swap outlives the server's default write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(adminActionTimeout + 10*time.Second))
		ctx, cancel := context.WithTimeout(r.Context(), adminActionTimeout)
		defer cancel()
		a.log.Info("admin action requested", "action", kind, "app", app, "remote", r.RemoteAddr)
		var mu sync.Mutex
		var started []string
		results, err := status.Do(status.WithStartCheck(ctx, func(app string) bool {
			mu.Lock()
			defer mu.Unlock()
			started = append(started, app)
			return true
		}), a.c, kind, app)
		var failed *status.FailedError
		var unknown *status.UnknownAppError
		switch {
		case errors.As(err, &unknown):
			// The app went away between the check above and the action.
			writeJSON(w, http.StatusNotFound, actionResponse{Error: fmt.Sprintf("unknown app %q", app)})
			return
		case err != nil && !errors.As(err, &failed) && ctx.Err() != nil:
			// Not "ok=false error=context canceled": what started runs to
			// its end and the supervisor logs its outcome.
			mu.Lock()
			a.log.Info("admin caller left or timed out before the outcome; what started continues, nothing else will run",
				"action", kind, "app", app, "remote", r.RemoteAddr, "started", strings.Join(started, ","), "cause", ctx.Err())
			mu.Unlock()
			writeJSON(w, http.StatusServiceUnavailable, actionResponse{Results: results, Error: "gave up waiting: " + ctx.Err().Error()})
			return
		}
		resp := actionResponse{OK: err == nil, Results: results}
		code := http.StatusOK
		switch {
		case failed != nil:
			resp.Error, code = failed.Error(), http.StatusConflict
		case err != nil:
			resp.Error, code = err.Error(), http.StatusInternalServerError
		}
		a.log.Info("admin action done", "action", kind, "app", app, "ok", resp.OK, "error", resp.Error)
		writeJSON(w, code, resp)
	}
}

// shutdown answers first and then starts the shutdown: the init may end
// (and take this server with it) before a reply written afterwards
// reached the caller.
func (a *admin) shutdown(w http.ResponseWriter, r *http.Request) {
	a.log.Info("admin shutdown requested", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, actionResponse{OK: true})
	_ = http.NewResponseController(w).Flush() // the caller went away; shut down anyway
	a.c.Shutdown("admin page")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
