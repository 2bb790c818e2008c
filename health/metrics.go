package health

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/status"
)

const namespace = "entrypoint"

// Metrics counts supervisor events in Prometheus metrics and reports the
// supervisor's state at scrape time. It implements status.Events; every
// method is safe for concurrent use and never blocks.
type Metrics struct {
	reloads         *prometheus.CounterVec
	reloadDuration  *prometheus.HistogramVec
	restarts        *prometheus.CounterVec
	signals         *prometheus.CounterVec
	configChanges   *prometheus.CounterVec
	validateFailure *prometheus.CounterVec
	takeoverCalls   *prometheus.CounterVec
	watchFailures   *prometheus.CounterVec
	leftovers       *prometheus.CounterVec
}

var _ status.Events = (*Metrics)(nil)

// NewMetrics registers the init's metrics on reg: event counters fed
// through the returned Metrics, gauges read from c.Status() at scrape
// time, and entrypoint_zombies_reaped_total read from orphans (nil: not
// exported). It panics when the metrics are already registered on reg, a
// wiring mistake.
func NewMetrics(reg prometheus.Registerer, c status.Controller, orphans func() uint64) *Metrics {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "reloads_total"),
			Help: "Hot swaps (reloads) of an app that finished, by result: success when the new generation passed its readiness gate and took over, failure when it was rolled back and the old generation kept serving.",
		}, []string{"app", "result"}),
		reloadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prometheus.BuildFQName(namespace, "", "reload_duration_seconds"),
			Help:    "Time from the start of a hot swap until the new generation took over or was rolled back.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"app"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "restarts_total"),
			Help: "Full restarts of an app, by kind: policy when the app exited on its own and the restart policy started it again, manual when an operator asked for a restart.",
		}, []string{"app", "kind"}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "signals_forwarded_total"),
			Help: "Signals the init received and forwarded to the apps, by signal name.",
		}, []string{"signal"}),
		configChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "config_changes_total"),
			Help: "Changes of an app's watched config files and what came of them: applied, validate_failed, swap_failed or signalled.",
		}, []string{"app", "result"}),
		validateFailure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "config_validate_failures_total"),
			Help: "Config changes the app's validate command rejected; the running generation kept serving the old config.",
		}, []string{"app"}),
		takeoverCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "takeover_calls_total"),
			Help: "bind, listen and shutdown calls of an app that the bind takeover answered, by result: taken (bind got the owned socket), passed (not an owned socket: the kernel ran it), refused (an owned port at an address that does not overlap), answered (listen on an owned socket), suppressed (shutdown of an owned listener), failed.",
		}, []string{"app", "call", "result"}),
		watchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "watch_failures_total"),
			Help: "Times an app's config watch stopped or could not start (inotify instances exhausted, say); it is retried, and entrypoint_watch_up says whether it runs.",
		}, []string{"app"}),
		leftovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "leftover_processes_ended_total"),
			Help: "Processes an app's drained or exited generation left behind outside its process group (daemons it setsid'd) that the init ended with SIGTERM, then SIGKILL.",
		}, []string{"app"}),
	}
	reg.MustRegister(m.reloads, m.reloadDuration, m.restarts, m.signals, m.configChanges, m.validateFailure,
		m.takeoverCalls, m.watchFailures, m.leftovers, newStatusCollector(c))
	if orphans != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: prometheus.BuildFQName(namespace, "", "zombies_reaped_total"),
			Help: "Exited processes the init reaped that it had not started itself (orphans re-parented to it).",
		}, func() float64 { return float64(orphans()) }))
	}
	// Start every app's series at zero so rate() and absent-series alerts
	// work before the first event.
	for _, a := range c.Status().Apps {
		m.reloads.WithLabelValues(a.Name, "success")
		m.reloads.WithLabelValues(a.Name, "failure")
		m.restarts.WithLabelValues(a.Name, "policy")
		m.restarts.WithLabelValues(a.Name, "manual")
		m.validateFailure.WithLabelValues(a.Name)
		m.leftovers.WithLabelValues(a.Name)
		if a.Watch != nil {
			m.watchFailures.WithLabelValues(a.Name)
		}
	}
	return m
}

// TakeoverCall implements status.Events.
func (m *Metrics) TakeoverCall(app, call, result string) {
	m.takeoverCalls.WithLabelValues(app, call, result).Inc()
}

// WatchFailed implements status.Events.
func (m *Metrics) WatchFailed(app string) {
	m.watchFailures.WithLabelValues(app).Inc()
}

// LeftoversEnded implements status.Events.
func (m *Metrics) LeftoversEnded(app string, n int) {
	m.leftovers.WithLabelValues(app).Add(float64(n))
}

// SignalForwarded implements status.Events.
func (m *Metrics) SignalForwarded(_ string, sig syscall.Signal) {
	m.signals.WithLabelValues(signalName(sig)).Inc()
}

