//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/internal/atomicwriter"
)

// configWatchSection measures the ConfigMap path: the kubelet-style
// ..data rename (internal/atomicwriter) to the new generation serving the
// new content, and the init's CPU while it watches three quiet directories.
func (b *bench) configWatchSection(ctx context.Context) {
	s := b.r.section("Config watch (ConfigMap volume)")
	if b.t.entrypoint == "" || b.t.app == "" {
		s.note("skipped: entrypoint: %v, example-app: %v", b.t.entryErr, b.t.appErr)
		return
	}
	tb := s.table("Measurement", "Value", "Target", "Result")
	b.watchLatency(s, tb)
	b.watchIdleCPU(s, tb)
}

const watchDebounce = time.Second // entrypoint's default --watch-debounce

func (b *bench) watchLatency(s *section, tb *table) {
	changes := 10
	if b.quick {
		changes = 3
	}
	vol := filepath.Join(b.t.dir, fmt.Sprintf("configmap-%d", time.Now().UnixNano()))
	var renamed time.Time
	w := &atomicwriter.Writer{Dir: vol, Renamed: func(at time.Time) { renamed = at }}
	if err := w.Write(map[string]atomicwriter.Payload{"app.conf": {Data: []byte("rev-0")}}); err != nil {
		s.note("config watch: write volume: %v", err)
		return
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	srv, err := b.startServer("entrypoint --watch", []string{b.t.entrypoint, "--listen", addr,
		"--health-listen", "off", "--control-socket", b.controlSocket(), "--watch", vol,
		"--watch-debounce", watchDebounce.String(), "--",
		b.t.app, "-config", filepath.Join(vol, "app.conf"), "-events", "EVENTS"}, nil)
	if err != nil {
		s.note("config watch: %v", err)
		return
	}
	defer stopProcess(srv)
	b.log.Info("config watch latency", "changes", changes)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var toReady, toServing []time.Duration
	for i := 1; i <= changes; i++ {
		mark := len(srv.events.seen)
		old := srv.pid
		want := fmt.Sprintf("rev-%d", i)
		if err := w.Write(map[string]atomicwriter.Payload{"app.conf": {Data: []byte(want)}}); err != nil {
			s.note("config watch: write volume: %v", err)
			return
		}
		ready, err := srv.events.wait(mark, 30*time.Second, func(e appEvent) bool { return e.Event == "ready" && e.Pid != old })
		if err != nil {
			s.note("config watch: change %d: no new generation: %v; log: %s", i, err, tail(srv.logf))
			return
		}
		// Serving the new content: the first answer that shows it.
		deadline := time.Now().Add(30 * time.Second)
		var served time.Time
		for served.IsZero() && time.Now().Before(deadline) {
			if body, err := getBody(client, "http://"+addr+"/"); err == nil && strings.Contains(body, strconv.Quote(want)) {
				served = time.Now()
			}
		}
		if served.IsZero() {
			s.note("config watch: change %d: new content never served", i)
			return
		}
		toReady = append(toReady, time.Duration(ready.T-renamed.UnixNano()))
		toServing = append(toServing, served.Sub(renamed))
		if _, err := srv.events.wait(mark, 30*time.Second, func(e appEvent) bool { return e.Event == "exit" && e.Pid == old }); err != nil {
			s.note("config watch: change %d: old generation did not exit: %v", i, err)
			return
		}
		srv.pid = ready.Pid
	}
	tb.row(fmt.Sprintf("..data rename → new generation READY (%d changes, debounce %s): median / max", changes, watchDebounce),
		dur(median(toReady))+" / "+dur(percentile(toReady, 100)), "", "")
	tb.row("..data rename → first response with the new content: median / max",
		dur(median(toServing))+" / "+dur(percentile(toServing, 100)), "", "")
	tb.row("same, minus the debounce: median",
		dur(median(toServing)-watchDebounce), "", "")
}

func getBody(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// watchIdleCPU runs two idle inits side by side for the same window, one
// watching three quiet directories and one watching nothing, so that what
// the watches cost is told apart from the init's own idle wake-ups.
func (b *bench) watchIdleCPU(s *section, tb *table) {
	window := 60 * time.Second
	if b.quick {
		window = 10 * time.Second
	}
	base := func() []string {
		return []string{b.t.entrypoint, "--health-listen", "127.0.0.1:" + strconv.Itoa(freePort()),
			"--control-socket", b.controlSocket()}
	}
	watching := base()
	for i := range 3 {
		dir := filepath.Join(b.t.dir, fmt.Sprintf("watched-%d-%d", time.Now().UnixNano(), i))
		w := &atomicwriter.Writer{Dir: dir}
		if err := w.Write(map[string]atomicwriter.Payload{"app.yaml": {Data: []byte("k: v\n")}}); err != nil {
			s.note("idle CPU with watches: %v", err)
			return
		}
		watching = append(watching, "--watch", dir)
	}
	b.log.Info("idle CPU with and without 3 watched dirs", "window", window)
	var cmds []*exec.Cmd
	for _, argv := range [][]string{watching, base()} {
		cmd := exec.Command(argv[0], append(argv[1:], "--", "sleep", "1000")...)
		cmd.Env = cleanEnv()
		if err := cmd.Start(); err != nil {
			s.note("idle CPU with watches: start: %v", err)
			return
		}
		defer stopInit(cmd, 15*time.Second)
		cmds = append(cmds, cmd)
	}
	time.Sleep(time.Second)
	var c0, c1 [2]int64
	var err error
	for i, cmd := range cmds {
		if c0[i], err = cpuTicks(cmd.Process.Pid); err != nil {
			tb.row("init CPU while idle, 3 watched dirs", "error: "+err.Error(), "0", "MISS")
			return
		}
	}
	time.Sleep(window)
	for i, cmd := range cmds {
		if c1[i], err = cpuTicks(cmd.Process.Pid); err != nil {
			tb.row("init CPU while idle, 3 watched dirs", "error: "+err.Error(), "0", "MISS")
			return
		}
	}
	watch, plain := c1[0]-c0[0], c1[1]-c0[1]
	cpu := func(ticks int64) string { return dur(time.Duration(ticks) * time.Second / clockTicks) }
	tb.row(fmt.Sprintf("init CPU over %s idle, 3 watched dirs (utime+stime)", window), cpu(watch), "0 (≤ 1 tick = 10 ms)", verdict(watch <= 1))
	tb.row(fmt.Sprintf("same init, same %s, watching nothing (baseline)", window), cpu(plain), "", "")
}
