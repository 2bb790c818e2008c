package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// execDone finds the "app started" line of one pid in entrypoint's JSON
// log, among the app's own text lines and other JSON lines.
func TestExecDoneReadsTheInitsJSONLog(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "log")
	log := `{"time":"2026-12-06T05:05:40.354666773Z","level":"INFO","msg":"app started","app":"app","generation":1,"pid":1635,"command":["/tmp/exapp"]}
time=2026-12-06T05:05:40.4Z level=INFO msg="app started" generation=2 pid=1838
{"time":"2026-12-06T05:05:41.000000001Z","level":"INFO","msg":"app ready","app":"app","generation":2,"pid":1838}
{"time":"2026-12-06T05:05:41.726304829Z","level":"INFO","msg":"app started","app":"app","generation":2,"pid":1838,"command":["/tmp/exapp"]}
`
	if err := os.WriteFile(logf, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, ok := execDone(logf, 1838)
	want := time.Date(2026, 12, 6, 5, 5, 41, 726304829, time.UTC)
	if !ok || !got.Equal(want) {
		t.Errorf("execDone(1838) = %v, %v; want %v", got, ok, want)
	}
	if _, ok := execDone(logf, 99); ok {
		t.Error("found a pid the log does not have")
	}
	if _, ok := execDone(filepath.Join(t.TempDir(), "none"), 1835); ok {
		t.Error("found a pid in a log that does not exist")
	}
}

// Only a hot swap of entrypoint is judged against issue 13's bound, on
// the median of its trigger → execve times.
func TestInitShareJudgesHotSwapsOnly(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	for _, c := range []struct {
		name   string
		execs  []time.Duration
		result string
	}{
		{"entrypoint SIGUSR1", ms(3, 4, 40), "PASS"},
		{"entrypoint SIGUSR1", ms(9, 12, 14), "MISS"},
		{"entrypoint SIGUSR2 (full restart)", ms(3, 4, 5), "—"},
		{"start_server SIGHUP", nil, "—"},
	} {
		if _, got := initShare(c.name, c.execs); got != c.result {
			t.Errorf("initShare(%q, %v) = %q, want %q", c.name, c.execs, got, c.result)
		}
	}
}
