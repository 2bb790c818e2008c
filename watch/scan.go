package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxEntries bounds the files and directories one scan watches and
// hashes. entrypoint watches configuration (a ConfigMap or Secret holds at
// most 1 MiB); 20,000 files cost the init 41 MB in watches and hashing.
// What lies beyond is neither watched nor hashed, and the scan says so.
const maxEntries = 5000

// errTooMany is reported (once, through failed) when a scan hits maxEntries.
var errTooMany = fmt.Errorf("more than %d files and directories under the watched paths: entrypoint watches configuration, not data; the ones beyond are neither watched nor hashed, so changes to them do not swap; watch a smaller directory", maxEntries)

// maxSymlinks is the kernel's limit on symlinks followed in one lookup
// (MAXSYMLINKS, path_resolution(7)); beyond it open(2) fails with ELOOP.
const maxSymlinks = 40

// interest is what matters in one watched inode.
type interest struct {
	// all: every event counts (a watched directory or file).
	all bool
	// names: only events about these entries count (a directory on the
	// way to a watched path).
	names map[string]bool
	dir   bool
	wd    int32
	ok    bool // the watch was added
}

func (in *interest) matches(name string) bool {
	// An event without a name is about the inode itself (deleted, moved,
	// watch dropped): always structural.
	return in.all || name == "" || in.names[name]
}

// scan walks the watched paths the way the app will read them. With a
// watch function it registers interest in every inode it looks at, calling
// watch before reading a directory; with content it hashes the files.
type scan struct {
	content bool
	watch   func(path string, dir bool) (wd int32, err error)
	failed  func(path string, err error)

	interests map[string]*interest
	capped    bool // hit maxEntries
	sum       hash.Hash
	walking   []os.FileInfo // directories on the current walk, against symlink loops
}

func newScan(content bool) *scan {
	return &scan{content: content, interests: map[string]*interest{}, sum: sha256.New()}
}

// run scans paths (absolute, clean, sorted) and returns the content hash
// (empty without content).
func (s *scan) run(paths []string) string {
	for _, p := range paths {
		fmt.Fprintf(s.sum, "path %q\n", p)
		real, fi, ok := s.resolve("/", p)
		if !ok {
			continue
		}
		s.visit(real, fi, "")
	}
	if !s.content {
		return ""
	}
	return hex.EncodeToString(s.sum.Sum(nil))
}

// visit records a resolved path: a directory is walked, a regular file
// hashed; anything else (fifo, socket, device) is never opened, a read
// could block.
func (s *scan) visit(real string, fi os.FileInfo, rel string) {
	if len(s.interests) >= maxEntries {
		if !s.capped {
			s.capped = true
			fmt.Fprintf(s.sum, "capped at %d\n", maxEntries)
			if s.failed != nil {
				s.failed(real, errTooMany)
			}
		}
		return
	}
	switch {
	case fi.IsDir():
		s.walk(real, fi, rel)
	case fi.Mode().IsRegular():
		s.want(real, "", false)
		s.file(real, fi, rel)
	}
}

func (s *scan) walk(dir string, fi os.FileInfo, rel string) {
	for _, up := range s.walking {
		if os.SameFile(up, fi) {
			return
		}
	}
	s.walking = append(s.walking, fi)
	defer func() { s.walking = s.walking[:len(s.walking)-1] }()

	s.want(dir, "", true)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && s.failed != nil {
			s.failed(dir, err)
		}
		return
	}
	for _, e := range entries {
		// ..data, ..data_tmp and the timestamped dirs are the kubelet's
		// bookkeeping; the visible symlinks lead to the same files.
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		real, fi, ok := s.resolve(dir, e.Name())
		if !ok {
			continue // dangling symlink, or removed since ReadDir
		}
		s.visit(real, fi, rel+e.Name()+sepIfDir(fi))
	}
}

func sepIfDir(fi os.FileInfo) string {
	if fi.IsDir() {
		return "/"
	}
	return ""
}

func (s *scan) file(path string, fi os.FileInfo, rel string) {
	if !s.content {
		return
	}
	h := sha256.New()
	f, err := os.Open(path)
	if err == nil {
		_, err = io.Copy(h, f)
		f.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return // replaced since the lookup; its event starts another burst
	case err != nil:
		// Unreadable counts as a state of its own, so that becoming
		// readable again is a change.
		fmt.Fprintf(s.sum, "file %q %04o unreadable\n", rel, fi.Mode().Perm())
		if s.failed != nil {
			s.failed(path, err)
		}
		return
	}
	fmt.Fprintf(s.sum, "file %q %04o %x\n", rel, fi.Mode().Perm(), h.Sum(nil))
}

// resolve looks rest up from the real directory dir one component at a
// time, following symlinks as the kernel does, and registers interest in
// each name looked up in the directory that holds it. It returns the real
// path and its info, or false when some component is missing.
func (s *scan) resolve(dir, rest string) (string, os.FileInfo, bool) {
	comps := split(rest)
	links := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		if name == ".." {
			dir = filepath.Dir(dir)
			continue
		}
		s.want(dir, name, true)
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return "", nil, false
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if links++; links > maxSymlinks {
				return "", nil, false
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", nil, false
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			comps = append(split(target), comps...)
			continue
		}
		if len(comps) == 0 {
			return p, fi, true
		}
		if !fi.IsDir() {
			return "", nil, false
		}
		dir = p
	}
	fi, err := os.Stat(dir)
	return dir, fi, err == nil
}

// split cuts a path into its components, dropping empty ones and ".".
func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// want registers interest in name inside path ("" for the whole inode),
// adding the inotify watch the first time path is seen in this scan.
func (s *scan) want(path, name string, dir bool) {
	in := s.interests[path]
	if in == nil {
		in = &interest{names: map[string]bool{}, dir: dir}
		s.interests[path] = in
		if s.watch != nil {
			wd, err := s.watch(path, dir)
			in.wd, in.ok = wd, err == nil
			if err != nil && s.failed != nil {
				s.failed(path, err)
			}
		}
	}
	if name == "" {
		in.all = true
	} else {
		in.names[name] = true
	}
}
