package promtext

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
)

// CounterVec is a counter family with variable labels. Register it on a
// Registry; With gives the counter of one label set.
type CounterVec struct {
	vec[*counterValue]
}

// NewCounterVec returns a counter family; labels may be empty for a
// single series.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{vec[*counterValue]{name: name, help: help, labels: labels, make: func() *counterValue { return &counterValue{} }}}
}

// CounterAdder is one series of a CounterVec.
type CounterAdder interface {
	Inc()
	// Add adds v; a negative v is a bug of the caller and panics, as a
	// counter that goes down reads as a restart to Prometheus.
	Add(v float64)
}

type counterValue struct{ v atomicFloat }

func (c *counterValue) Inc() { c.v.add(1) }

func (c *counterValue) Add(v float64) {
	if v < 0 {
		panic(fmt.Sprintf("promtext: counter decreased by %v", v))
	}
	c.v.add(v)
}

// With returns the series for the label values, in the order of the
// family's labels, creating it at zero. Wrong arity is a wiring bug and
// panics.
func (c *CounterVec) With(values ...string) CounterAdder { return c.with(values) }

// Collect implements Collector.
func (c *CounterVec) Collect(add func(Family)) {
	f := Family{Name: c.name, Help: c.help, Type: Counter}
	c.each(func(l []Label, v *counterValue) {
		f.Series = append(f.Series, Series{Labels: l, Value: v.v.load()})
	})
	add(f)
}

// HistogramVec is a histogram family with variable labels.
type HistogramVec struct {
	vec[*histogramValue]
}

// NewHistogramVec returns a histogram family with the given bucket upper
// bounds (increasing; +Inf is implied).
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) || slices.Contains(buckets, math.Inf(1)) {
		panic("promtext: histogram buckets must increase and leave out +Inf")
	}
	b := slices.Clone(buckets)
	return &HistogramVec{vec[*histogramValue]{name: name, help: help, labels: labels, make: func() *histogramValue {
		return &histogramValue{bounds: b, counts: make([]uint64, len(b))}
	}}}
}

// Observer is one series of a HistogramVec.
type Observer interface{ Observe(v float64) }

type histogramValue struct {
	bounds []float64
	// mu keeps count, sum and buckets of one scrape consistent with
	// each other; observations are rare (one per hot swap).
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

// Observe counts v in the first bucket whose bound is >= v (le is
// inclusive); NaN falls in no bucket but +Inf, as client_golang counts it.
func (h *histogramValue) Observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := sort.SearchFloat64s(h.bounds, v); i < len(h.bounds) {
		h.counts[i]++
	}
	h.count++
	h.sum += v
}

// With returns the series for the label values, creating it empty.
func (h *HistogramVec) With(values ...string) Observer { return h.with(values) }

// Collect implements Collector.
func (h *HistogramVec) Collect(add func(Family)) {
	f := Family{Name: h.name, Help: h.help, Type: Histogram}
	h.each(func(l []Label, v *histogramValue) {
		v.mu.Lock()
		s := Series{Labels: l, Count: v.count, Sum: v.sum}
		var cum uint64
		for i, b := range v.bounds {
			cum += v.counts[i]
			s.Buckets = append(s.Buckets, Bucket{UpperBound: b, Count: cum})
		}
		v.mu.Unlock()
		f.Series = append(f.Series, s)
	})
	add(f)
}

// vec holds the series of one family by label values.
type vec[V any] struct {
	name, help string
	labels     []string
	make       func() V

	mu     sync.Mutex
	series map[string]labeled[V]
}

type labeled[V any] struct {
	labels []Label
	v      V
}

func (v *vec[V]) with(values []string) V {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("promtext: %s has labels %v, got values %q", v.name, v.labels, values))
	}
	key := strings.Join(values, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.series[key]; ok {
		return s.v
	}
	if v.series == nil {
		v.series = map[string]labeled[V]{}
	}
	ls := make([]Label, len(values))
	for i, val := range values {
		ls[i] = Label{v.labels[i], val}
	}
	s := labeled[V]{ls, v.make()}
	v.series[key] = s
	return s.v
}

func (v *vec[V]) each(fn func([]Label, V)) {
	v.mu.Lock()
	all := make([]labeled[V], 0, len(v.series))
	for _, s := range v.series {
		all = append(all, s)
	}
	v.mu.Unlock()
	for _, s := range all {
		fn(s.labels, s.v)
	}
}
