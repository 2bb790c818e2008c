package watch

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzHash builds a directory tree from a spec and hashes it the way the
// watcher does. The hash must be stable (the same tree twice), and it must
// change when a watched file's content or mode changes. The spec is lines
// of "f NAME CONTENT", "d NAME" or "l NAME TARGET"; symlinks stay inside
// the tree, so that the scan never reads the machine's files.
func FuzzHash(f *testing.F) {
	for _, s := range []string{
		"f a.yaml x: 1\nf b.yaml y: 2",
		"d ..2026_01_01\nf ..2026_01_01/a.yaml v1\nl ..data ..2026_01_01\nl a.yaml ..data/a.yaml",
		"d sub\nf sub/a hello\nl loop .\nl up sub/..",
		"l self self\nf z z",
		"d a\nd a/b\nl a/b/c ../..\nf a/file \x00\xff",
		"f \"quoted\nname\" q\nf sp ace",
		"l dangling nowhere\nf real r",
		"l l1 l2\nl l2 l3\nl l3 f\nf f content",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		root := t.TempDir()
		first := "" // a regular file the scan reaches directly
		for line := range strings.SplitSeq(spec, "\n") {
			kind, rest, _ := strings.Cut(line, " ")
			name, arg, _ := strings.Cut(rest, " ")
			p, ok := inside(root, name)
			if !ok {
				continue
			}
			var err error
			switch kind {
			case "f":
				err = os.WriteFile(p, []byte(arg), 0o644)
				if err == nil && first == "" && filepath.Dir(p) == root && !strings.HasPrefix(name, "..") {
					first = p
				}
			case "d":
				err = os.Mkdir(p, 0o755)
			case "l":
				if _, ok := inside(filepath.Dir(p), arg); !ok || filepath.IsAbs(arg) {
					continue
				}
				err = os.Symlink(arg, p)
			}
			_ = err // a spec line that cannot be applied is skipped
		}

		hash := func() string { return newScan(true).run([]string{root}) }
		h1 := hash()
		if h2 := hash(); h1 != h2 {
			t.Fatalf("the same tree hashed twice: %s then %s", h1, h2)
		}
		if first == "" {
			return
		}
		fi, err := os.Lstat(first)
		if err != nil || !fi.Mode().IsRegular() {
			return // replaced by a later spec line
		}
		if err := os.WriteFile(first, []byte("changed\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		h3 := hash()
		if h3 == h1 {
			t.Fatalf("content change of %s left the hash at %s", first, h1)
		}
		if err := os.Chmod(first, 0o600); err != nil {
			t.Fatal(err)
		}
		if h4 := hash(); h4 == h3 {
			t.Fatalf("mode change of %s left the hash at %s", first, h3)
		}
	})
}

// inside joins name to dir and reports whether the result stays within
// dir and names something below it.
func inside(dir, name string) (string, bool) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", false
	}
	p := filepath.Join(dir, name)
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return p, true
}

// FuzzDecode feeds arbitrary bytes to the inotify event decoder: it must
// never panic or read past the buffer, and must decode exactly the
// complete records an encoder made.
func FuzzDecode(f *testing.F) {
	f.Add(encodeEvents(event{wd: 1, mask: unix.IN_MODIFY, name: "a.yaml"}, event{wd: 2, mask: unix.IN_DELETE_SELF}))
	f.Add(encodeEvents(event{wd: -1, mask: unix.IN_Q_OVERFLOW})[:10])
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, buf []byte) {
		evs := decode(buf)
		again := decode(encodeEvents(evs...))
		if len(again) != len(evs) {
			t.Fatalf("decoded %d events, re-encoded they decode to %d", len(evs), len(again))
		}
		for i := range evs {
			if evs[i] != again[i] {
				t.Fatalf("event %d: %+v re-encoded decodes to %+v", i, evs[i], again[i])
			}
		}
	})
}

// encodeEvents writes struct inotify_event records as the kernel does,
// the name NUL-padded to a multiple of 16 bytes.
func encodeEvents(evs ...event) []byte {
	var out []byte
	for _, e := range evs {
		n := 0
		if e.name != "" {
			n = (len(e.name) + 16) / 16 * 16
		}
		rec := make([]byte, unix.SizeofInotifyEvent+n)
		binary.NativeEndian.PutUint32(rec[0:4], uint32(e.wd))
		binary.NativeEndian.PutUint32(rec[4:8], e.mask)
		binary.NativeEndian.PutUint32(rec[12:16], uint32(n))
		copy(rec[unix.SizeofInotifyEvent:], e.name)
		out = append(out, rec...)
	}
	return out
}
