//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Helper roles of the bind-takeover section.
const (
	// roleBindLoop times BENCH_N rounds of socket+bind+close: to
	// 127.0.0.1:0 (trapped under the takeover, then passed through to the
	// kernel) and, with BENCH_OWNED, to an owned address (trapped and
	// answered with the owned socket). It then binds and listens on
	// BENCH_OWNED, which is the takeover's readiness, and writes
	// "port0_ns=... owned_ns=..." to BENCH_OUT.
	roleBindLoop = "bindloop"
	// roleShutServer is an HTTP server that binds BENCH_ADDR itself and
	// ends every connection with shutdown(BENCH_HOW: rdwr, wr) before
	// close, as some servers do for a lingering close.
	roleShutServer = "shutserver"
)

// takeoverStatus is the part of `entrypoint status --json` the bench reads.
type takeoverStatus struct {
	Apps []struct {
		Ready    bool   `json:"ready"`
		Takeover string `json:"takeover"`
		Current  *struct {
			N int `json:"n"`
		} `json:"current"`
		Others []json.RawMessage `json:"others"`
	} `json:"apps"`
}

// selfBinder is a server that binds its own port, run under entrypoint
// with the bind takeover and swapped through the control socket.
type selfBinder struct {
	name    string
	addr    string
	control string
	cmd     *exec.Cmd
	logf    string
	ep      string
}

