//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// roleBindLoop times BENCH_N rounds of socket+bind+close: to 127.0.0.1:0
// (trapped under the takeover, then passed through to the kernel) and,
// with BENCH_OWNED, to an owned address (trapped and answered with the
// owned socket). It then binds and listens on BENCH_OWNED, which is the
// takeover's readiness, and writes "port0_ns=... owned_ns=..." to
// BENCH_OUT.
const roleBindLoop = "bindloop"

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
