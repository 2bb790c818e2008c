package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(run())
}

// bench carries what every measurement needs.
type bench struct {
	t       *tools
	r       *report
	log     *slog.Logger
	quick   bool
	clients int
	swaps   int
	soak    int
	seq     int
}

func run() int {
	var (
		out      = flag.String("o", "", "also write the report to this file")
		quick    = flag.Bool("quick", false, "fewer runs and swaps (about 3 minutes instead of 10)")
		clients  = flag.Int("clients", 32, "concurrent load-generator clients")
		swaps    = flag.Int("swaps", 0, "hot swaps per load scenario (default 50, 10 with -quick)")
		soak     = flag.Int("soak", 0, "hot swaps in the soak row (default 1000, 200 with -quick)")
		install  = flag.Bool("install", true, "apt-get install tini and libserver-starter-perl when missing")
		sections = flag.String("sections", "init,swap,watch,soak,takeover", "comma-separated sections to run: init, swap, watch, soak, takeover")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if runtime.GOOS != "linux" {
		log.Error("the benchmark needs Linux")
		return 1
	}
	if os.Geteuid() != 0 {
		log.Warn("not root: apt-get and unshare --pid will fail; their rows are skipped")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	t, err := prepare(ctx, log, *install)
	if err != nil {
		log.Error("prepare", "err", err)
		return 1
	}
	defer os.RemoveAll(t.dir)
	b := &bench{t: t, r: &report{}, log: log, quick: *quick, clients: *clients, swaps: *swaps, soak: *soak}
	if b.swaps == 0 {
		b.swaps = 50
		if b.quick {
			b.swaps = 10
		}
	}
	if b.soak == 0 {
		b.soak = 1000
		if b.quick {
			b.soak = 200
		}
	}
	began := time.Now()
	want := map[string]bool{}
	for s := range strings.SplitSeq(*sections, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if want["init"] {
		b.initSection(ctx)
	}
	if want["swap"] {
		b.swapSection(ctx)
	}
	if want["watch"] {
		b.configWatchSection(ctx)
	}
	if want["soak"] {
		b.soakSection(ctx)
	}
	if want["takeover"] {
		b.takeoverSection(ctx)
	}

	header := fmt.Sprintf("# entrypoint benchmark\n\n%s, %s/%s, %d CPUs, %s, quick=%v, %d clients; took %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		runtime.Version(), b.quick, b.clients, time.Since(began).Round(time.Second))
	b.r.write(os.Stdout, header)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			log.Error("write report", "err", fmt.Errorf("create %s: %w", *out, err))
			return 1
		}
		b.r.write(f, header)
		if err := f.Close(); err != nil {
			log.Error("write report", "err", fmt.Errorf("close %s: %w", *out, err))
			return 1
		}
	}
	return 0
}
