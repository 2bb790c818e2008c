package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status"
)

// Timeouts of the HTTP server. Probes and scrapes are quick; admin actions
// wait for a swap and extend their own write deadline (adminActionTimeout).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	// idleTimeout is short: probes do not keep connections alive, and a
	// scraper that does reconnects cheaply.
	idleTimeout    = 30 * time.Second
	maxHeaderBytes = 16 << 10
	maxBodyBytes   = 4 << 10
	// shutdownGrace bounds how long Serve waits for requests in flight
	// once its context ends.
	shutdownGrace = 5 * time.Second
)

// ErrAdminUnprotected is returned by New when the admin routes would be
// reachable from the network without a token.
var ErrAdminUnprotected = errors.New("health: admin routes on a non-loopback address need a token")

// Options configures a Server.
type Options struct {
	// Listen is the TCP address, e.g. ":9090" (the config default).
	Listen string
	// TLSCert and TLSKey, when both set, serve HTTPS. The files are re-read
	// when they change, so a rotated Secret needs no restart.
	TLSCert, TLSKey string
	// Admin enables /debug/admin and its JSON API.
	Admin bool
	// AdminToken is the bearer token the admin routes require; the caller
	// reads it from its file or env. Empty is allowed only on loopback.
	AdminToken string
	// Controller is the supervisor; required.
	Controller status.Controller
	// Registry is written by /metrics; nil serves no /metrics.
	Registry *promtext.Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the probes/metrics/admin HTTP server.
type Server struct {
	opts  Options
	log   *slog.Logger
	srv   *http.Server
	certs *certReloader // nil without TLS

	limit *limitListener

	mu    sync.Mutex
	addr  string
	ln    net.Listener
	bound chan struct{} // closed once Listen has bound the listener
}

// New checks opts and builds the server; Serve binds and runs it.
func New(opts Options) (*Server, error) {
	if opts.Controller == nil {
		return nil, errors.New("health: Options.Controller is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Admin && opts.AdminToken == "" && !config.IsLoopback(opts.Listen) {
		return nil, fmt.Errorf("%w: %q listens beyond this host; set ENTRYPOINT_ADMIN_TOKEN or health.adminTokenFile, or bind health.listen to 127.0.0.1:PORT, or turn health.admin off",
			ErrAdminUnprotected, opts.Listen)
	}
	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		return nil, fmt.Errorf("health: TLS needs both a certificate and a key (cert %q, key %q)", opts.TLSCert, opts.TLSKey)
	}
	s := &Server{opts: opts, log: opts.Logger, addr: opts.Listen, bound: make(chan struct{})}
	if opts.TLSCert != "" {
		cr, err := newCertReloader(opts.TLSCert, opts.TLSKey, opts.Logger)
		if err != nil {
			return nil, err
		}
		s.certs = cr
	}
	if opts.Admin && opts.AdminToken != "" && opts.TLSCert == "" && !config.IsLoopback(opts.Listen) {
		s.log.Warn("admin token travels in clear text: serve health over TLS (health.tlsCert, health.tlsKey) or keep it on the pod network only",
			"listen", opts.Listen)
	}
	s.srv = &http.Server{
		Handler:           s.recoverer(s.routes()),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		if s.limit != nil {
			s.limit.connState(c, st)
		}
	}
	if s.certs != nil {
		s.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.get}
	}
	return s, nil
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	p := &probes{c: s.opts.Controller}
	for _, kind := range []string{"livez", "readyz", "healthz"} {
		mux.HandleFunc("GET /"+kind, p.handler(kind))
		mux.HandleFunc("GET /"+kind+"/{check}", p.handler(kind))
	}
	if s.opts.Registry != nil {
		mux.Handle("GET /metrics", s.metrics())
	}
	if s.opts.Admin {
		a := &admin{c: s.opts.Controller, token: s.opts.AdminToken, log: s.log, tmpl: adminTemplate()}
		a.register(mux)
	}
	return mux
}

// recoverer turns a panicking handler into a logged 500 instead of a
// dropped connection, and caps request bodies.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value, not an error chain
				panic(v)
			}
			s.log.Error("health handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// Serve binds Options.Listen and serves until ctx ends, then shuts down
// gracefully (requests in flight get a few seconds). Call it once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("health endpoints listening", "addr", ln.Addr().String(), "tls", s.certs != nil, "admin", s.opts.Admin)

	errc := make(chan error, 1)
	go func() {
		if s.certs != nil {
			errc <- s.srv.ServeTLS(ln, "", "")
			return
		}
		errc <- s.srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve health on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("shut down health server on %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve health on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Listen binds Options.Listen without serving yet, so the caller can
// report a taken port as a start-up error before any app starts. Serve
// calls it if nobody did.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("bind health listener %s: %w", s.opts.Listen, err)
	}
	s.limit = newLimitListener(ln, connCap(), s.log)
	s.ln = s.limit
	s.addr = ln.Addr().String()
	close(s.bound)
	return nil
}

// Addr is the bound address once Serve has bound, Options.Listen before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
