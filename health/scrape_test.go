package health

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status/statustest"
)

// Prometheus asks for gzip and gets the text format uncompressed (the
// HTTP spec lets a server choose identity), which it parses.
func TestMetricsServedAsTextWhateverTheEncodingAsked(t *testing.T) {
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
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := res.Header.Get("Content-Type"); ct != promtext.ContentType {
			t.Errorf("Accept-Encoding %q: Content-Type %q", enc, ct)
		}
		if ce := res.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", enc, ce)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("Accept-Encoding %q: Prometheus cannot parse the scrape: %v", enc, err)
		}
		if v, ok := value(fams["entrypoint_generation"], map[string]string{"app": "web"}); !ok || v != 3 {
			t.Errorf("Accept-Encoding %q: entrypoint_generation{app=web} = %v (found %v), want 3", enc, v, ok)
		}
	}
}
