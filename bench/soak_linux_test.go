//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 19
go_memstats_sys_bytes 1.2845072e+07
entrypoint_app_ready{app="app"} 1
go_gc_duration_seconds{quantile="0.5"} 0.0001
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 19 || m["go_memstats_sys_bytes"] != 12845072 {
		t.Errorf("parsed %v", m)
	}
	if len(m) != 2 {
		t.Errorf("labelled series must be left out: %v", m)
	}
}
