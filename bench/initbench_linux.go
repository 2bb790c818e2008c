//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// An init under test: how to run a command under it.
type initCmd struct {
	name string
	// argv returns the init's argv before "--".
	argv func(quiet bool) []string
}

// inits returns the inits available for the comparisons.
func (b *bench) inits() []initCmd {
	var out []initCmd
	if b.t.entrypoint != "" {
		out = append(out, initCmd{name: "entrypoint", argv: func(quiet bool) []string {
			if quiet {
				return []string{b.t.entrypoint, "--health-listen", "off", "--control-socket", "off"}
			}
			// As a user runs it: health listener and control socket on.
			return []string{b.t.entrypoint, "--health-listen", "127.0.0.1:" + strconv.Itoa(freePort()),
				"--control-socket", b.controlSocket()}
		}})
	}
	if b.t.tini != "" {
		out = append(out, initCmd{name: "tini", argv: func(bool) []string { return []string{b.t.tini, "-s"} }})
	}
	return out
}

func (b *bench) controlSocket() string {
	b.seq++
	return fmt.Sprintf("@entrypoint-bench-%d-%d", os.Getpid(), b.seq)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func command(argv []string, cmd ...string) *exec.Cmd {
	full := append(append(append([]string{}, argv...), "--"), cmd...)
	return exec.Command(full[0], full[1:]...)
}

// stopInit sends SIGTERM and waits, SIGKILLing after a bound. The bench is
// the init's parent and nothing else waits here, so cmd.Wait is the one
// waiter.
func stopInit(cmd *exec.Cmd, bound time.Duration) error {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("did not exit within %s of SIGTERM", bound)
	}
}

func (b *bench) initSection(ctx context.Context) {
	s := b.r.section("Init: memory, start-up, reaping, signals, idle CPU")
	ins := b.inits()
	if b.t.entrypoint == "" {
		s.note("entrypoint skipped: %v", b.t.entryErr)
	}
	if b.t.tini == "" {
		s.note("tini comparison skipped: %v", b.t.tiniErr)
	}
	if len(ins) == 0 {
		return
	}
	tb := s.table("Measurement", "Init", "Value", "Target", "Result")
	b.idle(ctx, s, tb, ins)
	b.probedRSS(s, tb)
	b.startup(ctx, s, tb, ins)
	b.orphans(ctx, s, tb, ins)
	b.signals(ctx, s, tb, ins)
}

// idle runs `INIT -- sleep 1000` for every init at once and reads VmRSS
// after 1 s, then utime+stime over the next 10 s.
func (b *bench) idle(ctx context.Context, s *section, tb *table, ins []initCmd) {
	type result struct {
		rss   rss
		ticks int64
		err   error
	}
	window := 10 * time.Second
	if b.quick {
		window = 3 * time.Second
	}
	b.log.Info("idle RSS and CPU", "window", window)
	res := make([]result, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			r := &res[i]
			cmd := command(in.argv(false), "sleep", "1000")
			if r.err = cmd.Start(); r.err != nil {
				return
			}
			defer stopInit(cmd, 15*time.Second)
			time.Sleep(time.Second)
			var c0, c1 int64
			if r.rss, r.err = rssParts(cmd.Process.Pid); r.err != nil {
				return
			}
			if c0, r.err = cpuTicks(cmd.Process.Pid); r.err != nil {
				return
			}
			time.Sleep(window)
			if c1, r.err = cpuTicks(cmd.Process.Pid); r.err != nil {
				return
			}
			r.ticks = c1 - c0
		})
	}
	wg.Wait()
	for i, in := range ins {
		r := res[i]
		if r.err != nil {
			tb.row("idle RSS", in.name, "error: "+r.err.Error(), "≤ 10 MiB", "MISS")
			continue
		}
		target, pass := "", ""
		if in.name == "entrypoint" {
			target, pass = "≤ 10 MiB", verdict(r.rss.total <= 10*1024)
		}
		val := fmt.Sprintf("%s (anon %s, file %s)", mib(r.rss.total), mib(r.rss.anon), mib(r.rss.file))
		tb.row("idle RSS (VmRSS after 1 s, app: sleep; RssAnon, RssFile)", in.name, val, target, pass)
	}
	for i, in := range ins {
		r := res[i]
		if r.err != nil {
			continue
		}
		cpu := time.Duration(r.ticks) * time.Second / clockTicks
		target, pass := "", ""
		if in.name == "entrypoint" {
			// One tick is the resolution of /proc/<pid>/stat.
			target, pass = "0 (≤ 1 tick = 10 ms)", verdict(r.ticks <= 1)
		}
		tb.row(fmt.Sprintf("CPU while idle over %s (utime+stime)", window), in.name, dur(cpu), target, pass)
	}
}

