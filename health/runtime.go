package health

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/entrypoint/entrypoint/internal/promtext"
)

// goCollector exports the init's Go runtime metrics under the names
// client_golang's default Go collector uses (go_memstats_*, go_gc_*,
// go_goroutines, go_threads, go_info, go_sched_gomaxprocs_threads), so
// dashboards and alerts written for any Go exporter work unchanged.
type goCollector struct{}

func (goCollector) Collect(add func(promtext.Family)) {
	var ms runtime.MemStats
	// A short stop-the-world, once per scrape; the init's heap is small.
	runtime.ReadMemStats(&ms)
	gauge := func(name, help string, v float64) {
		add(promtext.Family{Name: name, Help: help, Type: promtext.Gauge, Series: []promtext.Series{{Value: v}}})
	}
	counter := func(name, help string, v float64) {
		add(promtext.Family{Name: name, Help: help, Type: promtext.Counter, Series: []promtext.Series{{Value: v}}})
	}
	gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	gauge("go_threads", "Number of OS threads created.", float64(threads))
	add(promtext.Family{Name: "go_info", Help: "Information about the Go environment.", Type: promtext.Gauge,
		Series: []promtext.Series{{Labels: []promtext.Label{{Name: "version", Value: runtime.Version()}}, Value: 1}}})
	gauge("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting: how many OS threads may run Go code at once.", float64(runtime.GOMAXPROCS(0)))
	gauge("go_gc_gogc_percent", "Heap size target percentage set by the GOGC environment variable; -1 when the GC is off.", gogcPercent(os.Getenv("GOGC")))
	gauge("go_gc_gomemlimit_bytes", "Go runtime memory limit set by the GOMEMLIMIT environment variable.", float64(debug.SetMemoryLimit(-1)))

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	q := []promtext.Quantile{}
	for i, p := range []float64{0, 0.25, 0.5, 0.75, 1} {
		q = append(q, promtext.Quantile{Quantile: p, Value: gc.PauseQuantiles[i].Seconds()})
	}
	add(promtext.Family{Name: "go_gc_duration_seconds", Help: "Wall-time pause (stop-the-world) durations of garbage collection cycles.", Type: promtext.Summary,
		Series: []promtext.Series{{Quantiles: q, Sum: gc.PauseTotal.Seconds(), Count: uint64(gc.NumGC)}}})

	gauge("go_memstats_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.Alloc))
	counter("go_memstats_alloc_bytes_total", "Total bytes allocated for heap objects, even if freed.", float64(ms.TotalAlloc))
	gauge("go_memstats_buck_hash_sys_bytes", "Bytes of memory in profiling bucket hash tables.", float64(ms.BuckHashSys))
	counter("go_memstats_frees_total", "Total number of heap objects freed.", float64(ms.Frees))
	gauge("go_memstats_gc_sys_bytes", "Bytes of memory in garbage collection metadata.", float64(ms.GCSys))
	gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc))
	gauge("go_memstats_heap_idle_bytes", "Bytes in idle (unused) heap spans.", float64(ms.HeapIdle))
	gauge("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", float64(ms.HeapInuse))
	gauge("go_memstats_heap_objects", "Number of allocated heap objects.", float64(ms.HeapObjects))
	gauge("go_memstats_heap_released_bytes", "Bytes of physical memory returned to the OS.", float64(ms.HeapReleased))
	gauge("go_memstats_heap_sys_bytes", "Bytes of heap memory obtained from the OS.", float64(ms.HeapSys))
	gauge("go_memstats_last_gc_time_seconds", "Time the last garbage collection finished, in seconds since 1970.", float64(ms.LastGC)/1e9)
	counter("go_memstats_mallocs_total", "Total number of heap objects allocated.", float64(ms.Mallocs))
	gauge("go_memstats_mcache_inuse_bytes", "Bytes of allocated mcache structures.", float64(ms.MCacheInuse))
	gauge("go_memstats_mcache_sys_bytes", "Bytes of memory obtained from the OS for mcache structures.", float64(ms.MCacheSys))
	gauge("go_memstats_mspan_inuse_bytes", "Bytes of allocated mspan structures.", float64(ms.MSpanInuse))
	gauge("go_memstats_mspan_sys_bytes", "Bytes of memory obtained from the OS for mspan structures.", float64(ms.MSpanSys))
	gauge("go_memstats_next_gc_bytes", "Heap size target of the next garbage collection cycle.", float64(ms.NextGC))
	gauge("go_memstats_other_sys_bytes", "Bytes of memory in miscellaneous off-heap runtime allocations.", float64(ms.OtherSys))
	gauge("go_memstats_stack_inuse_bytes", "Bytes in stack spans.", float64(ms.StackInuse))
	gauge("go_memstats_stack_sys_bytes", "Bytes of stack memory obtained from the OS.", float64(ms.StackSys))
	gauge("go_memstats_sys_bytes", "Total bytes of memory obtained from the OS.", float64(ms.Sys))
}

// gogcPercent reads GOGC as the runtime does at start (runtime.readGOGC:
// "off" or a negative number: -1; unset or not a plain decimal: 100). The
// init never calls debug.SetGCPercent, so the variable is the setting;
// reading it here spares the binary runtime/metrics, whose init costs
// every start-up half a millisecond.
func gogcPercent(v string) float64 {
	if v == "off" {
		return -1
	}
	if v == "" || v[0] == '+' {
		return 100 // the runtime's parser takes no sign but '-'
	}
	n, err := strconv.ParseInt(v, 10, 32)
	switch {
	case err != nil:
		return 100
	case n < 0:
		return -1
	}
	return float64(n)
}
