package atomicwriter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	dataDir    = "..data"
	newDataDir = "..data_tmp"
	// tsLayout names the timestamped directories the way the kubelet does;
	// os.MkdirTemp appends a random suffix for uniqueness.
	tsLayout = "..2006_01_02_15_04_05."
)

// Payload is the content and permission bits of one file in the volume.
type Payload struct {
	Data []byte
	// Mode is applied with chmod after the write, so the umask does not
	// change it (Secret volumes use 0400, 0440, 0644...). Zero means 0644,
	// the kubelet's default mode.
	Mode os.FileMode
}

// Writer projects payloads into Dir the way the kubelet does. It is not safe
// for concurrent use; the kubelet serialises writes to one volume too.
type Writer struct {
	// Dir is the volume directory; it is created if missing.
	Dir string
	// Renamed, if set, is called right after ..data was renamed: the
	// instant the new content became visible. Benchmarks measure from here.
	Renamed func(at time.Time)
}

// Write replaces the whole content of the volume with files, whose keys are
// slash-separated relative paths ("app.yaml", "tls/tls.crt").
func (w *Writer) Write(files map[string]Payload) error {
	clean, err := validate(files)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return fmt.Errorf("create volume dir: %w", err)
	}

	// The current timestamped directory, if any: its top-level names that
	// are not in the new payload lose their visible symlink after the swap.
	dataPath := filepath.Join(w.Dir, dataDir)
	oldTS, err := os.Readlink(dataPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", dataPath, err)
	}
	var stale []string
	if oldTS != "" {
		if stale, err = staleNames(filepath.Join(w.Dir, oldTS), clean); err != nil {
			return err
		}
	}

	tsPath, err := os.MkdirTemp(w.Dir, time.Now().UTC().Format(tsLayout))
	if err != nil {
		return fmt.Errorf("create timestamped dir: %w", err)
	}
	// MkdirTemp creates 0700; group and others must be able to traverse it,
	// whatever the umask.
	if err := os.Chmod(tsPath, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", tsPath, err)
	}
	if err := writeFiles(tsPath, clean); err != nil {
		os.RemoveAll(tsPath)
		return err
	}

	tmpLink := filepath.Join(w.Dir, newDataDir)
	if err := os.Symlink(filepath.Base(tsPath), tmpLink); err != nil {
		os.RemoveAll(tsPath)
		return fmt.Errorf("link %s: %w", tmpLink, err)
	}
	// The one atomic step: readers switch from the old set to the new one.
	if err := os.Rename(tmpLink, dataPath); err != nil {
		os.Remove(tmpLink)
		os.RemoveAll(tsPath)
		return fmt.Errorf("rename %s over %s: %w", tmpLink, dataPath, err)
	}
	if w.Renamed != nil {
		w.Renamed(time.Now())
	}

	for _, name := range topNames(clean) {
		link := filepath.Join(w.Dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDir, name), link); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(w.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old key %s: %w", name, err)
		}
	}
	if oldTS != "" {
		if err := os.RemoveAll(filepath.Join(w.Dir, oldTS)); err != nil {
			return fmt.Errorf("remove old data dir %s: %w", oldTS, err)
		}
	}
	return nil
}

// validate cleans the keys and rejects what the kubelet rejects: absolute
// paths, ".." elements and names starting with "..", which the writer
// reserves for itself.
func validate(files map[string]Payload) (map[string]Payload, error) {
	clean := make(map[string]Payload, len(files))
	for key, p := range files {
		if key == "" || filepath.IsAbs(key) {
			return nil, fmt.Errorf("invalid key %q: must be a non-empty relative path", key)
		}
		c := filepath.Clean(key)
		for _, elem := range strings.Split(c, "/") {
			if elem == ".." {
				return nil, fmt.Errorf("invalid key %q: must not contain '..'", key)
			}
		}
		if strings.HasPrefix(c, "..") {
			return nil, fmt.Errorf("invalid key %q: must not start with '..'", key)
		}
		clean[c] = p
	}
	return clean, nil
}

func writeFiles(dir string, files map[string]Payload) error {
	for key, p := range files {
		path := filepath.Join(dir, key)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create dir for %s: %w", key, err)
		}
		mode := p.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(path, p.Data, mode); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		if err := os.Chmod(path, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", key, err)
		}
	}
	return nil
}

// topNames lists the distinct first elements of the keys: the kubelet makes
// one visible symlink per top-level name ("tls -> ..data/tls").
func topNames(files map[string]Payload) []string {
	seen := map[string]bool{}
	var names []string
	for key := range files {
		top, _, _ := strings.Cut(key, "/")
		if !seen[top] {
			seen[top] = true
			names = append(names, top)
		}
	}
	sort.Strings(names)
	return names
}

// staleNames lists the top-level names of the old data directory that the
// new payload no longer has.
func staleNames(oldDir string, files map[string]Payload) ([]string, error) {
	entries, err := os.ReadDir(oldDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read old data dir: %w", err)
	}
	keep := map[string]bool{}
	for _, n := range topNames(files) {
		keep[n] = true
	}
	var stale []string
	for _, e := range entries {
		if !keep[e.Name()] {
			stale = append(stale, e.Name())
		}
	}
	return stale, nil
}