// probedRSS is the init's RSS as a kubelet and a scraper leave it: 300
// GET /readyz and 30 GET /metrics, then VmRSS, with the runtime's GC
// defaults and with GOMEMLIMIT=8MiB. The idle row above measures an init
// nothing has asked anything yet; this one shows the Go heap growing to
// its first collection's goal.
func (b *bench) probedRSS(s *section, tb *table) {
	if b.t.entrypoint == "" {
		return
	}
	for _, env := range []string{"", "GOMEMLIMIT=8MiB"} {
		port := freePort()
		cmd := command([]string{b.t.entrypoint, "--health-listen", "127.0.0.1:" + strconv.Itoa(port),
			"--control-socket", b.controlSocket()}, "sleep", "1000")
		if env != "" {
			cmd.Env = append(os.Environ(), env)
		}
		name := "entrypoint"
		if env != "" {
			name += " (" + env + ")"
		}
		if err := cmd.Start(); err != nil {
			tb.row("RSS after 300 probes and 30 scrapes", name, "error: "+err.Error(), "", "")
			continue
		}
		r, err := probeAndMeasure(cmd.Process.Pid, port)
		stopInit(cmd, 15*time.Second)
		if err != nil {
			tb.row("RSS after 300 probes and 30 scrapes", name, "error: "+err.Error(), "", "")
			continue
		}
		tb.row("RSS after 300 GET /readyz and 30 GET /metrics (RssAnon, RssFile)", name,
			fmt.Sprintf("%s (anon %s, file %s)", mib(r.total), mib(r.anon), mib(r.file)), "", "")
	}
	s.note("The RSS rows after probes run one init at a time with the health listener on; the heap grows until the Go runtime's first collection (a 4 MiB goal by default), which GOMEMLIMIT brings forward.")
}

