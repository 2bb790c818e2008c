package watch_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/entrypoint/entrypoint/watch"
)

// A supervisor watches a ConfigMap volume and swaps the app on each real
// change.
func ExampleWatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, msg := range watch.SubPathWarnings([]string{"/etc/app"}) {
		slog.Warn(msg)
	}
	w, err := watch.New(watch.Options{Paths: []string{"/etc/app"}, Debounce: time.Second})
	if err != nil {
		slog.Error("watch", "err", err)
		return
	}
	go func() {
		if err := w.Run(ctx); err != nil {
			slog.Error("watch", "err", err)
		}
	}()
	for c := range w.Changes() {
		slog.Info("config changed", "hash", c.Hash, "previous", c.Previous, "since", time.Since(c.At))
		// validate, then swap
	}
}
