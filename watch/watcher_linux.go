package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultDebounce is the quiet time that ends a burst of events.
const DefaultDebounce = time.Second

// ErrRunning is returned by a second call to Run.
var ErrRunning = errors.New("watch: Run called twice")

// eventMask is what every watch asks for. IN_MODIFY catches writers that
// keep the file open; IN_CLOSE_WRITE the end of a rewrite; IN_ATTRIB chmod
// and the link count of a hard-linked file; the rest are renames and
// deletions, of entries and of the watched inode itself.
const eventMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// structural events change which inodes the paths lead to: the watch set is
// rebuilt at once so events in a directory that just appeared are not lost.
const structural = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED | unix.IN_Q_OVERFLOW

// Options configures a Watcher.
type Options struct {
	// Paths are files or directories; they may not exist yet. Relative
	// paths are taken from the current directory at New.
	Paths []string
	// Debounce is the quiet time after the last event of a burst before
	// the content is compared. Zero means DefaultDebounce.
	Debounce time.Duration
	// Logger gets watch failures (a full inotify table, an unreadable
	// file). Nil discards.
	Logger *slog.Logger
}

// Change is one real content change.
type Change struct {
	// Hash is the new content hash, Previous the one of the last Change
	// received (or of the content at New).
	Hash, Previous string
	// At is when the first event of the burst was read.
	At time.Time
}

// Watcher watches a fixed set of paths. Create it with New, start it with
// Run, read Changes until it is closed.
type Watcher struct {
	paths    []string
	debounce time.Duration
	log      *slog.Logger
	changes  chan Change
	hash     atomic.Pointer[string]
	running  atomic.Bool
	started  chan struct{}

	// settled, if set (tests only), is called from Run with every hash it
	// computes: once the watches are in place, then at the end of each
	// burst.
	settled func(hash string)
}

