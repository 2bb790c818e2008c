//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// soakSample is the init's resources at one point of the soak.
type soakSample struct {
	swaps      int
	fds        int
	rssKiB     int64
	goroutines float64
	// metrics are the init's own /metrics (Go runtime collector).
	metrics map[string]float64
}

// soakMemory are the Go runtime's memory figures the soak reports, to tell
// a leak (heap in use growing) from the runtime keeping what it mapped.
var soakMemory = []struct{ metric, label string }{
	{"go_memstats_heap_inuse_bytes", "Go heap in use"},
	{"go_memstats_next_gc_bytes", "heap size of the next GC"},
	{"go_memstats_heap_sys_bytes", "heap mapped"},
	{"go_memstats_heap_released_bytes", "heap returned to the OS"},
	{"go_memstats_stack_sys_bytes", "goroutine stacks mapped"},
}

// soakSection hot-swaps one entrypoint b.soak times under load, with no
// pauses, and reports whether the init's fds, goroutines and memory come
// back to where they were: the leak check the swap rows are too short for.
func (b *bench) soakSection(ctx context.Context) {
	s := b.r.section(fmt.Sprintf("Soak: %d hot swaps under load", b.soak))
	if b.t.entrypoint == "" || b.t.app == "" {
		s.note("skipped: entrypoint or example-app did not build: %v %v", b.t.entryErr, b.t.appErr)
		return
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	health := "127.0.0.1:" + strconv.Itoa(freePort())
	// -lame-duck 0 and no gap between swaps: each swap then costs the
	// app's start-up and drain, not seconds of waiting.
	srv, err := b.startServer("entrypoint soak", []string{b.t.entrypoint, "--listen", addr,
		"--health-listen", health, "--control-socket", b.controlSocket(), "--drain-timeout", "10s",
		"--readiness", "notify", "--", b.t.app, "-events", "EVENTS", "-drain", "5s", "-lame-duck", "0"}, nil)
	if err != nil {
		s.note("entrypoint: %v", err)
		return
	}
	srv.addr, srv.reload, srv.stop = addr, signalReload(syscall.SIGUSR1), stopProcess
	defer func() {
		if err := srv.stop(srv); err != nil {
			s.note("entrypoint did not stop cleanly: %v; log: %s", err, tail(srv.logf))
		}
	}()
	pid := srv.cmd.Process.Pid
	sample := func(n int) (soakSample, error) {
		sm := soakSample{swaps: n}
		var err error
		if sm.fds, err = openFDs(pid); err != nil {
			return sm, err
		}
		if sm.rssKiB, err = rssKiB(pid); err != nil {
			return sm, err
		}
		m, err := scrape("http://" + health + "/metrics")
		if err != nil {
			return sm, err
		}
		sm.goroutines, sm.metrics = m["go_goroutines"], m
		return sm, nil
	}

	// idle samples the init at rest: the fewest goroutines over a couple
	// of seconds, since even an idle init runs short-lived ones (the
	// liveness checks, the metrics collectors) and go_goroutines moves by
	// a few between scrapes.
	idleSample := func(n int) (soakSample, error) {
		least, err := sample(n)
		for range 10 {
			if err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
			var sm soakSample
			if sm, err = sample(n); err == nil && sm.goroutines < least.goroutines {
				least.goroutines = sm.goroutines
			}
		}
		return least, err
	}
	// fds and goroutines are compared idle, before the load starts and
	// after it stopped: under load they count connections in flight.
	first, err := idleSample(0)
	if err != nil {
		s.note("sample before: %v", err)
		return
	}
	l := startLoad(loadOpts{addr: addr, clients: b.clients})
	curve := []soakSample{first}
	every := max(b.soak/10, 1)
	began := time.Now()
	var swapErr error
	done := 0
	for i := 1; i <= b.soak && ctx.Err() == nil; i++ {
		if _, err := srv.reloadOnce(); err != nil {
			swapErr = fmt.Errorf("swap %d: %w; log: %s", i, err, tail(srv.logf))
			break
		}
		done = i
		if i%every == 0 || i == b.soak {
			sm, err := sample(i)
			if err != nil {
				swapErr = fmt.Errorf("sample after swap %d: %w", i, err)
				break
			}
			curve = append(curve, sm)
		}
	}
	took := time.Since(began)
	st := summarise(l.finish(), nil)
	// The last old generation's exit and the load's closed connections
	// reach the init a moment after the app logged them: poll until the
	// counts are back (or 10 s, and then they are what the row shows).
	idle, err := idleSample(done)
	for deadline := time.Now().Add(10 * time.Second); err == nil && (idle.fds != first.fds || idle.goroutines != first.goroutines) && time.Now().Before(deadline); {
		idle, err = idleSample(done)
	}
	if err != nil {
		s.note("sample after: %v", err)
	}
	b.log.Info("soak", "swaps", done, "took", took, "ok", st.counts[classOK], "failed", st.failed(), "err", swapErr)
	if swapErr != nil {
		s.note("%v", swapErr)
	}
	last := curve[len(curve)-1]
	// The first half is the warm-up (README, Benchmark: the runtime maps
	// its heap up to the GC goal and then reuses it); growth in the
	// second half is what would be a leak.
	warm := curve[0]
	for _, c := range curve {
		if c.swaps <= b.soak/2 {
			warm = c
		}
	}
	t := s.table("Measurement", "Before", fmt.Sprintf("After %d swaps", warm.swaps), fmt.Sprintf("After %d swaps", last.swaps), "Target", "Result")
	t.row("open fds (idle: before the load, after it)", strconv.Itoa(first.fds), "", strconv.Itoa(idle.fds), "unchanged", verdict(first.fds == idle.fds))
	t.row("goroutines (go_goroutines, idle: the fewest over 2 s)", fmt.Sprint(first.goroutines), "", fmt.Sprint(idle.goroutines), "unchanged", verdict(first.goroutines == idle.goroutines))
	grown := last.rssKiB - warm.rssKiB
	t.row("RSS (VmRSS)", mib(first.rssKiB), mib(warm.rssKiB), mib(last.rssKiB), "flat after the warm-up (< 2 MiB more)", verdict(grown < 2048))
	const sys = "go_memstats_sys_bytes"
	sysGrown := last.metrics[sys] - warm.metrics[sys]
	t.row("memory the Go runtime mapped ("+sys+")", mibBytes(first.metrics[sys]), mibBytes(warm.metrics[sys]), mibBytes(last.metrics[sys]), "flat after the warm-up (< 1 MiB more)", verdict(sysGrown < 1<<20))
	for _, m := range soakMemory {
		t.row(fmt.Sprintf("%s (%s)", m.label, m.metric), mibBytes(first.metrics[m.metric]), mibBytes(warm.metrics[m.metric]), mibBytes(last.metrics[m.metric]), "", "")
	}
	t.row(fmt.Sprintf("requests ok / failed during the soak (%s)", took.Round(time.Second)), "", "", fmt.Sprintf("%d / %d", st.counts[classOK], st.failed()), "0 failed", verdict(st.failed() == 0 && swapErr == nil))
	var points []string
	for _, c := range curve {
		points = append(points, fmt.Sprintf("%d: %s", c.swaps, mib(c.rssKiB)))
	}
	s.note("RSS by swaps done: %s.", strings.Join(points, ", "))
	s.note("%d clients without keep-alive, SIGUSR1 back to back, each swap waiting for the new generation ready and the old one exited; app -lame-duck 0. fds from /proc, goroutines and Go memory from the init's own /metrics. Why RSS grows at first and then stays flat: README, Benchmark.", b.clients)
	b.logProblems(s, srv)
}

// scrape reads the plain Prometheus text metrics without labels from url.
func scrape(url string) (map[string]float64, error) {
	// No keep-alive: an idle scrape connection would be one more fd and
	// goroutine in the init.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

func mibBytes(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
