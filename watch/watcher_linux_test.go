package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/internal/atomicwriter"
)

// wait bounds every wait for an event; it is never slept, only used as a
// deadline, so a slow machine costs time, not a false failure.
const wait = 15 * time.Second

type harness struct {
	t       *testing.T
	w       *Watcher
	paths   []string
	settled chan string
	cancel  context.CancelFunc
	done    chan error
}

// start runs a Watcher on paths and waits until its watches are in place.
func start(t *testing.T, debounce time.Duration, paths ...string) *harness {
	t.Helper()
	w, err := New(Options{Paths: paths, Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, w: w, paths: paths, settled: make(chan string, 1000), done: make(chan error, 1)}
	w.settled = func(hash string) {
		select {
		case h.settled <- hash:
		default:
			panic("settled hook: test not draining")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	h.settle() // the scan at the start of Run
	return h
}

// expected is the hash the watcher must compute for the current content.
func (h *harness) expected() string {
	h.t.Helper()
	var abs []string
	for _, p := range h.paths {
		a, err := filepath.Abs(p)
		if err != nil {
			h.t.Fatal(err)
		}
		abs = append(abs, a)
	}
	slices.Sort(abs)
	return newScan(true).run(slices.Compact(abs))
}

// settle waits for the end of the next burst and returns its hash.
func (h *harness) settle() string {
	h.t.Helper()
	select {
	case s := <-h.settled:
		return s
	case <-time.After(wait):
		h.t.Fatal("no burst settled")
		return ""
	}
}

// change waits for the next Change and checks it.
func (h *harness) change(wantHash, wantPrevious string) Change {
	h.t.Helper()
	select {
	case c, ok := <-h.w.Changes():
		if !ok {
			h.t.Fatal("Changes closed")
		}
		if c.Hash != wantHash || c.Previous != wantPrevious {
			h.t.Fatalf("Change %s <- %s, want %s <- %s", short(c.Hash), short(c.Previous), short(wantHash), short(wantPrevious))
		}
		if c.At.IsZero() {
			h.t.Error("Change.At is zero")
		}
		return c
	case <-time.After(wait):
		h.t.Fatalf("no Change to %s", short(wantHash))
		return Change{}
	}
}

// sentinel makes a real change and checks it is the next Change: whatever
// the test did before emitted nothing since the last checked Change.
func (h *harness) sentinel(previous string, write func()) string {
	h.t.Helper()
	write()
	want := h.expected()
	h.change(want, previous)
	return want
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func kube(t *testing.T, dir string) *atomicwriter.Writer {
	return &atomicwriter.Writer{Dir: dir}
}

func mustWrite(t *testing.T, aw *atomicwriter.Writer, kv ...string) {
	t.Helper()
	files := map[string]atomicwriter.Payload{}
	for i := 0; i+1 < len(kv); i += 2 {
		files[kv[i]] = atomicwriter.Payload{Data: []byte(kv[i+1])}
	}
	if err := aw.Write(files); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKubeletUpdateIsOneChange(t *testing.T) {
	for _, watchFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("file=%v", watchFile), func(t *testing.T) {
			dir := t.TempDir()
			aw := kube(t, dir)
			mustWrite(t, aw, "app.yaml", "v: 1\n", "other", "x")
			path := dir
			if watchFile {
				// The visible symlink: the kubelet never touches it, only ..data.
				path = filepath.Join(dir, "app.yaml")
			}
			h := start(t, 50*time.Millisecond, path)
			v1 := h.expected()
			if h.w.Hash() != v1 {
				t.Fatalf("Hash() = %s, want %s", short(h.w.Hash()), short(v1))
			}

			mustWrite(t, aw, "app.yaml", "v: 2\n", "other", "x")
			v2 := h.expected()
			if v2 == v1 {
				t.Fatal("content change did not change the hash")
			}
			h.change(v2, v1)
			v3 := h.sentinel(v2, func() { mustWrite(t, aw, "app.yaml", "v: 3\n") })
			if h.w.Hash() != v3 {
				t.Errorf("Hash() = %s, want %s", short(h.w.Hash()), short(v3))
			}
		})
	}
}

func TestNoChangeWithoutNewContent(t *testing.T) {
	dir := t.TempDir()
	aw := kube(t, dir)
	mustWrite(t, aw, "app.yaml", "v: 1\n")
	h := start(t, 20*time.Millisecond, dir)
	v1 := h.expected()

	// An identical rewrite renames ..data to a new directory.
	mustWrite(t, aw, "app.yaml", "v: 1\n")
	if got := h.settle(); got != v1 {
		t.Fatalf("identical rewrite hashed %s, want %s", short(got), short(v1))
	}
	// Touching and re-chowning change metadata only.
	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "app.yaml"), now, now); err != nil {
		t.Fatal(err)
	}
	if got := h.settle(); got != v1 {
		t.Fatalf("touch hashed %s, want %s", short(got), short(v1))
	}
	h.sentinel(v1, func() { mustWrite(t, aw, "app.yaml", "v: 2\n") })
}

func TestBurstIsOneChange(t *testing.T) {
	dir := t.TempDir()
	aw := kube(t, dir)
	mustWrite(t, aw, "app.yaml", "v: 0\n")
	// The 20 writes take milliseconds; the debounce leaves them wide margin.
	h := start(t, 500*time.Millisecond, dir)
	v0 := h.expected()
	for i := 1; i <= 20; i++ {
		if i%2 == 0 {
			mustWrite(t, aw, "app.yaml", fmt.Sprintf("v: %d\n", i))
		} else {
			writeFile(t, filepath.Join(dir, "extra"), fmt.Sprint(i))
		}
	}
	v20 := h.expected()
	h.change(v20, v0)
	h.sentinel(v20, func() { mustWrite(t, aw, "app.yaml", "v: last\n") })
}

func TestConstantStreamStillEmits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "0")
	h := start(t, 100*time.Millisecond, dir)
	v0 := h.expected()

	// Rewrite far more often than the debounce until a Change arrives: only
	// the cap on a burst's length lets one through.
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint(i)), 0o644)
			}
		}
	}()
	select {
	case c := <-h.w.Changes():
		if c.Previous != v0 || c.Hash == v0 {
			t.Errorf("Change %s <- %s, want something <- %s", short(c.Hash), short(c.Previous), short(v0))
		}
	case <-time.After(wait):
		t.Error("no Change during a constant stream of writes")
	}
	close(stop)
	<-stopped
}

