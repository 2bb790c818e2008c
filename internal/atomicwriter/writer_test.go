package atomicwriter

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWriteLayoutAndUpdate(t *testing.T) {
	dir := t.TempDir()
	var renamed time.Time
	w := &Writer{Dir: dir, Renamed: func(at time.Time) { renamed = at }}

	if err := w.Write(map[string]Payload{
		"app.yaml":    {Data: []byte("a: 1\n")},
		"tls/tls.key": {Data: []byte("key"), Mode: 0o400},
		"old":         {Data: []byte("gone soon")},
	}); err != nil {
		t.Fatal(err)
	}
	if renamed.IsZero() {
		t.Error("Renamed was not called")
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "..20") {
		t.Errorf("..data -> %q, want a timestamped dir", first)
	}
	for name, want := range map[string]string{"app.yaml": "..data/app.yaml", "tls": "..data/tls", "old": "..data/old"} {
		got, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o400 {
		t.Errorf("tls.key mode %v, want 0400", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Join(dir, "app.yaml")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("app.yaml: %v %v, want mode 0644", fi, err)
	}

	if err := w.Write(map[string]Payload{"app.yaml": {Data: []byte("a: 2\n")}, "new": {Data: []byte("n")}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "app.yaml"))
	if err != nil || string(got) != "a: 2\n" {
		t.Errorf("app.yaml = %q, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// Old keys and the old timestamped dir are gone; nothing temporary is left.
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	want := []string{second, "..data", "app.yaml", "new"}
	if strings.Join(names, " ") != strings.Join(sortedCopy(want), " ") {
		t.Errorf("dir holds %v, want %v", names, sortedCopy(want))
	}
	if second == first {
		t.Error("second write reused the timestamped dir")
	}
}

func TestWriteRejectsReservedKeys(t *testing.T) {
	w := &Writer{Dir: t.TempDir()}
	for _, key := range []string{"", "/abs", "../up", "a/../../b", "..data", "..hidden"} {
		if err := w.Write(map[string]Payload{key: {Data: []byte("x")}}); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