// ActionDone implements status.Events.
func (m *Metrics) ActionDone(r status.Result) {
	switch r.Action {
	case "reload":
		result := "success"
		if !r.OK {
			result = "failure"
		}
		m.reloads.WithLabelValues(r.App, result).Inc()
		m.reloadDuration.WithLabelValues(r.App).Observe(r.Duration.Seconds())
	case "restart":
		m.restarts.WithLabelValues(r.App, "manual").Inc()
	}
}

// AppRestarted implements status.Events.
func (m *Metrics) AppRestarted(app string) {
	m.restarts.WithLabelValues(app, "policy").Inc()
}

// ConfigChange implements status.Events.
func (m *Metrics) ConfigChange(app, result string) {
	m.configChanges.WithLabelValues(app, result).Inc()
	if result == "validate_failed" {
		m.validateFailure.WithLabelValues(app).Inc()
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
type statusCollector struct {
	c                                                      status.Controller
	up, generation, draining, crashLoop, takeover, watchUp *prometheus.Desc
}

func newStatusCollector(c status.Controller) *statusCollector {
	return &statusCollector{
		c: c,
		up: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "app_up"),
			"1 when the app has a current generation that passed its readiness gate, else 0.", []string{"app"}, nil),
		generation: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "generation"),
			"Number of the app's current generation; it grows by one with every hot swap or restart that took over.", []string{"app"}, nil),
		draining: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "draining"),
			"1 while an old generation drains after a swap or restart, or the init is shutting down, else 0.", nil, nil),
		crashLoop: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "app_crashloop"),
			"1 when the app restarted too often in a row after short runs (liveness fails), else 0.", []string{"app"}, nil),
		takeover: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "takeover_active"),
			"1 when the app's own bind() of a listened address gets the owned socket (bind takeover), 0 when it is off or unavailable (state says which); only for apps with listeners.", []string{"app", "state"}, nil),
		watchUp: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "watch_up"),
			"1 while the app's config watch runs, 0 while it is down and changes are not applied; only apps with --watch.", []string{"app"}, nil),
	}
}

func (s *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.up
	ch <- s.generation
	ch <- s.draining
	ch <- s.crashLoop
	ch <- s.takeover
	ch <- s.watchUp
}

func (s *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.c.Status()
	draining := st.ShuttingDown
	for _, a := range st.Apps {
		up, gen := 0.0, 0.0
		if a.Current != nil {
			gen = float64(a.Current.N)
			if a.Current.Phase == status.PhaseReady {
				up = 1
			}
		}
		// A generation being drained is never Current: the supervisor
		// moves it to Others when it stops serving.
		for _, o := range a.Others {
			draining = draining || o.Phase == status.PhaseDraining
		}
		ch <- prometheus.MustNewConstMetric(s.up, prometheus.GaugeValue, up, a.Name)
		ch <- prometheus.MustNewConstMetric(s.generation, prometheus.GaugeValue, gen, a.Name)
		ch <- prometheus.MustNewConstMetric(s.crashLoop, prometheus.GaugeValue, b2f(a.CrashLoop), a.Name)
		if a.Takeover != "" {
			state, _, _ := strings.Cut(a.Takeover, ":")
			ch <- prometheus.MustNewConstMetric(s.takeover, prometheus.GaugeValue, b2f(state == status.TakeoverActive), a.Name, state)
		}
		if a.Watch != nil {
			ch <- prometheus.MustNewConstMetric(s.watchUp, prometheus.GaugeValue, b2f(a.Watch.OK), a.Name)
		}
	}
	ch <- prometheus.MustNewConstMetric(s.draining, prometheus.GaugeValue, b2f(draining))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RegisterDefault registers the Go runtime and process collectors of the
// init itself on reg (the private registry has neither by default).
func RegisterDefault(reg prometheus.Registerer) error {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("register go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return fmt.Errorf("register process collector: %w", err)
	}
	return nil
}

// errNoGeneration makes the app's process collector skip a scrape while no
// generation runs; the collector does not report it (ReportErrors off), so
// the rest of the scrape succeeds.
var errNoGeneration = errors.New("health: app has no current generation")

// RegisterAppProcess exports the process metrics (CPU, memory, fds, start
// time) of app's current generation as entrypoint_app_process_*{app=...},
// following the PID across swaps. Workers of the app are not included.
func RegisterAppProcess(reg prometheus.Registerer, c status.Controller, app string) error {
	pid := func() (int, error) {
		for _, a := range c.Status().Apps {
			if a.Name == app && a.Current != nil && a.Current.Pid > 0 {
				return a.Current.Pid, nil
			}
		}
		return 0, errNoGeneration
	}
	pc := collectors.NewProcessCollector(collectors.ProcessCollectorOpts{PidFn: pid, Namespace: namespace + "_app"})
	if err := prometheus.WrapRegistererWith(prometheus.Labels{"app": app}, reg).Register(pc); err != nil {
		return fmt.Errorf("register process collector of app %q: %w", app, err)
	}
	return nil
}