func TestInPlaceEdit(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf.yaml")
	writeFile(t, file, "a: 1\n")
	for i, path := range []string{dir, file} {
		h := start(t, 20*time.Millisecond, path)
		before := h.expected()
		f, err := os.OpenFile(file, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Same inode, same length: only the content differs.
		if _, err := f.WriteAt([]byte(fmt.Sprint(i+2)), 3); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		h.change(h.expected(), before)
		h.cancel()
	}
}

func TestRenameReplace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf.yaml")
	writeFile(t, file, "a: 1\n")
	h := start(t, 20*time.Millisecond, file)
	v1 := h.expected()

	tmp := filepath.Join(dir, ".conf.yaml.swp")
	writeFile(t, tmp, "a: 2\n")
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	v2 := h.expected()
	h.change(v2, v1)
	// The watch followed the new inode: edit it in place.
	h.sentinel(v2, func() {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("b: 3\n")
		f.Close()
	})
}

func TestDirCreatedAfterStart(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "config")
	h := start(t, 50*time.Millisecond, dir)
	absent := h.expected()

	mustWrite(t, kube(t, dir), "app.yaml", "v: 1\n") // creates a/b/config
	v1 := h.expected()
	h.change(v1, absent)
	h.sentinel(v1, func() { mustWrite(t, kube(t, dir), "app.yaml", "v: 2\n") })
}

func TestDirDeletedAndRecreated(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "config")
	aw := kube(t, dir)
	mustWrite(t, aw, "app.yaml", "v: 1\n")
	h := start(t, 20*time.Millisecond, dir)
	v1 := h.expected()

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	gone := h.expected()
	h.change(gone, v1)

	mustWrite(t, aw, "app.yaml", "v: 2\n")
	v2 := h.expected()
	h.change(v2, gone)
	h.sentinel(v2, func() { mustWrite(t, aw, "app.yaml", "v: 3\n") })
}

