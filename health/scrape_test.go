package health

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status/statustest"
)

// Prometheus asks for gzip; curl does not. Both get the text format.
func TestMetricsGzipWhenAsked(t *testing.T) {
	f := statustest.New(statustest.Running("web", 3))
	reg := promtext.NewRegistry()
	NewMetrics(reg, f, nil)
	_, base, _ := start(t, Options{Controller: f, Registry: reg})

	for _, enc := range []string{"gzip", ""} {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		// A Transport that does not decompress on its own.
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != promtext.ContentType {
			t.Errorf("Accept-Encoding %q: Content-Type %q", enc, ct)
		}
		body := io.Reader(res.Body)
		if got := res.Header.Get("Content-Encoding"); got != enc {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", enc, got)
		}
		if enc == "gzip" {
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `entrypoint_generation{app="web"} 3`) {
			t.Errorf("Accept-Encoding %q: body lacks the generation:\n%s", enc, b)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true, "gzip, identity": true,
		"": false, "identity": false, "gzip;q=0": false, "x-gzip": false, "deflate, gzip; q=0": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
