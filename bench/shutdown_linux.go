//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// roleShutServer is an HTTP server that binds BENCH_ADDR itself and ends
// every connection with shutdown(BENCH_HOW: rdwr, wr) before close, as
// some servers do for a lingering close.
const roleShutServer = "shutserver"

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