func TestSecretModes(t *testing.T) {
	dir := t.TempDir()
	aw := kube(t, dir)
	write := func(mode os.FileMode) {
		t.Helper()
		if err := aw.Write(map[string]atomicwriter.Payload{
			"tls.key": {Data: []byte("secret"), Mode: mode},
			"tls.crt": {Data: []byte("cert"), Mode: 0o644},
		}); err != nil {
			t.Fatal(err)
		}
	}
	write(0o400)
	h := start(t, 20*time.Millisecond, dir)
	v1 := h.expected()

	write(0o400)
	if got := h.settle(); got != v1 {
		t.Fatalf("identical secret hashed %s, want %s", short(got), short(v1))
	}
	// Same bytes, new mode: the app can tell, so it is a change.
	write(0o440)
	v2 := h.expected()
	if v2 == v1 {
		t.Fatal("mode is not part of the hash")
	}
	h.change(v2, v1)
}

func TestUndeliveredChangeIsUpdated(t *testing.T) {
	dir := t.TempDir()
	aw := kube(t, dir)
	mustWrite(t, aw, "k", "1")
	h := start(t, 10*time.Millisecond, dir)
	v1 := h.expected()

	// Nobody reads Changes while the content goes 1 -> 2 -> 3.
	mustWrite(t, aw, "k", "2")
	h.settle()
	mustWrite(t, aw, "k", "3")
	v3 := h.settle()
	h.change(v3, v1)

	// 3 -> 4 -> 3 unread: back to what the reader saw, nothing to say.
	mustWrite(t, aw, "k", "4")
	h.settle()
	mustWrite(t, aw, "k", "3")
	h.settle()
	h.sentinel(v3, func() { mustWrite(t, aw, "k", "5") })
}

func TestChangeBetweenNewAndRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "1")
	w, err := New(Options{Paths: []string{dir}, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v1 := w.Hash()
	writeFile(t, filepath.Join(dir, "f"), "2")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case c := <-w.Changes():
		if c.Previous != v1 || c.Hash == v1 {
			t.Errorf("Change %s <- %s, want new <- %s", short(c.Hash), short(c.Previous), short(v1))
		}
	case <-time.After(wait):
		t.Fatal("change made before Run was lost")
	}
}

func inotifyFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

func TestRunStopsAndClosesInotify(t *testing.T) {
	before := inotifyFDs(t)
	w, err := New(Options{Paths: []string{t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	w.settled = func(h string) { ready <- h }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-ready
	if got := inotifyFDs(t); got != before+1 {
		t.Errorf("%d inotify fds while running, want %d", got, before+1)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return after cancel")
	}
	if _, ok := <-w.Changes(); ok {
		t.Error("Changes not closed")
	}
	if got := inotifyFDs(t); got != before {
		t.Errorf("%d inotify fds after Run, want %d", got, before)
	}
	if err := w.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{{}, {Paths: []string{""}}, {Paths: []string{"/x"}, Debounce: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestSettleAt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := time.Second
	for _, c := range []struct{ last, want time.Duration }{
		{0, d},                            // a lone event: one debounce
		{3 * d, 4 * d},                    // trailing edge
		{9500 * time.Millisecond, 10 * d}, // capped
		{30 * d, 10 * d},                  // a constant stream still ends
	} {
		if got := settleAt(t0, t0.Add(c.last), d).Sub(t0); got != c.want {
			t.Errorf("last event at +%v: settle at +%v, want +%v", c.last, got, c.want)
		}
	}
}

func TestHashIgnoresKubeletBookkeeping(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mustWrite(t, kube(t, a), "app.yaml", "same", "tls/tls.crt", "c")
	if err := os.MkdirAll(filepath.Join(b, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(b, "app.yaml"), "same")
	writeFile(t, filepath.Join(b, "tls", "tls.crt"), "c")
	// Different directories, same relative layout: compare per-path hashes
	// by scanning each as if it were the other.
	ha := strings.Replace(scanDump(a), a, "X", -1)
	hb := strings.Replace(scanDump(b), b, "X", -1)
	if ha != hb {
		t.Errorf("a ConfigMap volume and a plain directory with the same files hash differently:\n%s\n%s", ha, hb)
	}
}

// scanDump is the text the hash is computed over.
func scanDump(path string) string {
	s := newScan(true)
	var buf strings.Builder
	s.sum = &textHash{&buf}
	s.run([]string{path})
	return buf.String()
}

type textHash struct{ *strings.Builder }

func (textHash) Sum(b []byte) []byte { return b }
func (textHash) Reset()              {}
func (textHash) Size() int           { return 0 }
func (textHash) BlockSize() int      { return 1 }
