package health

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status"
)

const namespace = "entrypoint"

// Metrics counts supervisor events in Prometheus metrics and reports the
// supervisor's state at scrape time. It implements status.Events; every
// method is safe for concurrent use and never blocks.
type Metrics struct {
	reloads         *promtext.CounterVec
	reloadDuration  *promtext.HistogramVec
	restarts        *promtext.CounterVec
	signals         *promtext.CounterVec
	configChanges   *promtext.CounterVec
	validateFailure *promtext.CounterVec
	takeoverCalls   *promtext.CounterVec
	watchFailures   *promtext.CounterVec
	leftovers       *promtext.CounterVec
}

var _ status.Events = (*Metrics)(nil)

// NewMetrics registers the init's metrics on reg: event counters fed
// through the returned Metrics, gauges read from c.Status() at scrape
// time, and entrypoint_zombies_reaped_total read from orphans (nil: not
// exported). Call it once per registry: a second call's series of the
// same labels are left out of the scrape, with an error.
func NewMetrics(reg *promtext.Registry, c status.Controller, orphans func() uint64) *Metrics {
	m := &Metrics{
		reloads: promtext.NewCounterVec(namespace+"_reloads_total",
			"Hot swaps (reloads) of an app that finished, by result: success when the new generation passed its readiness gate and took over, failure when it was rolled back and the old generation kept serving.",
			"app", "result"),
		reloadDuration: promtext.NewHistogramVec(namespace+"_reload_duration_seconds",
			"Time from the start of a hot swap until the new generation took over or was rolled back.",
			[]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
			"app"),
		restarts: promtext.NewCounterVec(namespace+"_restarts_total",
			"Full restarts of an app, by kind: policy when the app exited on its own and the restart policy started it again, manual when an operator asked for a restart.",
			"app", "kind"),
		signals: promtext.NewCounterVec(namespace+"_signals_forwarded_total",
			"Signals the init received and forwarded to the apps, by signal name.",
			"signal"),
		configChanges: promtext.NewCounterVec(namespace+"_config_changes_total",
			"Changes of an app's watched config files and what came of them: applied, validate_failed, swap_failed or signalled.",
			"app", "result"),
		validateFailure: promtext.NewCounterVec(namespace+"_config_validate_failures_total",
			"Config changes the app's validate command rejected; the running generation kept serving the old config.",
			"app"),
		takeoverCalls: promtext.NewCounterVec(namespace+"_takeover_calls_total",
			"bind, listen and shutdown calls of an app that the bind takeover answered, by result: taken (bind got the owned socket), passed (not an owned socket: the kernel ran it), refused (an owned port at an address that does not overlap), answered (listen on an owned socket), suppressed (shutdown of an owned listener), failed.",
			"app", "call", "result"),
		watchFailures: promtext.NewCounterVec(namespace+"_watch_failures_total",
			"Times an app's config watch stopped or could not start (inotify instances exhausted, say); it is retried, and entrypoint_watch_up says whether it runs.",
			"app"),
		leftovers: promtext.NewCounterVec(namespace+"_leftover_processes_ended_total",
			"Processes an app's drained or exited generation left behind outside its process group (daemons it setsid'd) that the init ended with SIGTERM, then SIGKILL.",
			"app"),
	}
	for _, c := range []promtext.Collector{m.reloads, m.reloadDuration, m.restarts, m.signals, m.configChanges,
		m.validateFailure, m.takeoverCalls, m.watchFailures, m.leftovers, &statusCollector{c: c}} {
		reg.Register(c)
	}
	if orphans != nil {
		reg.Register(promtext.CollectorFunc(func(add func(promtext.Family)) {
			add(promtext.Family{Name: namespace + "_zombies_reaped_total", Type: promtext.Counter,
				Help:   "Exited processes the init reaped that it had not started itself (orphans re-parented to it).",
				Series: []promtext.Series{{Value: float64(orphans())}}})
		}))
	}
	// Start every app's series at zero so rate() and absent-series alerts
	// work before the first event.
	for _, a := range c.Status().Apps {
		m.reloads.With(a.Name, "success")
		m.reloads.With(a.Name, "failure")
		m.restarts.With(a.Name, "policy")
		m.restarts.With(a.Name, "manual")
		m.validateFailure.With(a.Name)
		m.leftovers.With(a.Name)
		if a.Watch != nil {
			m.watchFailures.With(a.Name)
		}
	}
	return m
}

// TakeoverCall implements status.Events.
func (m *Metrics) TakeoverCall(app, call, result string) {
	m.takeoverCalls.With(app, call, result).Inc()
}

// WatchFailed implements status.Events.
func (m *Metrics) WatchFailed(app string) {
	m.watchFailures.With(app).Inc()
}

// LeftoversEnded implements status.Events.
func (m *Metrics) LeftoversEnded(app string, n int) {
	m.leftovers.With(app).Add(float64(n))
}

// SignalForwarded implements status.Events.
func (m *Metrics) SignalForwarded(_ string, sig syscall.Signal) {
	m.signals.With(signalName(sig)).Inc()
}

