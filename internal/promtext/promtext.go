// Package promtext keeps the init's metrics and writes them in the
// Prometheus text exposition format (version 0.0.4), the format every
// Prometheus server and agent scrapes.
//
// Why not client_golang: the init links whatever it might serve, and every
// linked package's init runs at every start of the binary, also when the
// health listener is off and also in the exec shim of every hot swap.
// client_golang brings protobuf, procfs and their dependencies: about 3 ms
// of every start-up and 2 MiB of idle RSS on the benchmark machine
// (README, "Init footprint"). The init exports a few dozen series whose
// shape it knows in advance; this package is what that needs and no more.
//
// It owns the format (escaping, ordering, HELP and TYPE lines) and the
// in-memory values of counters and histograms. It must never read the
// system or call back into the supervisor by itself: a Collector supplies
// values at scrape time, and the package only orders and writes them.
package promtext

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is a metric family's type, as written on its TYPE line.
type Type string

// The types this package writes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
	Summary   Type = "summary"
)

// Label is one label pair of a series.
type Label struct{ Name, Value string }

// Family is one metric family as gathered at scrape time.
type Family struct {
	Name, Help string
	Type       Type
	Series     []Series
}

// Series is one series of a family: a value for counters and gauges; a
// count, a sum and buckets (histograms) or quantiles (summaries).
type Series struct {
	Labels []Label
	Value  float64
	Count  uint64
	Sum    float64
	// Buckets are cumulative counts by upper bound, in increasing order,
	// without +Inf (which is Count).
	Buckets []Bucket
	// Quantiles of a summary, in increasing order.
	Quantiles []Quantile
}

// Bucket is a histogram bucket: how many observations were <= UpperBound.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Quantile is a summary quantile.
type Quantile struct{ Quantile, Value float64 }

// Collector adds its families at each scrape.
type Collector interface {
	Collect(add func(Family))
}

// CollectorFunc is a Collector from a function.
type CollectorFunc func(add func(Family))

// Collect implements Collector.
func (f CollectorFunc) Collect(add func(Family)) { f(add) }

// Registry is the set of collectors one /metrics endpoint writes. Safe for
// concurrent use.
type Registry struct {
	mu         sync.Mutex
	collectors []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds c; its families are written from the next scrape on.
func (r *Registry) Register(c Collector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, c)
}

// Gather collects every family, merges those of the same name (the
// process metrics of several apps are one family with an app label),
// and sorts families by name and series by labels, as client_golang does,
// so that scrapes compare line by line. A family that clashes with an
// earlier one of the same name (another type or help) is left out and
// reported in the error; the rest is still returned.
func (r *Registry) Gather() ([]Family, error) {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	byName := map[string]int{}
	var out []Family
	var errs []error
	for _, c := range cs {
		c.Collect(func(f Family) {
			if err := checkName(f.Name); err != nil {
				errs = append(errs, err)
				return
			}
			i, seen := byName[f.Name]
			if !seen {
				byName[f.Name] = len(out)
				f.Series = slices.Clone(f.Series)
				out = append(out, f)
				return
			}
			if out[i].Type != f.Type || out[i].Help != f.Help {
				errs = append(errs, fmt.Errorf("metric %s collected twice with different type or help", f.Name))
				return
			}
			out[i].Series = append(out[i].Series, f.Series...)
		})
	}
	for i := range out {
		f := &out[i]
		for j := range f.Series {
			s := &f.Series[j]
			s.Labels = slices.Clone(s.Labels)
			slices.SortFunc(s.Labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		}
		slices.SortStableFunc(f.Series, func(a, b Series) int { return compareLabels(a.Labels, b.Labels) })
		for j := 1; j < len(f.Series); j++ {
			if compareLabels(f.Series[j-1].Labels, f.Series[j].Labels) == 0 {
				errs = append(errs, fmt.Errorf("metric %s has two series with labels %v", f.Name, f.Series[j].Labels))
				f.Series = slices.Delete(f.Series, j, j+1)
				j--
			}
		}
	}
	slices.SortFunc(out, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

func compareLabels(a, b []Label) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// checkName accepts the classic metric name syntax [a-zA-Z_:][a-zA-Z0-9_:]*,
// the only one a 0.0.4 scraper is sure to read.
func checkName(name string) error {
	if name == "" {
		return errors.New("metric with an empty name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("metric name %q: only letters, digits, '_' and ':' are allowed, and no leading digit", name)
		}
	}
	return nil
}

// ContentType is the media type of what Write writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Write gathers r and writes it to w. Families that could not be gathered
// are reported in the error after everything else was written, so one
// broken collector never blanks a scrape.
func (r *Registry) Write(w io.Writer) error {
	fams, gerr := r.Gather()
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		writeFamily(bw, f)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return gerr
}

func writeFamily(w *bufio.Writer, f Family) {
	if len(f.Series) == 0 {
		return
	}
	if f.Help != "" {
		fmt.Fprintf(w, "# HELP %s %s\n", f.Name, escape(f.Help, false))
	}
	fmt.Fprintf(w, "# TYPE %s %s\n", f.Name, f.Type)
	for _, s := range f.Series {
		switch f.Type {
		case Histogram:
			for _, b := range s.Buckets {
				writeSample(w, f.Name+"_bucket", s.Labels, Label{"le", formatFloat(b.UpperBound)}, float64(b.Count))
			}
			writeSample(w, f.Name+"_bucket", s.Labels, Label{"le", "+Inf"}, float64(s.Count))
			writeSample(w, f.Name+"_sum", s.Labels, Label{}, s.Sum)
			writeSample(w, f.Name+"_count", s.Labels, Label{}, float64(s.Count))
		case Summary:
			for _, q := range s.Quantiles {
				writeSample(w, f.Name, s.Labels, Label{"quantile", formatFloat(q.Quantile)}, q.Value)
			}
			writeSample(w, f.Name+"_sum", s.Labels, Label{}, s.Sum)
			writeSample(w, f.Name+"_count", s.Labels, Label{}, float64(s.Count))
		default:
			writeSample(w, f.Name, s.Labels, Label{}, s.Value)
		}
	}
}

// writeSample writes one line; extra (le, quantile) goes last, as
// client_golang writes it.
func writeSample(w *bufio.Writer, name string, labels []Label, extra Label, v float64) {
	w.WriteString(name)
	if len(labels) > 0 || extra.Name != "" {
		w.WriteByte('{')
		sep := ""
		for _, l := range append(labels, extra) {
			if l.Name == "" {
				continue
			}
			w.WriteString(sep)
			w.WriteString(l.Name)
			w.WriteString(`="`)
			w.WriteString(escape(l.Value, true))
			w.WriteByte('"')
			sep = ","
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// escape escapes a HELP text (backslash, newline) or a label value (also
// the double quote), as the format requires.
func escape(s string, quote bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// atomicFloat is a float64 that goroutines add to without a lock.
type atomicFloat struct{ bits atomic.Uint64 }

func (a *atomicFloat) add(v float64) {
	for {
		old := a.bits.Load()
		if a.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (a *atomicFloat) load() float64 { return math.Float64frombits(a.bits.Load()) }
