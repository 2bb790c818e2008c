package health

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"time"

	"github.com/entrypoint/entrypoint/internal/promtext"
)

// Limits of /metrics: a scrape is local work of a few hundred
// microseconds, so more than a handful at once is a misconfigured
// scraper, and one that takes seconds is stuck reading /proc.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 10 * time.Second
)

// metrics serves the registry in the text format, gzipped when the
// scraper accepts it (Prometheus does). A collector that fails leaves its
// families out and is logged; the rest of the scrape is served, as
// client_golang's ContinueOnError did.
func (s *Server) metrics() http.Handler {
	inFlight := make(chan struct{}, maxScrapesInFlight)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
			defer func() { <-inFlight }()
		default:
			http.Error(w, "too many scrapes at once; scrape less often", http.StatusServiceUnavailable)
			return
		}
		var buf bytes.Buffer
		if err := s.opts.Registry.Write(&buf); err != nil {
			s.log.Warn("metrics incomplete", "err", err)
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		w.Header().Set("Vary", "Accept-Encoding")
		if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Write(buf.Bytes())
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		gz.Write(buf.Bytes())
		gz.Close()
	})
	return http.TimeoutHandler(h, scrapeTimeout, "scrape timed out")
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip
// (a "gzip" coding without q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
