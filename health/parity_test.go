package health

import (
	"log/slog"
	"math"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/status/statustest"
)

// The init's go_*, process_* and entrypoint_app_process_* metrics are the
// ones client_golang's default collectors export (issue 13 replaced them
// to keep client_golang out of the binary): same families, same types,
// same labels, and the same values where both read the same thing.
func TestRuntimeAndProcessMetricsMatchClientGolang(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	f.Set(func(st *status.Status) { st.Apps[0].Current.Pid = os.Getpid() })

	ours := promtext.NewRegistry()
	RegisterDefault(ours, slog.New(slog.DiscardHandler))
	RegisterAppProcess(ours, f, "web")

	ref := prometheus.NewRegistry()
	ref.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pid := func() (int, error) { return os.Getpid(), nil }
	prometheus.WrapRegistererWith(prometheus.Labels{"app": "web"}, ref).MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{PidFn: pid, Namespace: "entrypoint_app"}))

	refFams, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, ours)
	for _, want := range refFams {
		name := want.GetName()
		have, ok := got[name]
		if !ok {
			t.Errorf("%s: missing (client_golang exports it)", name)
			continue
		}
		if have.GetType() != want.GetType() {
			t.Errorf("%s: type %v, client_golang %v", name, have.GetType(), want.GetType())
		}
		if a, b := labelNames(have), labelNames(want); a != b {
			t.Errorf("%s: labels %q, client_golang %q", name, a, b)
		}
		delete(got, name)
	}
	for name := range got {
		t.Errorf("%s: exported, but client_golang's collectors have no such metric", name)
	}

	// Values both read from the same place must agree.
	fams := gather(t, ours)
	refByName := map[string]*dto.MetricFamily{}
	for _, mf := range refFams {
		refByName[mf.GetName()] = mf
	}
	for _, c := range []struct {
		name string
		tol  float64
	}{
		{"process_start_time_seconds", 0.011},
		{"process_max_fds", 0},
		{"process_virtual_memory_max_bytes", 0},
		{"entrypoint_app_process_start_time_seconds", 0.011},
		{"entrypoint_app_process_max_fds", 0},
		{"go_gc_gogc_percent", 0},
		{"go_gc_gomemlimit_bytes", 0},
		{"go_sched_gomaxprocs_threads", 0},
		{"go_info", 0},
	} {
		a, okA := value(fams[c.name], nil)
		b, okB := value(refByName[c.name], nil)
		if !okA || !okB {
			t.Errorf("%s: ours found %v, client_golang's found %v", c.name, okA, okB)
			continue
		}
		if math.Abs(a-b) > c.tol {
			t.Errorf("%s = %v, client_golang reads %v", c.name, a, b)
		}
	}
	// promtool's linter, as `promtool check metrics` runs it, over the
	// Go and process families too.
	problems, err := testutil.GatherAndLint(textGatherer{ours})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
	if v, _ := value(fams["process_open_fds"], nil); v < 3 {
		t.Errorf("process_open_fds = %v, want at least stdin, stdout, stderr", v)
	}
	if v, _ := value(fams["process_resident_memory_bytes"], nil); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v, want a Go process's size", v)
	}
}

func labelNames(mf *dto.MetricFamily) string {
	s := ""
	for _, m := range mf.Metric[:1] {
		for _, l := range m.Label {
			s += l.GetName() + ","
		}
	}
	return s
}

func TestGOGCAsTheRuntimeReadsIt(t *testing.T) {
	for in, want := range map[string]float64{"": 100, "off": -1, "50": 50, "0": 0, "x": 100, "200": 200, "-5": -1, "+50": 100, "99999999999": 100} {
		if got := gogcPercent(in); got != want {
			t.Errorf("GOGC=%q: %v, want %v", in, got, want)
		}
	}
}
