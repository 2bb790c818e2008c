//go:build e2e_docker

package dockere2e

import (
	"fmt"
	"io"
	"net/http"
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
	served map[string]int // generation -> responses
}

func startLoad(t *testing.T, addr string, workers int) *loader {
	t.Helper()
	l := &loader{stop: make(chan struct{}), served: map[string]int{}}
	fresh := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	kept := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	for i := range workers {
		c := fresh
		if i%2 == 1 {
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
				gen, err := getGeneration(c, addr)
				if err == nil {
					l.mu.Lock()
					l.served[gen]++
					l.mu.Unlock()
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
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
		t.Errorf("%d requests failed during the swap; first errors: %q", f, l.errs)
	}
}

// getGeneration does one GET / and returns the generation that answered.
func getGeneration(c *http.Client, addr string) (string, error) {
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("read body: %w", err)
	}
	m := appLine.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("status %d body %q", resp.StatusCode, body)
	}
	return string(m[2]), nil
}
