package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/entrypoint/entrypoint/watch"
)

// Retry of a dead config watch: inotify instances are a per-user limit
// (fs.inotify.max_user_instances) that busy nodes exhaust and that frees
// up again as other containers end.
const (
	watchRetryMin = time.Second
	watchRetryMax = time.Minute
)

// errWatchStopped is a watcher that ended without saying why.
var errWatchStopped = errors.New("watch stopped")

// watchLoop runs the app's config watch until ctx ends and returns the
// channel its changes arrive on, which stays open for good. A watch that
// dies (inotify_init1 EMFILE, a read error) is never silent: it is logged,
// counted, shown in status and in /readyz?verbose, and retried with a
// fresh watcher and a doubling delay. A change made while nothing watched
// is delivered once the new watch is in place.
func (a *app) watchLoop(ctx context.Context, w *watch.Watcher) <-chan watch.Change {
	out := make(chan watch.Change)
	go func() {
		base := w.Hash() // the content the app was last told about
		delay := watchRetryMin
		// A change made while nothing watched, found by the new
		// watcher's hash; told once that watcher runs, so that status
		// never shows a dead watch while its change swaps the app. The
		// hash is taken before Run, which rehashes and reports what
		// changed after New itself: read at Started, it could be that
		// newer hash, and the app would be told of it twice.
		var missed *watch.Change
		for {
			errc := make(chan error, 1)
			go func() { errc <- w.Run(ctx) }()
			started := w.Started()
			changes := w.Changes()
		forward:
			for {
				select {
				case <-started:
					started = nil
					if a.watchOK() {
						delay = watchRetryMin
					}
					if missed != nil {
						select {
						case out <- *missed:
							base = missed.Hash
						case <-ctx.Done():
						}
						missed = nil
					}
				case c, ok := <-changes:
					if !ok {
						break forward
					}
					select {
					case out <- c:
						base = c.Hash
					case <-ctx.Done():
					}
				}
			}
			err := <-errc
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errWatchStopped
			}
			for {
				a.watchFailed(err, delay)
				t := time.NewTimer(delay)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				delay = min(2*delay, watchRetryMax)
				if w, err = a.newWatcher(); err == nil {
					break
				}
			}
			missed = nil
			if h := w.Hash(); h != base {
				// Changed while nothing watched: the new watcher hashed
				// the content at New.
				missed = &watch.Change{Hash: h, Previous: base, At: time.Now()}
			}
		}
	}()
	return out
}

func (a *app) newWatcher() (*watch.Watcher, error) {
	return watch.New(watch.Options{Paths: a.cfg.Watch, Debounce: a.cfg.WatchDebounce.D(), Logger: a.log})
}

// watchFailed records a dead watch: log, metric, status.
func (a *app) watchFailed(err error, retry time.Duration) {
	a.s.mu.Lock()
	if a.watchErr == "" {
		a.watchSince = time.Now()
	}
	a.watchErr = err.Error()
	a.s.mu.Unlock()
	a.s.events.WatchFailed(a.cfg.Name)
	a.log.Error("config watch is not running: changes of the watched files are not applied", "paths", a.cfg.Watch, "err", err, "retry_in", retry)
}

// watchOK records that the watch runs (again) and says whether it was
// down before.
func (a *app) watchOK() bool {
	a.s.mu.Lock()
	was := a.watchErr
	a.watchErr, a.watchSince = "", time.Time{}
	a.s.mu.Unlock()
	if was != "" {
		a.log.Info("config watch running again", "paths", a.cfg.Watch)
	}
	return was != ""
}
