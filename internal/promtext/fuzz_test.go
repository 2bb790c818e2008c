package promtext

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Whatever a label value or help text holds (UTF-8, as the format
// requires), Prometheus' own parser reads back exactly what was written:
// escaping can neither break a scrape nor change a value.
func FuzzWriteReadsBack(f *testing.F) {
	f.Add("web", "Help.", 1.5)
	f.Add(`a"b\c`+"\nd", "two\nlines \\ here", math.Inf(-1))
	f.Add("", "", math.NaN())
	f.Add("\\n", "\\", 1e300)
	f.Fuzz(func(t *testing.T, label, help string, v float64) {
		if !utf8.ValidString(label) || !utf8.ValidString(help) {
			t.Skip("the text format is UTF-8")
		}
		r := NewRegistry()
		r.Register(CollectorFunc(func(add func(Family)) {
			add(Family{Name: "f", Help: help, Type: Gauge, Series: []Series{{Labels: []Label{{"l", label}}, Value: v}}})
		}))
		var b bytes.Buffer
		if err := r.Write(&b); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("Prometheus cannot parse %q: %v", b.String(), err)
		}
		f := fams["f"]
		if f == nil || len(f.Metric) != 1 {
			t.Fatalf("family f not read back from %q", b.String())
		}
		// Prometheus skips the blanks before the help text.
		if got, want := f.GetHelp(), strings.TrimLeft(help, " \t"); help != "" && got != want {
			t.Errorf("help %q read back as %q", help, got)
		}
		m := f.Metric[0]
		if got := m.Label[0].GetValue(); got != label {
			t.Errorf("label %q read back as %q", label, got)
		}
		got := m.GetGauge().GetValue()
		if got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
			t.Errorf("value %v read back as %v", v, got)
		}
	})
}
