package supervisor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/entrypoint/entrypoint/config"
)

// exitCode: the app whose end ended the container decides; after a
// shutdown the first failure; remapped codes count as 0.
func TestExitCode(t *testing.T) {
	code := func(c int) *int { return &c }
	for _, tc := range []struct {
		name    string
		apps    []*app
		success []int
		want    int
	}{
		{"single app", []*app{{exitCode: code(3), endedContainer: true}}, nil, 3},
		{"signal death", []*app{{exitCode: code(143)}}, nil, 143},
		{"remapped", []*app{{exitCode: code(143)}}, []int{143}, 0},
		{"one ended, others stopped by us", []*app{{exitCode: code(143)}, {exitCode: code(0), endedContainer: true}}, nil, 0},
		{"two ended on their own, the second failed", []*app{{exitCode: code(0), endedContainer: true}, {exitCode: code(3), endedContainer: true}}, nil, 3},
		{"shutdown, second failed", []*app{{exitCode: code(0)}, {exitCode: code(2)}}, nil, 2},
		{"one ended with 0 while another waited in backoff after failing", []*app{{exitCode: code(3), failedWhenStopped: true}, {exitCode: code(0), endedContainer: true}}, nil, 3},
		{"backoff failure remapped", []*app{{exitCode: code(3), failedWhenStopped: true}, {exitCode: code(0), endedContainer: true}}, []int{3}, 0},
		{"shutdown, all fine", []*app{{exitCode: code(0)}, {exitCode: code(0)}}, nil, 0},
	} {
		s := &Supervisor{cfg: &config.Config{SuccessExitCodes: tc.success}, apps: tc.apps}
		if got := s.exitCode(); got != tc.want {
			t.Errorf("%s: exit code %d, want %d", tc.name, got, tc.want)
		}
	}
}

// lookPath resolves with the app's PATH and relative to the app's dir,
// and tells "not found" (127) from "not executable" (126).
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	plain := filepath.Join(dir, "data")
	os.WriteFile(plain, nil, 0o644)

	if p, err := lookPath("tool", "", []string{"PATH=/nonexistent:" + dir}); err != nil || p != exe {
		t.Errorf("lookPath via PATH = %q, %v", p, err)
	}
	if p, err := lookPath("./tool", dir, nil); err != nil || p != "./tool" {
		t.Errorf("relative to dir = %q, %v", p, err)
	}
	if _, err := lookPath("./tool", "/", nil); !errors.Is(err, fs.ErrNotExist) || spawnExitCode(err) != 127 {
		t.Errorf("missing relative command: %v", err)
	}
	if _, err := lookPath("nope-not-here", "", []string{"PATH=" + dir}); spawnExitCode(err) != 127 {
		t.Errorf("missing command: %v", err)
	}
	if _, err := lookPath(plain, "", nil); spawnExitCode(err) != 126 {
		t.Errorf("non-executable file: %v", err)
	}
	if _, err := lookPath("data", "", []string{"PATH=" + dir}); spawnExitCode(err) != 126 {
		t.Errorf("non-executable in PATH: %v", err)
	}
}

// descends follows parent links; a cycle or a missing parent ends it.
func TestDescends(t *testing.T) {
	parents := map[int]int{10: 5, 11: 10, 12: 1, 5: 1}
	if !descends(11, 5, parents) || !descends(10, 5, parents) {
		t.Error("descendants not found")
	}
	if descends(12, 5, parents) || descends(99, 5, parents) {
		t.Error("strangers counted as descendants")
	}
	if descends(7, 5, map[int]int{7: 8, 8: 7}) {
		t.Error("a cycle counted")
	}
}
