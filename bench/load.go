package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// class is the outcome of one request.
type class uint8

const (
	classOK class = iota
	classRefused
	classReset
	classEOF
	classTimeout
	classNon2xx
	classOther
	numClasses
)

var classNames = [numClasses]string{"ok", "refused", "reset", "EOF", "timeout", "non-2xx", "other"}

func (c class) String() string { return classNames[c] }

// sample is one request: when it started and how long it took, relative
// to the load's start, so it can be placed inside or outside a swap window.
type sample struct {
	start, dur time.Duration
	class      class
	// reused is true when the request went on a kept-alive connection and
	// failed before any byte of the response: the idle-close race that
	// net/http and browsers retry on their own.
	reused bool
}

// loadOpts configures a load generator.
type loadOpts struct {
	addr      string
	clients   int
	keepAlive bool
	timeout   time.Duration
	path      string
}

// load is a running load generator: N clients, each sending requests back
// to back with its own connection. It is strict on purpose: no retries, so
// every failed request is counted.
type load struct {
	o       loadOpts
	base    time.Time
	stop    atomic.Bool
	wg      sync.WaitGroup
	samples [][]sample
}

func startLoad(o loadOpts) *load {
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	if o.path == "" {
		o.path = "/"
	}
	l := &load{o: o, base: time.Now(), samples: make([][]sample, o.clients)}
	for i := range o.clients {
		l.wg.Go(func() { l.client(i) })
	}
	return l
}

// now is the time since the load started.
func (l *load) now() time.Duration { return time.Since(l.base) }

// finish stops the clients and returns every sample.
func (l *load) finish() []sample {
	l.stop.Store(true)
	l.wg.Wait()
	var all []sample
	for _, s := range l.samples {
		all = append(all, s...)
	}
	slices.SortFunc(all, func(a, b sample) int { return int(a.start - b.start) })
	return all
}

// request is the raw HTTP/1.1 request every client sends.
func request(path string, keepAlive bool) []byte {
	req := fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: entrypoint-bench\r\n", path)
	if !keepAlive {
		req = append(req, "Connection: close\r\n"...)
	}
	return append(req, "\r\n"...)
}

func (l *load) client(i int) {
	req := request(l.o.path, l.o.keepAlive)
	var conn net.Conn
	var br *bufio.Reader
	closeConn := func() {
		if conn != nil {
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	d := net.Dialer{Timeout: l.o.timeout}
	for !l.stop.Load() {
		start := l.now()
		reused := conn != nil
		c, gotBytes, err := l.do(&d, &conn, &br, req)
		s := sample{start: start, dur: l.now() - start, class: c, reused: reused && !gotBytes && c != classOK}
		l.samples[i] = append(l.samples[i], s)
		if err != nil || !l.o.keepAlive {
			closeConn()
		}
		if c != classOK {
			// A failed client does not spin: it backs off a little as a
			// real one would, so the counts stay comparable across runs.
			time.Sleep(time.Millisecond)
		}
	}
}

// do sends one request and reads the whole response.
func (l *load) do(d *net.Dialer, conn *net.Conn, br **bufio.Reader, req []byte) (class, bool, error) {
	if *conn == nil {
		c, err := d.Dial("tcp", l.o.addr)
		if err != nil {
			return classify(err), false, err
		}
		*conn = c
		*br = bufio.NewReaderSize(c, 4096)
	}
	c := *conn
	c.SetDeadline(time.Now().Add(l.o.timeout))
	if _, err := c.Write(req); err != nil {
		return classify(err), false, err
	}
	if _, err := (*br).Peek(1); err != nil {
		return classify(err), false, err
	}
	resp, err := http.ReadResponse(*br, nil)
	if err != nil {
		return classify(err), true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return classify(err), true, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return classNon2xx, true, nil
	}
	if resp.Close {
		// The server said Connection: close; the next request dials.
		return classOK, true, errServerClose
	}
	return classOK, true, nil
}

var errServerClose = errors.New("server closed the connection after the response")

func classify(err error) class {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return classRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return classReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return classEOF
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return classTimeout
	}
	return classOther
}

// window is a time span relative to the load's start.
type window struct{ from, to time.Duration }

// loadStats summarises samples, split by whether they overlap a window.
type loadStats struct {
	counts       [numClasses]int
	reusedRaces  int
	in, out      []time.Duration
	firstFailure time.Duration
}

func summarise(samples []sample, windows []window) loadStats {
	var st loadStats
	st.firstFailure = -1
	for _, s := range samples {
		st.counts[s.class]++
		if s.reused {
			st.reusedRaces++
		}
		if s.class != classOK {
			if st.firstFailure < 0 {
				st.firstFailure = s.start
			}
			continue
		}
		if overlaps(s, windows) {
			st.in = append(st.in, s.dur)
		} else {
			st.out = append(st.out, s.dur)
		}
	}
	return st
}

func overlaps(s sample, ws []window) bool {
	end := s.start + s.dur
	// ws is in time order: find the first window that ends after s starts.
	i, _ := slices.BinarySearchFunc(ws, s.start, func(w window, t time.Duration) int {
		if w.to < t {
			return -1
		}
		return 1
	})
	return i < len(ws) && ws[i].from <= end
}

func (st loadStats) failed() int {
	n := 0
	for c := classRefused; c < numClasses; c++ {
		n += st.counts[c]
	}
	return n
}