func (b *bench) startSelfBinder(name, addr string, epArgs, app []string) (*selfBinder, error) {
	dir := filepath.Join(b.t.dir, fmt.Sprintf("takeover-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &selfBinder{name: name, addr: addr, control: b.controlSocket(), logf: filepath.Join(dir, "log"), ep: b.t.entrypoint}
	logf, err := os.Create(s.logf)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	argv := append([]string{"--listen", addr, "--health-listen", "off", "--control-socket", s.control,
		"--drain-timeout", "10s", "--takeover", "on"}, epArgs...)
	argv = append(append(argv, "--"), app...)
	s.cmd = exec.Command(b.t.entrypoint, argv...)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.status()
		if err == nil && st.Apps[0].Ready {
			if st.Apps[0].Takeover != "active" {
				stopInit(s.cmd, 30*time.Second)
				return nil, fmt.Errorf("%s: takeover %q, want active", name, st.Apps[0].Takeover)
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			stopInit(s.cmd, 30*time.Second)
			return nil, fmt.Errorf("%s: not ready within 30s (%v); log: %s", name, err, tail(s.logf))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *selfBinder) cli(args ...string) ([]byte, error) {
	out, err := exec.Command(s.ep, append(args, "--control-socket", s.control, "--json")...).Output()
	if err != nil {
		return out, fmt.Errorf("entrypoint %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func (s *selfBinder) status() (takeoverStatus, error) {
	var st takeoverStatus
	out, err := s.cli("status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil || len(st.Apps) != 1 {
		return st, fmt.Errorf("parse status (%v): %s", err, out)
	}
	return st, nil
}

// reload swaps through `entrypoint reload`, which waits for the outcome,
// and then waits until the old generation is gone, so that every swap
// starts from one generation. It returns the swap's duration as the init
// reports it.
func (s *selfBinder) reload() (time.Duration, error) {
	out, err := s.cli("reload")
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, out)
	}
	var resp struct {
		OK      bool `json:"ok"`
		Results []struct {
			OK       bool          `json:"ok"`
			Reason   string        `json:"reason"`
			Duration time.Duration `json:"duration"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Results) != 1 {
		return 0, fmt.Errorf("parse reload (%v): %s", err, out)
	}
	if r := resp.Results[0]; !r.OK {
		return 0, fmt.Errorf("reload failed: %s", r.Reason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.status()
		if err == nil && len(st.Apps[0].Others) == 0 {
			return resp.Results[0].Duration, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("old generation still there 30s after the reload: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// swaps loads s and swaps it n times, with quiet gaps between the swaps.
func (b *bench) takeoverSwaps(s *selfBinder, keepAlive bool, n int) scenario {
	sc := scenario{name: s.name, keepAlive: keepAlive}
	l := startLoad(loadOpts{addr: s.addr, clients: b.clients, keepAlive: keepAlive})
	gap := 300 * time.Millisecond
	time.Sleep(2 * gap)
	var windows []window
	for i := range n {
		from := l.now()
		d, err := s.reload()
		windows = append(windows, window{from, l.now()})
		if err != nil {
			sc.err = fmt.Errorf("swap %d: %w; log: %s", i+1, err, tail(s.logf))
			break
		}
		sc.reloads++
		sc.timings = append(sc.timings, reloadTiming{total: d})
		time.Sleep(gap)
	}
	time.Sleep(gap)
	sc.stats = summarise(l.finish(), windows)
	b.log.Info("takeover scenario", "server", s.name, "keepalive", keepAlive, "swaps", sc.reloads,
		"ok", sc.stats.counts[classOK], "failed", sc.stats.failed(), "err", sc.err)
	return sc
}

// nginxConf writes a minimal nginx configuration that serves addr from
// dir: master + 2 workers, in the foreground, everything under dir.
func nginxConf(dir, addr string) (string, error) {
	conf := fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log stderr notice;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / { return 200 "nginx pid=$pid\n"; }
  }
}
`, dir, addr)
	p := filepath.Join(dir, "nginx.conf")
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

func (b *bench) takeoverSection(ctx context.Context) {
	s := b.r.section("Bind takeover: servers that bind their own port")
	if b.t.entrypoint == "" {
		s.note("skipped: entrypoint did not build: %v", b.t.entryErr)
		return
	}
	b.takeoverSwapRows(s)
	if ctx.Err() != nil {
		return
	}
	b.bindCost(s)
	if ctx.Err() != nil {
		return
	}
	b.shutdownThroughput(s)
}

func (b *bench) takeoverSwapRows(s *section) {
	reqs := s.table("Server under entrypoint --takeover on", "Keep-alive", "Swaps", "Requests ok", "Refused", "Reset", "EOF", "Timeout", "Other",
		"Swap (entrypoint reload): median / max", "Target", "Result")
	type srv struct {
		name   string
		epArgs []string
		app    func(addr string) ([]string, error)
	}
	var servers []srv
	if b.t.selfbind == "" {
		s.note("selfbind skipped: %v", b.t.selfbindErr)
	} else {
		servers = append(servers, srv{"selfbind (Go net/http, binds itself; plain Shutdown)", nil,
			func(addr string) ([]string, error) { return []string{b.t.selfbind, "-addr", addr}, nil }},
			srv{"selfbind -lame-duck 1s", nil,
				func(addr string) ([]string, error) {
					return []string{b.t.selfbind, "-addr", addr, "-lame-duck", "1s"}, nil
				}})
	}
	if b.t.nginx == "" {
		s.note("nginx skipped: %v", b.t.nginxErr)
	} else {
		servers = append(servers, srv{"nginx (master + 2 workers), --stop-signal SIGQUIT", []string{"--stop-signal", "SIGQUIT"},
			func(addr string) ([]string, error) {
				dir, err := os.MkdirTemp(b.t.dir, "nginx-")
				if err != nil {
					return nil, err
				}
				conf, err := nginxConf(dir, addr)
				return []string{b.t.nginx, "-c", conf}, err
			}})
	}
	for _, sv := range servers {
		for _, keepAlive := range []bool{true, false} {
			addr := "127.0.0.1:" + strconv.Itoa(freePort())
			app, err := sv.app(addr)
			if err != nil {
				s.note("%s: %v", sv.name, err)
				continue
			}
			p, err := b.startSelfBinder(sv.name, addr, sv.epArgs, app)
			if err != nil {
				s.note("%v", err)
				continue
			}
			sc := b.takeoverSwaps(p, keepAlive, b.swaps)
			if err := stopInit(p.cmd, 30*time.Second); err != nil {
				s.note("%s did not stop cleanly: %v", sv.name, err)
			}
			st := sc.stats
			ka := map[bool]string{true: "on", false: "off"}[keepAlive]
			var total []time.Duration
			for _, t := range sc.timings {
				total = append(total, t.total)
			}
			times := "—"
			if len(total) > 0 {
				times = dur(median(total)) + " / " + dur(percentile(total, 100))
			}
			eof := strconv.Itoa(st.counts[classEOF])
			if st.reusedRaces > 0 {
				eof += fmt.Sprintf(" (%d idle-close races)", st.reusedRaces)
			}
			// Refused is the takeover's promise; a kept-alive request that
			// meets the old generation's idle close is the server's drain.
			target := "0 failed"
			pass := st.failed() == 0
			if keepAlive {
				target = "0 refused, failures only idle-close races"
				pass = st.counts[classRefused] == 0 && st.failed() == st.reusedRaces
			}
			reqs.row(sv.name, ka, strconv.Itoa(sc.reloads), strconv.Itoa(st.counts[classOK]),
				strconv.Itoa(st.counts[classRefused]), strconv.Itoa(st.counts[classReset]), eof,
				strconv.Itoa(st.counts[classTimeout]), strconv.Itoa(st.counts[classOther]+st.counts[classNon2xx]),
				times, target, verdict(pass && sc.err == nil))
			if sc.err != nil {
				s.note("%s (keep-alive %s): %v", sv.name, ka, sc.err)
			}
		}
	}
	s.note("Each server binds 127.0.0.1:PORT itself; entrypoint owns that address (`--listen`) and hands the app the owned socket in its bind(). Readiness is the default gate: the app's listen() on the owned socket. A swap is `entrypoint reload` (the time it reports: trigger → new generation listening → old one signalled), then the bench waits until the old generation is gone before the next one.")
	s.note("selfbind (examples/selfbind) stops with http.Server.Shutdown, which closes idle kept-alive connections at once; nginx's graceful stop (SIGQUIT) does the same. A request sent on such a connection as it closes fails with EOF or reset before any byte of the answer ('idle-close races'): the server's drain, which clients such as net/http retry; the takeover's part is that no connection is refused.")
	s.note("The EOFs of plain selfbind with keep-alive off are Go's net/http, not the takeover: conn.serve drops, unanswered, a request it reads after Shutdown began, and a connection the old generation accepted a moment before SIGTERM is one. `-lame-duck 1s` (close the listener, answer what was accepted with Connection: close, then Shutdown) is the server-side fix.")
}

// bindCost times socket+bind+close in the bindloop helper: run alone (no
// filter), and under entrypoint with the takeover on, where each bind is
// trapped: to port 0 it is passed back to the kernel, to the owned address
// it is answered with the owned socket.
func (b *bench) bindCost(s *section) {
	n := 20000
	if b.quick {
		n = 5000
	}
	tb := s.table("bind() cost", "Process", "Per socket+bind+close", "Binds/s")
	run := func(name string, argv []string, owned string) (map[string]float64, error) {
		out := filepath.Join(b.t.dir, fmt.Sprintf("bind-%d", time.Now().UnixNano()))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = cleanEnv(roleEnv+"="+roleBindLoop, "BENCH_N="+strconv.Itoa(n), "BENCH_OWNED="+owned, "BENCH_OUT="+out)
		logb, err := cmd.CombinedOutput()
		data, rerr := os.ReadFile(out)
		if rerr != nil {
			return nil, fmt.Errorf("%s: no result (%v, exit %v): %s", name, rerr, err, lastLines(string(logb)))
		}
		res := map[string]float64{}
		for f := range strings.FieldsSeq(string(data)) {
			k, v, _ := strings.Cut(f, "=")
			res[k], _ = strconv.ParseFloat(v, 64)
		}
		return res, nil
	}
	row := func(what, proc string, ns float64) {
		tb.row(what, proc, dur(time.Duration(ns)), fmt.Sprintf("%.0f", 1e9/ns))
	}
	// Three rounds each, alternating, and the best of each: the machine's
	// other load only ever adds time.
	best := map[string]float64{}
	note := func(k string, v float64) {
		if v > 0 && (best[k] == 0 || v < best[k]) {
			best[k] = v
		}
	}
	for range 3 {
		plain, err := run("alone", []string{b.t.self}, "")
		if err != nil {
			s.note("bind cost: %v", err)
			return
		}
		note("alone port0", plain["port0_ns"])
		owned := "127.0.0.1:" + strconv.Itoa(freePort())
		under, err := run("under entrypoint", []string{b.t.entrypoint, "--listen", owned, "--health-listen", "off",
			"--control-socket", b.controlSocket(), "--takeover", "on", "--", b.t.self}, owned)
		if err != nil {
			s.note("bind cost: %v", err)
			return
		}
		note("takeover port0", under["port0_ns"])
		note("takeover owned", under["owned_ns"])
	}
	row("bind 127.0.0.1:0 (not trapped: no filter)", "alone", best["alone port0"])
	row("bind 127.0.0.1:0 (trapped, passed to the kernel)", "under entrypoint --takeover on", best["takeover port0"])
	row("bind of the owned address (trapped, answered with the owned socket)", "under entrypoint --takeover on", best["takeover owned"])
	s.note("bind() cost: %d rounds of socket(AF_INET, SOCK_STREAM) + bind + close in one thread, best of 3 runs; the difference between the first two rows is what a trapped bind adds (one round trip to the init through the seccomp notification fd). A server binds once per start, so this is start-up cost, not request cost.", n)
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-3):], " ⏎ ")
}

// shutdownThroughput loads the shutserver helper with one connection per
// request, alone and under the takeover. The filter traps shutdown() with
// how != SHUT_WR (the only kind that can break a shared listener), so
// SHUT_RDWR per connection is a trapped call per request and SHUT_WR is
// not trapped at all.
func (b *bench) shutdownThroughput(s *section) {
	d := 5 * time.Second
	if b.quick {
		d = 2 * time.Second
	}
	tb := s.table("Server ending each connection with", "Process", "Requests/s (median of 3)", "Failed", "p50 / p99 latency")
	type key struct{ how, proc string }
	rps := map[key][]float64{}
	failed := map[key]int{}
	lat := map[key][]time.Duration{}
	one := func(how string, takeover bool) error {
		addr := "127.0.0.1:" + strconv.Itoa(freePort())
		argv := []string{b.t.self}
		proc := "alone"
		if takeover {
			argv = []string{b.t.entrypoint, "--listen", addr, "--health-listen", "off",
				"--control-socket", b.controlSocket(), "--takeover", "on", "--", b.t.self}
			proc = "under entrypoint --takeover on"
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = cleanEnv(roleEnv+"="+roleShutServer, "BENCH_ADDR="+addr, "BENCH_HOW="+how)
		logf, err := os.CreateTemp(b.t.dir, "shutserver-")
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start shutserver: %w", err)
		}
		defer stopInit(cmd, 10*time.Second)
		if err := waitHTTP(addr, 30*time.Second); err != nil {
			return fmt.Errorf("shutserver %s: %w; log: %s", proc, err, tail(logf.Name()))
		}
		l := startLoad(loadOpts{addr: addr, clients: b.clients, keepAlive: false})
		time.Sleep(d)
		el := l.now()
		st := summarise(l.finish(), nil)
		k := key{how, proc}
		rps[k] = append(rps[k], float64(st.counts[classOK])/el.Seconds())
		failed[k] += st.failed()
		lat[k] = append(lat[k], st.out...)
		return nil
	}
	hows := []string{"rdwr", "wr"}
	for range 3 {
		for _, how := range hows {
			for _, tk := range []bool{false, true} {
				if err := one(how, tk); err != nil {
					s.note("shutdown throughput: %v", err)
					return
				}
			}
		}
	}
	names := map[string]string{"rdwr": "shutdown(SHUT_RDWR): trapped, passed to the kernel", "wr": "shutdown(SHUT_WR): not trapped"}
	for _, how := range hows {
		for _, proc := range []string{"alone", "under entrypoint --takeover on"} {
			k := key{how, proc}
			r := rps[k]
			slices.Sort(r)
			ds := lat[k]
			tb.row(names[how], proc, fmt.Sprintf("%.0f", r[len(r)/2]), strconv.Itoa(failed[k]),
				dur(percentile(ds, 50))+" / "+dur(percentile(ds, 99)))
		}
	}
	s.note("Shutdown throughput: a Go HTTP server (bench helper `shutserver`) that binds its port itself and ends every connection with shutdown(how) before close; %d clients, one connection per request, %s per run, 3 runs of each alternating, median. 'Alone' runs it without entrypoint (no filter); under entrypoint its bind is taken over and each shutdown(SHUT_RDWR) of an accepted connection goes through the init and back to the kernel.", b.clients, d)
}

// waitHTTP waits until addr answers an HTTP request.
func waitHTTP(addr string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(request("/", false))
			_, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bindLoop is the roleBindLoop helper.
func bindLoop() int {
	n, err := strconv.Atoi(os.Getenv("BENCH_N"))
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "bindloop: BENCH_N must be a positive count")
		return 2
	}
	loop := func(sa unix.Sockaddr) (float64, error) {
		t0 := time.Now()
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return 0, fmt.Errorf("socket: %w", err)
			}
			err = unix.Bind(fd, sa)
			unix.Close(fd)
			if err != nil {
				return 0, fmt.Errorf("bind %v: %w", sa, err)
			}
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(n), nil
	}
	res := []string{}
	port0, err := loop(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bindloop:", err)
		return 1
	}
	res = append(res, fmt.Sprintf("port0_ns=%.0f", port0))
	if owned := os.Getenv("BENCH_OWNED"); owned != "" {
		ap, err := net.ResolveTCPAddr("tcp4", owned)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bindloop:", err)
			return 2
		}
		sa := &unix.SockaddrInet4{Port: ap.Port}
		copy(sa.Addr[:], ap.IP.To4())
		ns, err := loop(sa)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bindloop:", err)
			return 1
		}
		res = append(res, fmt.Sprintf("owned_ns=%.0f", ns))
		// The takeover's readiness: listen on the owned socket.
		ln, err := net.Listen("tcp4", owned)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bindloop:", err)
			return 1
		}
		defer ln.Close()
	}
	if err := os.WriteFile(os.Getenv("BENCH_OUT"), []byte(strings.Join(res, " ")+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bindloop:", err)
		return 1
	}
	return 0
}

// shutServer is the roleShutServer helper.
func shutServer() int {
	how := unix.SHUT_RDWR
	if os.Getenv("BENCH_HOW") == "wr" {
		how = unix.SHUT_WR
	}
	ln, err := net.Listen("tcp", os.Getenv("BENCH_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "shutserver:", err)
		return 1
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ln.Close()
	}()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			c.Write(resp)
			if rc, err := c.(*net.TCPConn).SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { unix.Shutdown(int(fd), how) })
			}
		}()
	}
}
