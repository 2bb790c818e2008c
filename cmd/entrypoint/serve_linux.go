package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"

	// earlysig must be initialised before anything else catches or
	// misses a signal; importing it first documents that (Go initialises
	// packages in dependency order, then by import path).
	"github.com/entrypoint/entrypoint/earlysig"
	// The exec shim acts in its own init(), before the heavy packages
	// below are initialised (package graceful/shim).
	_ "github.com/entrypoint/entrypoint/graceful/shim"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/control"
	"github.com/entrypoint/entrypoint/health"
	supervisor "github.com/entrypoint/entrypoint/init"
	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/reaper"
	"github.com/entrypoint/entrypoint/status"
)

// stopEarlySignals gives a CLI subcommand the kernel's default signal
// handling back: earlysig caught every signal for the init it might have been.
func stopEarlySignals() { earlysig.Stop() }

// serve is the init itself.
func serve(args []string, stderr io.Writer) int {
	cfg, err := config.Load(args, nil)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	for _, w := range config.UnknownEnv(os.Environ()) {
		log.Warn(w)
	}
	for _, note := range cfg.Notes {
		log.Info(note)
	}

	if os.Getpid() != 1 {
		// Orphans of the app re-parent to the nearest subreaper; without
		// one they would go to the host's init and we could not reap
		// them (tini's reaper_warning).
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Warn("not PID 1 and cannot register as child subreaper: zombies of the app will not be reaped; run entrypoint as PID 1 (docker run --init is not needed) or on Linux >= 3.4", "err", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rp := reaper.New(reaper.Options{
		Orphan: func(e reaper.Exit) {
			log.Debug("orphan reaped", "pid", e.Pid, "status", e.String())
		},
		// Every catchable signal is caught before any child exists (the
		// takeover probe included): every child starts through the
		// reaper, and earlysig finishes the rarer signals in the
		// background meanwhile, beside the package inits, the flag
		// parsing and all the set-up below.
		BeforeStart: earlysig.Wait,
	})
	go rp.Run(ctx)

	opts := supervisor.Options{Config: cfg, Reaper: rp, Signals: earlysig.Incoming(), Logger: log}
	// Metrics are served on the health listener only: without it the
	// registry and its collectors are not built, and the supervisor
	// counts into nothing.
	var events *lateEvents
	if cfg.Health.Listen != config.Off {
		events = &lateEvents{}
		opts.Events = events
	}
	sup, err := supervisor.New(opts)
	if err != nil {
		log.Error("cannot start", "err", err, "fix", hint(err))
		return exitStartup
	}

	if cfg.Health.Listen != config.Off {
		reg := promtext.NewRegistry()
		events.Events = health.NewMetrics(reg, sup, rp.Orphans)
		for _, a := range cfg.Apps {
			health.RegisterAppProcess(reg, sup, a.Name)
		}
		health.RegisterDefault(reg, log)
		token, err := adminToken(cfg)
		if err != nil {
			log.Error("cannot start", "err", err)
			return exitUsage
		}
		srv, err := health.New(health.Options{
			Listen: cfg.Health.Listen, TLSCert: cfg.Health.TLSCert, TLSKey: cfg.Health.TLSKey,
			Admin: cfg.Health.Admin, AdminToken: token,
			Controller: sup, Registry: reg, Logger: log,
		})
		if err == nil {
			err = srv.Listen()
		}
		if err != nil {
			log.Error("cannot start", "err", err, "fix", hint(err))
			return exitStartup
		}
		go func() {
			if err := srv.Serve(ctx); err != nil {
				log.Error("health server stopped", "err", err)
			}
		}()
	}
	if cfg.ControlSocket != "" {
		l, err := control.Listen(cfg.ControlSocket)
		switch {
		case err == nil:
			log.Debug("control socket bound", "socket", l.Addr().String())
			go func() {
				if err := control.Serve(ctx, l, sup, control.Options{Logger: log, AllowOtherPidns: cfg.ControlAllowOtherPidns}); err != nil {
					log.Error("control socket stopped; entrypoint reload/status no longer reach this process", "socket", cfg.ControlSocket, "err", err)
				}
			}()
		case cfg.ControlSocket == config.DefaultControlSocket:
			// The default name is per container (PID and mount
			// namespace): only a second entrypoint in one container,
			// or on one host outside containers, finds it taken.
			// Serving the app matters more than the CLI.
			log.Warn("control socket unavailable; entrypoint reload/status will not reach this process; set --control-socket to a free path", "socket", cfg.ControlSocket, "err", err)
		default:
			log.Error("cannot start", "err", err, "fix", hint(err))
			return exitStartup
		}
	}
	return sup.Run(ctx)
}

// hint says how to fix a start-up error, in the user's terms.
func hint(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "something else holds that address (another process, or another entrypoint in this network namespace): stop it or choose another --listen / --health-listen address"
	case errors.Is(err, syscall.EACCES) && strings.Contains(err.Error(), "bind"):
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE: listen on a port >= 1024 and map it (-p 80:8080, Service targetPort)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "that IP is not on this host: use :PORT or an address of this container"
	}
	return "see the error; entrypoint validate checks the configuration"
}

// adminToken is the admin bearer token: ENTRYPOINT_ADMIN_TOKEN, else the
// first line of health.adminTokenFile (a mounted Secret).
func adminToken(cfg *config.Config) (string, error) {
	if cfg.Health.AdminToken != "" || cfg.Health.AdminTokenFile == "" {
		return cfg.Health.AdminToken, nil
	}
	b, err := os.ReadFile(cfg.Health.AdminTokenFile)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w; fix --admin-token-file or mount the Secret", err)
	}
	tok := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty; put the token in it", cfg.Health.AdminTokenFile)
	}
	return tok, nil
}

// lateEvents lets the supervisor exist before the metrics that read it;
// the supervisor emits no event before Run.
type lateEvents struct{ status.Events }

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
