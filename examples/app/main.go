package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// version is the default of -version; set it at build time with
// -ldflags "-X main.version=v2" to publish a new binary for a reload.
var version = "v1"

// Exit codes.
const (
	exitOK          = 0
	exitFailedStart = 1
	exitUsage       = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

type options struct {
	addr       string
	version    string
	config     string
	events     string
	readyDelay time.Duration
	drain      time.Duration
	lameDuck   time.Duration
	failStart  bool
	neverReady bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("example-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", envOr("APP_ADDR", ":8080"), "address to bind when no socket is inherited [APP_ADDR]")
	fs.StringVar(&o.version, "version", envOr("APP_VERSION", version), "version string shown on / [APP_VERSION]")
	fs.StringVar(&o.config, "config", os.Getenv("APP_CONFIG"), "config file shown on /, read once at start [APP_CONFIG]")
	fs.StringVar(&o.events, "events", os.Getenv("APP_EVENTS"), "append one JSON line per lifecycle event to this file [APP_EVENTS]")
	fs.DurationVar(&o.readyDelay, "ready-delay", 0, "simulated start-up work before serving and READY=1")
	fs.DurationVar(&o.drain, "drain", 25*time.Second, "how long in-flight requests may take after SIGTERM")
	fs.DurationVar(&o.lameDuck, "lame-duck", envDuration("APP_LAME_DUCK", 0), "after SIGTERM, how long kept-alive connections are still answered, with \"Connection: close\", before idle ones are closed; 0 closes idle ones at once [APP_LAME_DUCK]")
	fs.BoolVar(&o.failStart, "fail-start", false, "exit 1 before READY=1 (a broken release)")
	fs.BoolVar(&o.neverReady, "never-ready", false, "serve but never send READY=1 (for rollback tests)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run is main without os.Exit, so the tests can run it in a re-executed
// test binary.
func run(args []string, stderr io.Writer) int {
	start := time.Now()
	// Catch the stop signals first: a SIGTERM during start-up must still
	// end the process cleanly, not by the runtime's default.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)

	gen := os.Getenv("ENTRYPOINT_GENERATION")
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("pid", os.Getpid(), "generation", gen)

	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		log.Error("bad command line", "err", err)
		return exitUsage
	}
	ev := openEvents(o.events, gen, log)
	defer ev.close()
	ev.emit("start", start)

	config := ""
	if o.config != "" {
		b, err := os.ReadFile(o.config)
		if err != nil {
			log.Error("read config", "err", fmt.Errorf("read config %s: %w", o.config, err))
			ev.emit("exit", time.Now())
			return exitFailedStart
		}
		config = strings.TrimSpace(string(b))
	}

	ls, source, err := listeners(o.addr)
	if err != nil {
		log.Error("get listeners", "err", err)
		ev.emit("exit", time.Now())
		return exitFailedStart
	}
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.Addr().String()
	}
	log.Info("listening", "source", source, "addr", strings.Join(addrs, ","))

	if o.readyDelay > 0 {
		select {
		case <-time.After(o.readyDelay):
		case sig := <-stop:
			log.Info("stopped during start-up", "signal", sig.String())
			closeAll(ls)
			ev.emit("exit", time.Now())
			return exitOK
		}
	}
	if o.failStart {
		log.Error("failing start-up on purpose (-fail-start)")
		closeAll(ls)
		ev.emit("exit", time.Now())
		return exitFailedStart
	}

	a := &app{pid: os.Getpid(), gen: gen, version: o.version, config: config, start: start}
	var conns connCounter
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         conns.track,
	}
	var serving sync.WaitGroup
	for _, l := range ls {
		serving.Go(func() {
			err := srv.Serve(l)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !a.isDraining() {
				log.Error("serve", "addr", l.Addr().String(), "err", err)
			}
		})
	}

	ready := time.Now()
	a.setStartup(ready.Sub(start))
	if o.neverReady {
		log.Info("serving, never sending READY=1 (-never-ready)")
	} else {
		if err := notify("READY=1\nSTATUS=serving"); err != nil {
			log.Warn("notify ready", "err", err)
		}
		ev.emit("ready", ready)
		log.Info("ready", "startup", ready.Sub(start).String(), "version", o.version)
	}

	sig := <-stop
	ev.emit("stop", time.Now())
	// Stop accepting first: our listeners are dups of the init's sockets,
	// which it keeps open, so every connection still in the backlog is left
	// to the next generation. From now on every response carries
	// "Connection: close". With -lame-duck, keep answering until every
	// connection we accepted is gone (or the bound passed), so each client
	// closes cleanly after one more response. Shutdown closes, unanswered,
	// an idle kept-alive connection whose next request is already on the
	// wire, and a connection whose first request it reads after it began
	// (net/http server.go, conn.serve: "such is life with HTTP/1.1"): a
	// client sees a reset or an EOF, which net/http and browsers retry but a
	// strict client counts. Both steps happen before STOPPING=1 and the log
	// line, so whoever waits for those sees a draining app.
	a.setDraining()
	closeAll(ls)
	// Serve returns once its Accept fails, and it registers every
	// connection it accepted (StateNew) before accepting the next: after
	// this wait the counts below miss none, or a connection accepted just
	// before the close could be dropped by Shutdown unanswered.
	serving.Wait()
	log.Info("stopping", "signal", sig.String(), "drain", o.drain.String(), "lame_duck", o.lameDuck.String())
	if err := notify("STOPPING=1"); err != nil {
		log.Warn("notify stopping", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	if o.lameDuck > 0 {
		lame, lameCancel := context.WithTimeout(ctx, o.lameDuck)
		conns.waitUntil(lame, func(open, _ int) bool { return open == 0 })
		lameCancel()
	} else {
		// At least let every accepted connection send its first request,
		// which Shutdown would otherwise drop unanswered.
		fresh, freshCancel := context.WithTimeout(ctx, time.Second)
		conns.waitUntil(fresh, func(_, fresh int) bool { return fresh == 0 })
		freshCancel()
	}
	// Shutdown closes what is still idle and waits for active requests.
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("drain bound reached, closing remaining connections", "err", err)
		srv.Close()
	}
	serving.Wait()
	ev.emit("exit", time.Now())
	log.Info("exit", "status", exitOK)
	return exitOK
}

// app holds what the handlers report.
type app struct {
	pid     int
	gen     string
	version string
	config  string
	start   time.Time

	mu       sync.Mutex
	startup  time.Duration
	draining bool
}

func (a *app) setDraining() {
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
}

func (a *app) isDraining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// connCounter follows every connection's state through
// http.Server.ConnState.
type connCounter struct {
	mu    sync.Mutex
	state map[net.Conn]http.ConnState
}

func (c *connCounter) track(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		c.state = make(map[net.Conn]http.ConnState)
	}
	if st == http.StateClosed || st == http.StateHijacked {
		delete(c.state, conn)
		return
	}
	c.state[conn] = st
}

