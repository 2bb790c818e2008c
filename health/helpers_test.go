package health

import (
	"context"
	"errors"
	"github.com/entrypoint/entrypoint/internal/syncbuf"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// syncBuffer is a log sink goroutines write to while the test reads it.
type syncBuffer = syncbuf.Buffer

// start runs a Server on 127.0.0.1:0 until the test ends and returns it
// with its base URL once it is bound.
func start(t *testing.T, opts Options) (*Server, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	select {
	case <-s.bound:
	case err := <-done:
		cancel()
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after its context ended", err)
		}
	})
	scheme := "http"
	if opts.TLSCert != "" {
		scheme = "https"
	}
	return s, scheme + "://" + s.Addr(), logs
}

type reply struct {
	code   int
	body   string
	header http.Header
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", url, err)
	}
	return reply{code: res.StatusCode, body: string(b), header: res.Header}
}
