//go:build e2e_docker

package dockere2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loader sends GET / from the host in a few loops. Half the loops open a
// new connection per request, so a refused or reset connection during a
// swap is a failure that no client retry can hide; the other half keep
// connections alive, as browsers and proxies do, so a connection the old
// generation drops mid-request fails too.
type loader struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup

	mu     sync.Mutex
	errs   []string
	kinds  map[string]int // failure kind (refused, reset, EOF, ...) -> count
	served map[string]int // generation -> responses
	// line finds the generation in an answer: its submatch gen.
	line *regexp.Regexp
	gen  int
}

// startLoad loads the example app: half the workers on fresh connections,
// half on kept-alive ones.
func startLoad(t *testing.T, addr string, workers int) *loader {
	t.Helper()
	return startLoadWith(t, addr, workers, true, appLine, 2)
}

// startLoadWith loads any server whose answer names its generation in
// submatch gen of line; keepAlive false puts every worker on a new
// connection per request.
func startLoadWith(t *testing.T, addr string, workers int, keepAlive bool, line *regexp.Regexp, gen int) *loader {
	t.Helper()
	l := &loader{stop: make(chan struct{}), served: map[string]int{}, kinds: map[string]int{}, line: line, gen: gen}
	fresh := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	kept := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	for i := range workers {
		c := fresh
		if keepAlive && i%2 == 1 {
			c = kept
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				gen, err := l.getGeneration(c, addr)
				if err == nil {
					l.mu.Lock()
					l.served[gen]++
					l.mu.Unlock()
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.kinds[failureKind(err)]++
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *loader) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// waitServed blocks until n more requests than now have succeeded.
func (l *loader) waitServed(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	poll(t, 60*time.Second, fmt.Sprintf("%d successful requests", n), func() bool {
		return l.ok.Load() >= target || l.failed.Load() > 1000
	})
}

// check stops the load and fails the test on any failed request.
func (l *loader) check(t *testing.T) {
	t.Helper()
	l.halt()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("load: %d ok, %d failed, responses per generation %v", l.ok.Load(), l.failed.Load(), l.served)
	if f := l.failed.Load(); f > 0 {
		t.Errorf("%d requests failed during the swap (by kind %v); first errors: %q", f, l.kinds, l.errs)
	}
}

// failureKind names what went wrong with one request, the way the issue
// reports them: refused (nobody listened), reset, EOF (the connection
// closed before an answer), timeout, or other.
func failureKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "connection reset"):
		return "reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(s, "EOF"):
		return "EOF"
	case strings.Contains(s, "Timeout") || strings.Contains(s, "timeout"):
		return "timeout"
	case strings.HasPrefix(s, "status "):
		return "non-2xx"
	}
	return "other"
}

// getGeneration does one GET / and returns the generation that answered.
func (l *loader) getGeneration(c *http.Client, addr string) (string, error) {
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	m := l.line.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("status %d body %q", resp.StatusCode, body)
	}
	return string(m[l.gen]), nil
}
