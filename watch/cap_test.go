package watch

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Issue 11 item 4: a watched directory with far more files than any
// config bounds what one scan watches and hashes, and says so once.
func TestScanIsBounded(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < maxEntries+500; i++ {
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var reported []error
	s := newScan(true)
	s.failed = func(_ string, err error) { reported = append(reported, err) }
	s.run([]string{dir})
	if len(s.interests) > maxEntries {
		t.Fatalf("scan registered %d entries, more than %d", len(s.interests), maxEntries)
	}
	if !s.capped || len(reported) != 1 || !errors.Is(reported[0], errTooMany) {
		t.Fatalf("capped %v, reported %v; want one errTooMany", s.capped, reported)
	}
}