// count returns the open connections and those of them that have not sent
// their first request yet.
func (c *connCounter) count() (open, fresh int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.state {
		if st == http.StateNew {
			fresh++
		}
	}
	return len(c.state), fresh
}

// waitUntil polls until done(open, fresh) or ctx ends. Polling is fine
// here: it runs once, during the drain.
func (c *connCounter) waitUntil(ctx context.Context, done func(open, fresh int) bool) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !done(c.count()) {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (a *app) setStartup(d time.Duration) {
	a.mu.Lock()
	a.startup = d
	a.mu.Unlock()
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.root)
	mux.HandleFunc("GET /pid", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, a.pid)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /sleep", a.sleep)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.isDraining() {
			// net/http closes the connection after this response.
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
}

// root answers one line; the benchmark parses the key=value pairs, so keep
// them space separated with the free-form config last.
func (a *app) root(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	startup := a.startup
	a.mu.Unlock()
	line := fmt.Sprintf("pid=%d generation=%s version=%s startup=%s start=%d",
		a.pid, orDash(a.gen), a.version, startup, a.start.UnixNano())
	if a.config != "" {
		line += " config=" + strconv.Quote(a.config)
	}
	fmt.Fprintln(w, line)
}

// sleep is the seed framework's long request: it flushes the headers first
// so a client knows the request is in the handler before it triggers a
// reload, then sleeps and answers the pid.
func (a *app) sleep(w http.ResponseWriter, r *http.Request) {
	d := 10 * time.Second
	if s := r.URL.Query().Get("d"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			http.Error(w, "bad d: want a duration such as 3s", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintln(w, a.pid)
	case <-r.Context().Done():
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// events appends lifecycle events as JSON lines. Each line is one write
// to an O_APPEND file, so lines from several generations sharing the file
// never interleave.
type events struct {
	f   *os.File
	pid int
	gen string
	log *slog.Logger
}

func openEvents(path, gen string, log *slog.Logger) *events {
	e := &events{pid: os.Getpid(), gen: gen, log: log}
	if path == "" {
		return e
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		log.Warn("open events file", "err", fmt.Errorf("open events %s: %w", path, err))
		return e
	}
	e.f = f
	return e
}

func (e *events) emit(name string, t time.Time) {
	if e.f == nil {
		return
	}
	b, _ := json.Marshal(struct {
		Event string `json:"event"`
		Pid   int    `json:"pid"`
		Gen   string `json:"gen"`
		T     int64  `json:"t"`
	}{name, e.pid, e.gen, t.UnixNano()})
	if _, err := e.f.Write(append(b, '\n')); err != nil {
		e.log.Warn("write event", "err", err)
	}
}

func (e *events) close() {
	if e.f != nil {
		e.f.Close()
	}
}
