package health

import (
	"math"
	"sync/atomic"

	"github.com/entrypoint/entrypoint/internal/promtext"
)

// procSample is what the process metrics read of one process; a field whose
// source could not be read is left out (its ok flag false).
type procSample struct {
	cpuSeconds, startTime  float64
	virtual, resident      float64
	openFDs, maxFDs, maxVM float64
	fdsOK, limitsOK        bool
	netIn, netOut          float64
	netOK                  bool
}

// unlimited is how an unlimited rlimit reads, as client_golang reports it.
const unlimited = float64(math.MaxUint64)

// processCollector exports process_* (prefix "process") or
// entrypoint_app_process_* (prefix "entrypoint_app_process", label app) of
// the process pid returns, under client_golang's process collector names.
type processCollector struct {
	prefix string
	labels []promtext.Label
	// pid returns the process to read; ok false skips the scrape (the app
	// has no generation right now), which is not an error.
	pid func() (pid int, ok bool)
	// read reads one process (procReader outside tests).
	read func(pid int) (procSample, error)
	// onError hears a process that could not be read at all, the first
	// time in a row it happens (failed says whether the last scrape did).
	onError func(error)
	failed  atomic.Bool
}

func (p *processCollector) Collect(add func(promtext.Family)) {
	pid, ok := p.pid()
	if !ok {
		return
	}
	s, err := p.read(pid)
	if err != nil {
		// Once per failure, not once per scrape.
		if !p.failed.Swap(true) && p.onError != nil {
			p.onError(err)
		}
		return
	}
	p.failed.Store(false)
	one := func(suffix, help string, t promtext.Type, v float64) {
		add(promtext.Family{Name: p.prefix + "_" + suffix, Help: help, Type: t,
			Series: []promtext.Series{{Labels: p.labels, Value: v}}})
	}
	one("cpu_seconds_total", "Total user and system CPU time spent in seconds.", promtext.Counter, s.cpuSeconds)
	one("start_time_seconds", "Start time of the process since unix epoch in seconds.", promtext.Gauge, s.startTime)
	one("virtual_memory_bytes", "Virtual memory size in bytes.", promtext.Gauge, s.virtual)
	one("resident_memory_bytes", "Resident memory size in bytes.", promtext.Gauge, s.resident)
	if s.fdsOK {
		one("open_fds", "Number of open file descriptors.", promtext.Gauge, s.openFDs)
	}
	if s.limitsOK {
		one("max_fds", "Maximum number of open file descriptors (the soft limit).", promtext.Gauge, s.maxFDs)
		one("virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes (the soft limit).", promtext.Gauge, s.maxVM)
	}
	if s.netOK {
		one("network_receive_bytes_total", "Number of bytes received by the process over the network (its network namespace's IP counters).", promtext.Counter, s.netIn)
		one("network_transmit_bytes_total", "Number of bytes sent by the process over the network (its network namespace's IP counters).", promtext.Counter, s.netOut)
	}
}
