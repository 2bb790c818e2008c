package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer accepts connections on loopback and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}

func readRequest(c net.Conn) *bufio.Reader {
	br := bufio.NewReader(c)
	http.ReadRequest(br)
	return br
}

// One request against servers that fail in each way the load generator
// tells apart.
func TestClassify(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()

	cases := []struct {
		name  string
		addr  string
		want  class
		bytes bool
	}{
		{"refused", refusedAddr, classRefused, false},
		{"reset", rawServer(t, func(c net.Conn) {
			readRequest(c)
			// SO_LINGER 0 makes close send RST.
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}), classReset, false},
		{"EOF", rawServer(t, func(c net.Conn) {
			readRequest(c)
			c.Close()
		}), classEOF, false},
		{"timeout", rawServer(t, func(c net.Conn) {
			readRequest(c)
			time.Sleep(2 * time.Second)
			c.Close()
		}), classTimeout, false},
		{"non-2xx", rawServer(t, func(c net.Conn) {
			readRequest(c)
			fmt.Fprint(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
			c.Close()
		}), classNon2xx, true},
		{"cut body", rawServer(t, func(c net.Conn) {
			readRequest(c)
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			c.Close()
		}), classEOF, true},
		{"ok", rawServer(t, func(c net.Conn) {
			readRequest(c)
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			c.Close()
		}), classOK, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &load{o: loadOpts{addr: tc.addr, timeout: 300 * time.Millisecond}}
			var conn net.Conn
			var br *bufio.Reader
			d := net.Dialer{Timeout: time.Second}
			got, gotBytes, err := l.do(&d, &conn, &br, request("/", true))
			if conn != nil {
				conn.Close()
			}
			if got != tc.want || gotBytes != tc.bytes {
				t.Errorf("class %s, response bytes %v (err %v); want %s, %v", got, gotBytes, err, tc.want, tc.bytes)
			}
		})
	}
}

// With keep-alive each client keeps one connection for all its requests,
// and every request is recorded as ok.
func TestLoadKeepAlive(t *testing.T) {
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			var conns, reqs atomic.Int64
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					reqs.Add(1)
					fmt.Fprintln(w, "ok")
				}),
				ConnState: func(_ net.Conn, st http.ConnState) {
					if st == http.StateNew {
						conns.Add(1)
					}
				},
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			const clients = 4
			l := startLoad(loadOpts{addr: ln.Addr().String(), clients: clients, keepAlive: keepAlive})
			deadline := time.Now().Add(10 * time.Second)
			for reqs.Load() < 200 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			samples := l.finish()
			st := summarise(samples, nil)
			if st.failed() != 0 || st.counts[classOK] < 200 {
				t.Fatalf("counts %v, want ≥ 200 ok and no failure", st.counts)
			}
			if st.counts[classOK] != len(st.out) {
				t.Errorf("%d ok samples but %d latencies outside windows", st.counts[classOK], len(st.out))
			}
			n := conns.Load()
			if keepAlive && n != clients {
				t.Errorf("keep-alive: %d connections for %d clients", n, clients)
			}
			if !keepAlive && n < int64(st.counts[classOK]) {
				t.Errorf("keep-alive off: %d connections for %d requests", n, st.counts[classOK])
			}
		})
	}
}

func TestSummariseWindows(t *testing.T) {
	ms := time.Millisecond
	windows := []window{{10 * ms, 20 * ms}, {50 * ms, 60 * ms}}
	samples := []sample{
		{start: 0, dur: 5 * ms},                      // before
		{start: 5 * ms, dur: 6 * ms},                 // ends inside the first
		{start: 15 * ms, dur: ms},                    // inside
		{start: 19 * ms, dur: 10 * ms},               // starts inside
		{start: 30 * ms, dur: 5 * ms},                // between
		{start: 40 * ms, dur: 30 * ms},               // spans the second
		{start: 70 * ms, dur: ms},                    // after
		{start: 16 * ms, dur: ms, class: classReset}, // failed: not a latency
		{start: 17 * ms, dur: ms, class: classEOF, reused: true},
	}
	st := summarise(samples, windows)
	if len(st.in) != 4 || len(st.out) != 3 {
		t.Errorf("in %d, out %d; want 4 and 3", len(st.in), len(st.out))
	}
	if st.failed() != 2 || st.reusedRaces != 1 || st.counts[classReset] != 1 {
		t.Errorf("failed %d, races %d, counts %v", st.failed(), st.reusedRaces, st.counts)
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if got := median(ds); got != 3 {
		t.Errorf("median = %d, want 3", got)
	}
	if got := percentile(ds, 100); got != 5 {
		t.Errorf("p100 = %d, want 5", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty = %d", got)
	}
}