func probeAndMeasure(pid, port int) (rss, error) {
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) error {
		res, err := c.Get(base + path)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for get("/livez") != nil {
		if time.Now().After(deadline) {
			return rss{}, fmt.Errorf("health listener not up in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 300 {
		if err := get("/readyz"); err != nil {
			return rss{}, err
		}
		if i%10 == 0 {
			if err := get("/metrics"); err != nil {
				return rss{}, err
			}
		}
	}
	return rssParts(pid)
}

// startup times `INIT -- /bin/true`, alternating the inits run by run so
// that drift in the machine's load hits them alike. entrypoint runs twice
// a round: with the health listener and control socket off, and as a user
// runs it (both on); the empty Go binary runs in the same rounds, so every
// ratio compares runs under the same load.
func (b *bench) startup(ctx context.Context, s *section, tb *table, ins []initCmd) {
	runs := 200
	if b.quick {
		runs = 50
	}
	b.log.Info("start-up", "runs", runs)
	type variant struct {
		name string
		argv func() []string
	}
	var vs []variant
	for _, in := range ins {
		vs = append(vs, variant{in.name, func() []string { return append(in.argv(true), "--", "/bin/true") }})
		if in.name == "entrypoint" {
			vs = append(vs, variant{"entrypoint (health + control on)", func() []string { return append(in.argv(false), "--", "/bin/true") }})
		}
	}
	if b.t.emptyGo != "" {
		vs = append(vs, variant{nameEmptyGo, func() []string { return []string{b.t.emptyGo} }})
	} else {
		s.note("empty Go binary skipped: %v", b.t.emptyGoErr)
	}
	if b.t.goInitBare != "" {
		vs = append(vs, variant{nameGoInitBare, func() []string { return []string{b.t.goInitBare, "/bin/true"} }})
	} else {
		s.note("goinit -tags nosignals skipped: %v", b.t.goInitBErr)
	}
	if b.t.goInit != "" {
		vs = append(vs, variant{nameGoInit, func() []string { return []string{b.t.goInit, "/bin/true"} }})
	} else {
		s.note("goinit skipped: %v", b.t.goInitErr)
	}
	vs = append(vs, variant{"`/bin/true` alone", func() []string { return []string{"/bin/true"} }})
	times := make([][]time.Duration, len(vs))
	errs := make([]error, len(vs))
	for range runs {
		for i, v := range vs {
			if errs[i] != nil {
				continue
			}
			argv := v.argv()
			cmd := exec.Command(argv[0], argv[1:]...)
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				errs[i] = err
				continue
			}
			times[i] = append(times[i], time.Since(t0))
		}
	}
	med := map[string]time.Duration{}
	for i, v := range vs {
		if errs[i] != nil {
			tb.row("start-up: `INIT -- /bin/true`", v.name, "error: "+errs[i].Error(), "", "MISS")
			continue
		}
		med[v.name] = median(times[i])
		tb.row(fmt.Sprintf("start-up: median wall time, `INIT -- /bin/true` (%d runs, p25 %s)", runs, dur(percentile(times[i], 25))), v.name, dur(med[v.name]), "", "")
	}
	t, ok := med["tini"]
	if !ok || t <= 0 {
		return
	}
	for _, name := range []string{"entrypoint", "entrypoint (health + control on)", nameEmptyGo, nameGoInitBare, nameGoInit} {
		e, ok := med[name]
		if !ok {
			continue
		}
		ratio := float64(e) / float64(t)
		target, pass := "≤ 2×", verdict(ratio <= 2)
		if !strings.HasPrefix(name, "entrypoint") {
			// The floors are there to be compared with, not judged.
			target, pass = "", ""
		}
		tb.row("start-up ratio", name+" / tini", fmt.Sprintf("%.2f×", ratio), target, pass)
	}
	g, okG := med[nameGoInit]
	bare, okB := med[nameGoInitBare]
	if okG && okB {
		s.note("The floor of a Go init: `goinit` (./bench/goinit) only runs its child and exits with its status. Built with `-tags nosignals` it catches no signal: %.2f× tini. As is, it first catches every signal entrypoint catches, through the same package (earlysig) and before the child starts, as DESIGN rule 2 asks: %.2f× tini. Whatever else an init does comes on top of that.", float64(bare)/float64(t), float64(g)/float64(t))
	}
}

// The reference rows of the start-up table.
const (
	nameEmptyGo    = "empty Go binary (`func main(){}`)"
	nameGoInitBare = "goinit: a Go init that only runs the child (no signal caught)"
	nameGoInit     = "goinit + every signal caught before the child (rule 2)"
)

var orphansResult = regexp.MustCompile(`orphans-result n=(\d+) create_ns=(\d+) reap_ns=(\d+) remaining=(\d+)`)

// orphans runs the orphan maker as the app of each init, the init being
// PID 1 of a new pid namespace, and reads its timing line.
func (b *bench) orphans(ctx context.Context, s *section, tb *table, ins []initCmd) {
	n := 5000
	if b.quick {
		n = 1000
	}
	if b.t.unshare == "" {
		s.note("orphan reaping skipped: %v", b.t.unshareErr)
		return
	}
	for _, in := range ins {
		b.log.Info("reaping orphans", "init", in.name, "n", n)
		argv := append(append([]string{"--pid", "--fork", "--mount-proc"}, in.argv(true)...), "--", b.t.self)
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		cmd := exec.CommandContext(ctx, b.t.unshare, argv...)
		cmd.Env = append(os.Environ(), roleEnv+"="+roleOrphans, "BENCH_ORPHANS="+strconv.Itoa(n))
		out, err := cmd.Output()
		cancel()
		m := orphansResult.FindSubmatch(out)
		if m == nil {
			tb.row(fmt.Sprintf("reap %d orphans (as PID 1)", n), in.name, fmt.Sprintf("error: %v, no result line", err), "≤ 1 s", "MISS")
			continue
		}
		reap, _ := strconv.ParseInt(string(m[3]), 10, 64)
		remaining, _ := strconv.Atoi(string(m[4]))
		create, _ := strconv.ParseInt(string(m[2]), 10, 64)
		d := time.Duration(reap)
		val := dur(d)
		if remaining > 0 {
			val = fmt.Sprintf("%d of %d never reaped (gave up after %s)", remaining, n, dur(d))
		}
		target, pass := "", ""
		if in.name == "entrypoint" {
			target, pass = "≤ 1 s", verdict(remaining == 0 && d <= time.Second)
		}
		tb.row(fmt.Sprintf("reap %d orphans: last orphan's release to last reaped (as PID 1)", n), in.name, val, target, pass)
		b.log.Info("orphans", "init", in.name, "create", time.Duration(create), "reap", d, "remaining", remaining)
	}
	s.note("Orphans are double-forked `cat` processes blocked on one pipe; closing the pipe makes all of them exit at once, and the clock stops when kill(pid, 0) fails with ESRCH for every one (a zombie still answers kill). The time includes the orphans' own exits on %d cores.", runtime.NumCPU())
}

// signals measures kill(init) → the app's handler, 200 samples per init.
func (b *bench) signals(ctx context.Context, s *section, tb *table, ins []initCmd) {
	samples := 200
	if b.quick {
		samples = 50
	}
	const sig = syscall.SIGWINCH
	meds := map[string]time.Duration{}
	for _, in := range ins {
		b.log.Info("signal forwarding", "init", in.name, "samples", samples)
		lat, lost, err := b.signalLatency(in, sig, samples)
		if err != nil {
			tb.row("signal forward latency", in.name, "error: "+err.Error(), "≤ 200 µs", "MISS")
			continue
		}
		med := median(lat)
		meds[in.name] = med
		target, pass := "", ""
		if in.name == "entrypoint" {
			target, pass = "median ≤ 200 µs", verdict(lost == 0 && med <= 200*time.Microsecond)
		}
		val := fmt.Sprintf("median %s, p99 %s", dur(med), dur(percentile(lat, 99)))
		if lost > 0 {
			val += fmt.Sprintf(", %d of %d lost", lost, samples)
		}
		tb.row(fmt.Sprintf("signal forward: kill(init, %s) to the app's handler (%d samples)", "SIGWINCH", samples), in.name, val, target, pass)
	}
}

func (b *bench) signalLatency(in initCmd, sig syscall.Signal, samples int) ([]time.Duration, int, error) {
	sock := filepath.Join(b.t.dir, fmt.Sprintf("sig-%d.sock", time.Now().UnixNano()))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, 0, fmt.Errorf("listen %s: %w", sock, err)
	}
	defer conn.Close()
	cmd := command(in.argv(true), b.t.self)
	cmd.Env = append(os.Environ(), roleEnv+"="+roleSigRecv, "BENCH_SOCK="+sock, "BENCH_SIGNAL="+strconv.Itoa(int(sig)))
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start: %w", err)
	}
	defer stopInit(cmd, 10*time.Second)
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "ready" {
		return nil, 0, fmt.Errorf("helper app never became ready: %v", err)
	}
	var lat []time.Duration
	lost := 0
	const warmup = 10
	for i := range samples + warmup {
		t0 := monotonic()
		if err := syscall.Kill(cmd.Process.Pid, sig); err != nil {
			return nil, 0, fmt.Errorf("kill: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if i >= warmup {
					lost++
				}
				continue
			}
			return nil, 0, fmt.Errorf("read: %w", err)
		}
		t1, err := strconv.ParseInt(string(buf[:n]), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("parse %q: %w", buf[:n], err)
		}
		if i >= warmup {
			lat = append(lat, time.Duration(t1-t0))
		}
		// Let both processes go idle again, as between real signals.
		time.Sleep(2 * time.Millisecond)
	}
	if len(lat) == 0 {
		return nil, lost, fmt.Errorf("no signal arrived (%d lost)", lost)
	}
	return lat, lost, nil
}