// New hashes the current content of opts.Paths; nothing is watched until
// Run.
func New(opts Options) (*Watcher, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("watch: no paths")
	}
	if opts.Debounce < 0 {
		return nil, fmt.Errorf("watch: negative debounce %v", opts.Debounce)
	}
	var paths []string
	for _, p := range opts.Paths {
		if p == "" {
			return nil, errors.New("watch: empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		paths = append(paths, abs)
	}
	slices.Sort(paths)
	w := &Watcher{
		paths:    slices.Compact(paths),
		debounce: opts.Debounce,
		log:      opts.Logger,
		changes:  make(chan Change),
		started:  make(chan struct{}),
	}
	if w.debounce == 0 {
		w.debounce = DefaultDebounce
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	h := newScan(true).run(w.paths)
	w.hash.Store(&h)
	return w, nil
}

// Hash is the content hash last computed: at New, then after every burst.
// Safe for concurrent use.
func (w *Watcher) Hash() string { return *w.hash.Load() }

// Started is closed once Run has its inotify watches in place: from then
// on no change is missed. A Run that fails to set up inotify never closes
// it.
func (w *Watcher) Started() <-chan struct{} { return w.started }

// Changes delivers one Change per burst that ended with content different
// from the last Change delivered. A Change not yet received is updated in
// place by later ones (Previous stays what the reader last saw) and dropped
// if the content returns to that. Closed when Run returns.
func (w *Watcher) Changes() <-chan Change { return w.changes }

// Run watches until ctx is done, then closes the inotify instance and
// Changes and returns nil; it returns an error if inotify cannot be set up
// or read. Call it once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(w.changes)

	// Non-blocking, so os.NewFile hands the fd to the runtime poller: Read
	// parks the goroutine until the kernel has events (no polling loop) and
	// Close wakes it.
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.EMFILE) {
			err = fmt.Errorf("%w (limit: sysctl fs.inotify.max_user_instances)", err)
		}
		return fmt.Errorf("watch: inotify_init1: %w", err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	r := &runner{w: w, fd: fd, emitted: w.Hash(), warned: map[string]bool{}}

	batches := make(chan batch)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	go func() { readErr <- read(f, batches, stop) }()
	defer func() {
		close(stop)
		f.Close()
		<-readErr
	}()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	// Watches first, then the hash: what changed since New is either in
	// this hash or an event.
	h := r.scan(true)
	if h != r.emitted {
		r.first, r.last = time.Now(), time.Now()
		timer.Reset(w.debounce)
	}
	close(w.started)
	if w.settled != nil {
		w.settled(h)
	}

	for {
		// select evaluates every send operand, so dereference only when
		// there is something to send.
		var out chan<- Change
		var next Change
		if r.pending != nil {
			out, next = w.changes, *r.pending
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			readErr <- err // for the deferred wait
			return fmt.Errorf("watch: read inotify: %w", err)
		case b := <-batches:
			if r.handle(b) {
				timer.Reset(time.Until(settleAt(r.first, r.last, w.debounce)))
			}
		case <-timer.C:
			r.settle()
		case out <- next:
			r.pending = nil
		}
	}
}

// runner is the state of one Run, owned by its goroutine.
type runner struct {
	w        *Watcher
	fd       int
	interest map[int32]*interest
	warned   map[string]bool

	first, last time.Time // the current burst; first is zero between bursts
	emitted     string    // hash of the last Change emitted (or at New)
	pending     *Change   // emitted, not yet received
}

// handle takes one read's worth of events and reports whether a burst
// started or went on.
func (r *runner) handle(b batch) bool {
	relevant, rebuild := false, false
	for _, ev := range b.events {
		if ev.mask&unix.IN_Q_OVERFLOW != 0 {
			// Events were lost: assume the worst.
			relevant, rebuild = true, true
			continue
		}
		in := r.interest[ev.wd]
		if in == nil || !in.matches(ev.name) {
			continue
		}
		relevant = true
		if ev.mask&structural != 0 {
			rebuild = true
		}
	}
	if !relevant {
		return false
	}
	if r.first.IsZero() {
		r.first = b.at
	}
	r.last = b.at
	if rebuild {
		r.scan(false)
	}
	return true
}

// settle ends a burst: hash, and emit if the content really changed.
func (r *runner) settle() {
	at := r.first
	r.first = time.Time{}
	h := r.scan(true)
	if h != r.emitted {
		r.w.log.Debug("watched content changed", "hash", h, "previous", r.emitted)
		switch {
		case r.pending == nil:
			r.pending = &Change{Hash: h, Previous: r.emitted, At: at}
		case h == r.pending.Previous:
			r.pending = nil // back to what the reader last saw
		default:
			r.pending.Hash = h
		}
		r.emitted = h
	}
	if r.w.settled != nil {
		r.w.settled(h)
	}
}

// scan walks the paths, adding watches as it goes, then drops the watches
// nothing leads to any more. With content it also stores and returns the
// hash.
func (r *runner) scan(content bool) string {
	s := newScan(content)
	s.watch = r.addWatch
	s.failed = r.failed
	h := s.run(r.w.paths)

	// One wd per inode: two paths to the same inode share it and their
	// interests merge.
	next := map[int32]*interest{}
	for _, in := range s.interests {
		if !in.ok {
			continue
		}
		m := next[in.wd]
		if m == nil {
			m = &interest{names: map[string]bool{}, wd: in.wd, ok: true}
			next[in.wd] = m
		}
		m.all = m.all || in.all
		for n := range in.names {
			m.names[n] = true
		}
	}
	for wd := range r.interest {
		if next[wd] == nil {
			// EINVAL when the kernel already dropped it (inode deleted).
			_, _ = unix.InotifyRmWatch(r.fd, uint32(wd))
		}
	}
	r.interest = next
	if content {
		r.w.hash.Store(&h)
	}
	return h
}

func (r *runner) addWatch(path string, dir bool) (int32, error) {
	// IN_DONT_FOLLOW: the scan resolved every symlink itself; if path became
	// a symlink since, the event of that rename rebuilds the set.
	flags := uint32(eventMask | unix.IN_DONT_FOLLOW)
	if dir {
		flags |= unix.IN_ONLYDIR
	}
	wd, err := unix.InotifyAddWatch(r.fd, path, flags)
	if err != nil {
		return 0, fmt.Errorf("inotify_add_watch %s: %w", path, err)
	}
	delete(r.warned, path)
	return int32(wd), nil
}

// failed logs a path that cannot be watched or read, once until it works
// again. Paths that vanished or changed type are not failures: the event
// that did it rebuilds the watch set.
func (r *runner) failed(path string, err error) {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return
	}
	if r.warned[path] {
		return
	}
	r.warned[path] = true
	if errors.Is(err, unix.ENOSPC) {
		err = fmt.Errorf("%w (inotify watch limit: sysctl fs.inotify.max_user_watches)", err)
	}
	r.w.log.Warn("cannot watch path, changes to it may be missed", "path", path, "err", err)
}

type event struct {
	wd   int32
	mask uint32
	name string
}

// batch is the events of one read, stamped with when they were read.
type batch struct {
	at     time.Time
	events []event
}

// read decodes inotify events until f is closed or stop is closed.
func read(f *os.File, out chan<- batch, stop <-chan struct{}) error {
	// Room for hundreds of events per read; a single event is at most
	// SizeofInotifyEvent+NAME_MAX+1 bytes, which this always fits.
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return err
		}
		b := batch{at: time.Now(), events: decode(buf[:n])}
		select {
		case out <- b:
		case <-stop:
			return nil
		}
	}
}

// decode parses struct inotify_event records (inotify(7)): wd, mask,
// cookie, len, then len bytes of NUL-padded name.
func decode(buf []byte) []event {
	var evs []event
	for len(buf) >= unix.SizeofInotifyEvent {
		n := int(binary.NativeEndian.Uint32(buf[12:16]))
		if len(buf) < unix.SizeofInotifyEvent+n {
			break
		}
		name := buf[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+n]
		if i := slices.Index(name, 0); i >= 0 {
			name = name[:i]
		}
		evs = append(evs, event{
			wd:   int32(binary.NativeEndian.Uint32(buf[0:4])),
			mask: binary.NativeEndian.Uint32(buf[4:8]),
			name: string(name),
		})
		buf = buf[unix.SizeofInotifyEvent+n:]
	}
	return evs
}