// ActionDone implements status.Events.
func (m *Metrics) ActionDone(r status.Result) {
	switch r.Action {
	case "reload":
		result := "success"
		if !r.OK {
			result = "failure"
		}
		m.reloads.With(r.App, result).Inc()
		m.reloadDuration.With(r.App).Observe(r.Duration.Seconds())
	case "restart":
		m.restarts.With(r.App, "manual").Inc()
	}
}

// AppRestarted implements status.Events.
func (m *Metrics) AppRestarted(app string) {
	m.restarts.With(app, "policy").Inc()
}

// ConfigChange implements status.Events.
func (m *Metrics) ConfigChange(app, result string) {
	m.configChanges.With(app, result).Inc()
	if result == "validate_failed" {
		m.validateFailure.With(app).Inc()
	}
}

func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	// Real-time signals have no name in x/sys.
	return "SIG" + strconv.Itoa(int(sig))
}

// statusCollector reports gauges from one Status snapshot per scrape, so
// they are consistent with each other and never stale.
type statusCollector struct{ c status.Controller }

func (s *statusCollector) Collect(add func(promtext.Family)) {
	gauge := func(name, help string) promtext.Family {
		return promtext.Family{Name: namespace + "_" + name, Help: help, Type: promtext.Gauge}
	}
	up := gauge("app_up", "1 when the app has a current generation that passed its readiness gate, else 0.")
	generation := gauge("generation", "Number of the app's current generation; it grows by one with every hot swap or restart that took over.")
	crashLoop := gauge("app_crashloop", "1 when the app restarted too often in a row after short runs (liveness fails), else 0.")
	takeover := gauge("takeover_active", "1 when the app's own bind() of a listened address gets the owned socket (bind takeover), 0 when it is off or unavailable (state says which); only for apps with listeners.")
	watchUp := gauge("watch_up", "1 while the app's config watch runs, 0 while it is down and changes are not applied; only apps with --watch.")
	draining := gauge("draining", "1 while an old generation drains after a swap or restart, or the init is shutting down, else 0.")
	app := func(name string, extra ...promtext.Label) []promtext.Label {
		return append([]promtext.Label{{Name: "app", Value: name}}, extra...)
	}

	st := s.c.Status()
	isDraining := st.ShuttingDown
	for _, a := range st.Apps {
		u, gen := 0.0, 0.0
		if a.Current != nil {
			gen = float64(a.Current.N)
			if a.Current.Phase == status.PhaseReady {
				u = 1
			}
		}
		// A generation being drained is never Current: the supervisor
		// moves it to Others when it stops serving.
		for _, o := range a.Others {
			isDraining = isDraining || o.Phase == status.PhaseDraining
		}
		up.Series = append(up.Series, promtext.Series{Labels: app(a.Name), Value: u})
		generation.Series = append(generation.Series, promtext.Series{Labels: app(a.Name), Value: gen})
		crashLoop.Series = append(crashLoop.Series, promtext.Series{Labels: app(a.Name), Value: b2f(a.CrashLoop)})
		if a.Takeover != "" {
			state, _, _ := strings.Cut(a.Takeover, ":")
			takeover.Series = append(takeover.Series, promtext.Series{Labels: app(a.Name, promtext.Label{Name: "state", Value: state}), Value: b2f(state == status.TakeoverActive)})
		}
		if a.Watch != nil {
			watchUp.Series = append(watchUp.Series, promtext.Series{Labels: app(a.Name), Value: b2f(a.Watch.OK)})
		}
	}
	draining.Series = []promtext.Series{{Value: b2f(isDraining)}}
	for _, f := range []promtext.Family{up, generation, crashLoop, takeover, watchUp, draining} {
		add(f)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RegisterDefault registers the init's own Go runtime metrics (go_*) and
// process metrics (process_*) on reg. A scrape that cannot read the init's
// own /proc entry leaves process_* out and logs why.
func RegisterDefault(reg *promtext.Registry, log *slog.Logger) {
	reg.Register(goCollector{})
	reg.Register(&processCollector{
		prefix: "process",
		pid:    func() (int, bool) { return os.Getpid(), true },
		read:   procReader(),
		onError: func(err error) {
			log.Warn("process metrics of the init unavailable until /proc can be read", "err", err)
		},
	})
}

// RegisterAppProcess exports the process metrics (CPU, memory, fds, start
// time) of app's current generation as entrypoint_app_process_*{app=...},
// following the PID across swaps. Workers of the app are not included.
// While the app has no generation, or its process just exited, the
// series are absent from the scrape.
func RegisterAppProcess(reg *promtext.Registry, c status.Controller, app string) {
	reg.Register(&processCollector{
		prefix: namespace + "_app_process",
		labels: []promtext.Label{{Name: "app", Value: app}},
		pid: func() (int, bool) {
			for _, a := range c.Status().Apps {
				if a.Name == app && a.Current != nil && a.Current.Pid > 0 {
					return a.Current.Pid, true
				}
			}
			return 0, false
		},
		read: procReader(),
	})
}
