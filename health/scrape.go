package health

import (
	"bytes"
	"net/http"
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

// metrics serves the registry in the text format. A collector that fails
// leaves its families out and is logged; the rest of the scrape is served,
// as client_golang's ContinueOnError did.
//
// Uncompressed, unlike client_golang: a scrape is about 10 KB, and a gzip
// writer allocates about 800 KiB of compressor state per scrape, which an
// init that idles at under 10 MiB should not carry for that.
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
		w.Write(buf.Bytes())
	})
	return http.TimeoutHandler(h, scrapeTimeout, "scrape timed out")
}
