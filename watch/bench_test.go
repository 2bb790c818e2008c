package watch

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/internal/atomicwriter"
)

// BenchmarkKubeletUpdate measures how long a ConfigMap update takes to
// become a Change: from the rename of ..data (the instant the new content
// is visible) to the Change received, with a 1 ms debounce, so the figure
// is inotify delivery + the debounce + hashing. The default 1 s debounce
// adds its full length on top.
//
//	go test -run '^$' -bench KubeletUpdate -benchtime 200x ./watch
func BenchmarkKubeletUpdate(b *testing.B) {
	for _, keys := range []int{1, 50} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			dir := b.TempDir()
			var renamed time.Time
			aw := &atomicwriter.Writer{Dir: dir, Renamed: func(at time.Time) { renamed = at }}
			write := func(version int) {
				files := map[string]atomicwriter.Payload{}
				for k := range keys {
					files[fmt.Sprintf("key%d.yaml", k)] = atomicwriter.Payload{Data: fmt.Appendf(nil, "version: %d\nkey: %d\n", version, k)}
				}
				if err := aw.Write(files); err != nil {
					b.Fatal(err)
				}
			}
			write(0)
			const debounce = time.Millisecond
			w, err := New(Options{Paths: []string{dir}, Debounce: debounce})
			if err != nil {
				b.Fatal(err)
			}
			ready := make(chan struct{})
			w.settled = func(string) {
				select {
				case ready <- struct{}{}:
				default:
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-ready

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				write(i + 1)
				select {
				case <-w.Changes():
					lat = append(lat, time.Since(renamed))
				case <-time.After(wait):
					b.Fatal("no Change")
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Nanoseconds())/float64(len(lat)), "ns-rename-to-change")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "ns-p99")
			b.ReportMetric(float64(debounce.Nanoseconds()), "ns-debounce")
		})
	}
}
