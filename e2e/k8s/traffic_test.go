package k8s

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// sample is one request of the background client.
type sample struct {
	at   time.Time // when the answer (or the error) arrived
	ok   bool
	pid  string // from the example app's "pid=... generation=... config=..." line (or selfbind's "generation=... pid=...")
	gen  string
	body string
	err  string
}

// traffic sends GET requests to one URL from several goroutines, a new
// connection each time (no keep-alive): every request goes through the
// Service's load balancing and the socket's accept queue, so a refused
// connection or a dropped accept backlog shows as a failure instead of
// being hidden by a reused connection.
type traffic struct {
	url     string
	client  *http.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
}

var (
	pidRe = regexp.MustCompile(`pid=(\d+)`)
	genRe = regexp.MustCompile(`generation=(\S+)`)
)

func startTraffic(url string, workers int) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{
		url:    url,
		cancel: cancel,
		client: &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
	for range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for ctx.Err() == nil {
				s := tr.one(ctx)
				if ctx.Err() != nil && !s.ok {
					return // our own cancellation, not the server's failure
				}
				tr.mu.Lock()
				tr.samples = append(tr.samples, s)
				tr.mu.Unlock()
				if !s.ok {
					// Do not spin on a refused port.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return tr
}

func (tr *traffic) one(ctx context.Context) sample {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tr.url, nil)
	resp, err := tr.client.Do(req)
	if err != nil {
		return sample{at: time.Now(), err: err.Error()}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := sample{at: time.Now(), body: string(b)}
	switch {
	case err != nil:
		s.err = "read body: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		s.err = fmt.Sprintf("status %d: %q", resp.StatusCode, b)
	default:
		s.ok = true
		if m := pidRe.FindStringSubmatch(s.body); m != nil {
			s.pid = m[1]
		}
		if m := genRe.FindStringSubmatch(s.body); m != nil {
			s.gen = m[1]
		}
	}
	return s
}

func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// mark returns a position to take a window from.
func (tr *traffic) mark() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.samples)
}

// since returns a copy of the samples from mark on.
func (tr *traffic) since(mark int) []sample {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]sample(nil), tr.samples[mark:]...)
}

// firstOK returns the index of the first successful sample, or -1.
func (tr *traffic) firstOK() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, s := range tr.samples {
		if s.ok {
			return i
		}
	}
	return -1
}

// last returns the newest successful sample.
func (tr *traffic) last() (sample, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := len(tr.samples) - 1; i >= 0; i-- {
		if tr.samples[i].ok {
			return tr.samples[i], true
		}
	}
	return sample{}, false
}

// window summarises samples: how many were sent and failed, and the first
// few failures for the log.
type window struct {
	sent, failed int
	failures     []string
}

func summarise(ss []sample) window {
	var w window
	for _, s := range ss {
		w.sent++
		if !s.ok {
			w.failed++
			if len(w.failures) < 5 {
				w.failures = append(w.failures, s.at.Format("15:04:05.000")+" "+s.err)
			}
		}
	}
	return w
}

// waitFor polls the traffic until a sample after mark satisfies pred, and
// returns it.
func (tr *traffic) waitFor(mark int, timeout time.Duration, pred func(sample) bool) (sample, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, s := range tr.since(mark) {
			if s.ok && pred(s) {
				return s, true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return sample{}, false
}
