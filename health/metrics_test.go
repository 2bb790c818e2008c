package health

import (
	"bytes"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/status/statustest"
)

func TestMetricsCountEventsAndReadStatus(t *testing.T) {
	f := statustest.New(statustest.Running("web", 7), status.AppStatus{Name: "worker", State: status.StateBackoff, CrashLoop: true})
	f.Set(func(st *status.Status) {
		st.Apps[0].Others = []status.Generation{{N: 6, Pid: 1006, Phase: status.PhaseDraining}}
	})
	reg := promtext.NewRegistry()
	var orphans uint64 = 3
	m := NewMetrics(reg, f, func() uint64 { return orphans })

	m.ActionDone(status.Result{App: "web", Action: "reload", OK: true, Duration: 300 * time.Millisecond})
	m.ActionDone(status.Result{App: "web", Action: "reload", OK: false, Duration: 70 * time.Second})
	m.ActionDone(status.Result{App: "web", Action: "restart", OK: true})
	m.AppRestarted("worker")
	m.AppRestarted("worker")
	m.SignalForwarded("web", syscall.SIGTERM)
	m.SignalForwarded("worker", syscall.SIGTERM)
	m.SignalForwarded("web", syscall.Signal(40))
	m.ConfigChange("web", "applied")
	m.ConfigChange("web", "validate_failed")

	// Served over HTTP and parsed like Prometheus does.
	_, base, _ := start(t, Options{Controller: f, Registry: reg})
	r := do(t, nil, "GET", base+"/metrics", nil)
	if r.code != 200 {
		t.Fatalf("/metrics = %d: %s", r.code, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"entrypoint_reloads_total", map[string]string{"app": "web", "result": "success"}, 1},
		{"entrypoint_reloads_total", map[string]string{"app": "web", "result": "failure"}, 1},
		{"entrypoint_reloads_total", map[string]string{"app": "worker", "result": "success"}, 0},
		{"entrypoint_restarts_total", map[string]string{"app": "web", "kind": "manual"}, 1},
		{"entrypoint_restarts_total", map[string]string{"app": "worker", "kind": "policy"}, 2},
		{"entrypoint_signals_forwarded_total", map[string]string{"signal": "SIGTERM"}, 2},
		{"entrypoint_signals_forwarded_total", map[string]string{"signal": "SIG40"}, 1},
		{"entrypoint_config_changes_total", map[string]string{"app": "web", "result": "applied"}, 1},
		{"entrypoint_config_validate_failures_total", map[string]string{"app": "web"}, 1},
		{"entrypoint_zombies_reaped_total", nil, 3},
		{"entrypoint_app_up", map[string]string{"app": "web"}, 1},
		{"entrypoint_app_up", map[string]string{"app": "worker"}, 0},
		{"entrypoint_generation", map[string]string{"app": "web"}, 7},
		{"entrypoint_app_crashloop", map[string]string{"app": "worker"}, 1},
		{"entrypoint_app_crashloop", map[string]string{"app": "web"}, 0},
		{"entrypoint_draining", nil, 1},
	} {
		got, ok := value(fams[tc.name], tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	h := fams["entrypoint_reload_duration_seconds"]
	if h == nil || h.Metric[0].GetHistogram().GetSampleCount() != 2 || h.Metric[0].GetHistogram().GetSampleSum() != 70.3 {
		t.Errorf("reload duration histogram = %v, want 2 samples summing to 70.3", h)
	}

	// The gauges follow the supervisor without any event.
	f.Set(func(st *status.Status) {
		st.Apps[0].Current = &status.Generation{N: 8, Pid: 1008, Phase: status.PhaseReady}
		st.Apps[0].Others = nil
	})
	orphans = 5
	want := `
# HELP entrypoint_draining 1 while an old generation drains after a swap or restart, or the init is shutting down, else 0.
# TYPE entrypoint_draining gauge
entrypoint_draining 0
# HELP entrypoint_generation Number of the app's current generation; it grows by one with every hot swap or restart that took over.
# TYPE entrypoint_generation gauge
entrypoint_generation{app="web"} 8
entrypoint_generation{app="worker"} 0
# HELP entrypoint_zombies_reaped_total Exited processes the init reaped that it had not started itself (orphans re-parented to it).
# TYPE entrypoint_zombies_reaped_total counter
entrypoint_zombies_reaped_total 5
`
	if err := testutil.GatherAndCompare(textGatherer{reg}, strings.NewReader(want),
		"entrypoint_draining", "entrypoint_generation", "entrypoint_zombies_reaped_total"); err != nil {
		t.Error(err)
	}

	// promtool's linter, as `promtool check metrics` runs it.
	problems, err := testutil.GatherAndLint(textGatherer{reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
}

func TestShutdownCountsAsDraining(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	reg := promtext.NewRegistry()
	NewMetrics(reg, f, nil)
	f.Shutdown("test")
	if err := testutil.GatherAndCompare(textGatherer{reg}, strings.NewReader(`
# HELP entrypoint_draining 1 while an old generation drains after a swap or restart, or the init is shutting down, else 0.
# TYPE entrypoint_draining gauge
entrypoint_draining 1
`), "entrypoint_draining", "entrypoint_zombies_reaped_total"); err != nil {
		t.Error(err)
	}
}

func TestAppProcessMetricsFollowCurrentPid(t *testing.T) {
	// The test process stands in for the app's current generation.
	f := statustest.New(status.AppStatus{Name: "web", State: status.StateStarting}, statustest.Running("api", 1))
	f.Set(func(st *status.Status) { st.Apps[1].Current.Pid = os.Getpid() })
	reg := promtext.NewRegistry()
	RegisterAppProcess(reg, f, "web")
	RegisterAppProcess(reg, f, "api")
	RegisterDefault(reg, slog.New(slog.DiscardHandler))
	fams := gather(t, reg)
	if _, ok := value(fams["entrypoint_app_process_start_time_seconds"], map[string]string{"app": "api"}); !ok {
		t.Errorf("no process metrics for app api:\n%v", fams["entrypoint_app_process_start_time_seconds"])
	}
	if _, ok := value(fams["entrypoint_app_process_start_time_seconds"], map[string]string{"app": "web"}); ok {
		t.Error("process metrics for app web, which has no generation")
	}
	if fams["process_start_time_seconds"] == nil || fams["go_goroutines"] == nil {
		t.Error("RegisterDefault did not add the init's own process and Go metrics")
	}

	// Swap: web gets a generation (our PID), and is measured from then on.
	f.Set(func(st *status.Status) {
		st.Apps[0].Current = &status.Generation{N: 1, Pid: os.Getpid(), Phase: status.PhaseReady}
	})
	fams = gather(t, reg)
	if _, ok := value(fams["entrypoint_app_process_start_time_seconds"], map[string]string{"app": "web"}); !ok {
		t.Error("no process metrics for app web after it got a generation")
	}
}

// textGatherer reads a registry the way Prometheus does: its text output,
// parsed by Prometheus' own parser, so that client_golang's test helpers
// (compare, promtool's lint) check what a scraper would see.
type textGatherer struct{ r *promtext.Registry }

func (g textGatherer) Gather() ([]*dto.MetricFamily, error) {
	var b bytes.Buffer
	if err := g.r.Write(&b); err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		return nil, err
	}
	var out []*dto.MetricFamily
	for _, f := range fams {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

func gather(t *testing.T, r *promtext.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := textGatherer{r}.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value finds the sample of fam whose labels include want.
func value(fam *dto.MetricFamily, want map[string]string) (float64, bool) {
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
		return 0, true
	}
	return 0, false
}
