package promtext

import (
	"bytes"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func write(t *testing.T, r *Registry) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := r.Write(&b)
	return b.String(), err
}

func TestWriteFormat(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("x_requests_total", "Requests by code.\nSecond line with a \\ backslash.", "code", "app")
	c.With("200", "web").Add(3)
	c.With("500", `we"b\n`+"\n").Inc()
	c.With("200", "api").Inc()
	h := NewHistogramVec("x_seconds", "Durations.", []float64{0.1, 1, 10}, "app")
	h.With("web").Observe(0.05)
	h.With("web").Observe(0.1) // on a bound: counts in that bucket (le)
	h.With("web").Observe(5)
	h.With("web").Observe(50)
	r.Register(c)
	r.Register(h)
	r.Register(CollectorFunc(func(add func(Family)) {
		add(Family{Name: "a_summary", Type: Summary, Series: []Series{{
			Quantiles: []Quantile{{0, 0.5}, {1, 2}}, Sum: 3, Count: 2}}})
		add(Family{Name: "b_gauge", Help: "Gauges.", Type: Gauge, Series: []Series{
			{Value: math.Inf(1), Labels: []Label{{"z", "1"}, {"a", "2"}}},
			{Value: math.NaN(), Labels: []Label{{"a", "1"}}},
			{Value: 1.8446744073709552e+19, Labels: []Label{{"a", "0"}}},
		}})
		add(Family{Name: "empty", Type: Gauge}) // no series: not written
	}))
	got, err := write(t, r)
	if err != nil {
		t.Fatal(err)
	}
	want := `# TYPE a_summary summary
a_summary{quantile="0"} 0.5
a_summary{quantile="1"} 2
a_summary_sum 3
a_summary_count 2
# HELP b_gauge Gauges.
# TYPE b_gauge gauge
b_gauge{a="0"} 1.8446744073709552e+19
b_gauge{a="1"} NaN
b_gauge{a="2",z="1"} +Inf
# HELP x_requests_total Requests by code.\nSecond line with a \\ backslash.
# TYPE x_requests_total counter
x_requests_total{app="api",code="200"} 1
x_requests_total{app="we\"b\\n\n",code="500"} 1
x_requests_total{app="web",code="200"} 3
# HELP x_seconds Durations.
# TYPE x_seconds histogram
x_seconds_bucket{app="web",le="0.1"} 2
x_seconds_bucket{app="web",le="1"} 2
x_seconds_bucket{app="web",le="10"} 3
x_seconds_bucket{app="web",le="+Inf"} 4
x_seconds_sum{app="web"} 55.15
x_seconds_count{app="web"} 4
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Prometheus' own parser reads it back, escapes included.
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(got))
	if err != nil {
		t.Fatalf("Prometheus cannot parse it: %v", err)
	}
	if v := fams["x_requests_total"].Metric[1].Label[0].GetValue(); v != `we"b\n`+"\n" {
		t.Errorf("label value read back as %q", v)
	}
	if h := fams["x_seconds"].Metric[0].GetHistogram(); h.GetSampleCount() != 4 || h.Bucket[0].GetCumulativeCount() != 2 {
		t.Errorf("histogram read back as %v", h)
	}
}

func TestSameFamilyFromTwoCollectorsMerges(t *testing.T) {
	r := NewRegistry()
	for _, app := range []string{"web", "api"} {
		r.Register(CollectorFunc(func(add func(Family)) {
			add(Family{Name: "p_open_fds", Help: "Fds.", Type: Gauge, Series: []Series{{Labels: []Label{{"app", app}}, Value: 1}}})
		}))
	}
	got, err := write(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# HELP p_open_fds Fds.\n# TYPE p_open_fds gauge\np_open_fds{app=\"api\"} 1\np_open_fds{app=\"web\"} 1\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A broken collector costs its own family, never the scrape.
func TestClashesAreLeftOutAndReported(t *testing.T) {
	r := NewRegistry()
	r.Register(CollectorFunc(func(add func(Family)) {
		add(Family{Name: "m", Type: Gauge, Series: []Series{{Value: 1}}})
		add(Family{Name: "m", Type: Counter, Series: []Series{{Value: 2}}})           // other type
		add(Family{Name: "d", Type: Gauge, Series: []Series{{Value: 1}, {Value: 2}}}) // same labels twice
		add(Family{Name: "9bad-name", Type: Gauge, Series: []Series{{Value: 1}}})
		add(Family{Name: "ok", Type: Gauge, Series: []Series{{Value: 7}}})
	}))
	got, err := write(t, r)
	if err == nil {
		t.Fatal("no error for a clash, a duplicate series and a bad name")
	}
	for _, want := range []string{"m collected twice", "d has two series", `"9bad-name"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if want := "# TYPE d gauge\nd 1\n# TYPE m gauge\nm 1\n# TYPE ok gauge\nok 7\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMisuseIsAWiringBug(t *testing.T) {
	for name, f := range map[string]func(){
		"negative add":    func() { NewCounterVec("c", "").With().Add(-1) },
		"label arity":     func() { NewCounterVec("c", "", "a").With("x", "y") },
		"unsorted":        func() { NewHistogramVec("h", "", []float64{2, 1}) },
		"explicit +Inf":   func() { NewHistogramVec("h", "", []float64{1, math.Inf(1)}) },
		"histogram arity": func() { NewHistogramVec("h", "", []float64{1}, "a").With() },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// Counters are added to from the supervisor's goroutines while a scrape
// reads them (go test -race).
func TestConcurrentAddsAndScrapes(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("c_total", "", "k")
	h := NewHistogramVec("h_seconds", "", []float64{1}, "k")
	r.Register(c)
	r.Register(h)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.With(string(rune('a' + i%2))).Inc()
				h.With("x").Observe(0.5)
			}
		}()
	}
	for range 20 {
		if _, err := write(t, r); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got, _ := write(t, r)
	for _, want := range []string{`c_total{k="a"} 2000`, `c_total{k="b"} 2000`, `h_seconds_count{k="x"} 4000`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestHistogramBoundsAndNaN(t *testing.T) {
	r := NewRegistry()
	h := NewHistogramVec("h", "", []float64{1, 2})
	r.Register(h)
	for _, v := range []float64{1, 1.5, 2, 3, math.NaN()} {
		h.With().Observe(v)
	}
	got, err := write(t, r)
	if err != nil {
		t.Fatal(err)
	}
	// le is inclusive; NaN counts in +Inf only.
	for _, want := range []string{`h_bucket{le="1"} 1`, `h_bucket{le="2"} 3`, `h_bucket{le="+Inf"} 5`, "h_count 5", "h_sum NaN"} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
