package health_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/entrypoint/entrypoint/health"
	"github.com/entrypoint/entrypoint/internal/promtext"
	"github.com/entrypoint/entrypoint/status"
)

// The wiring in cmd/entrypoint: metrics on a private registry, fed by the
// supervisor's Events, and one listener for probes, metrics and admin.
func ExampleNew() {
	var sup status.Controller // the running supervisor
	var orphans func() uint64 // the reaper's orphan count

	reg := promtext.NewRegistry()
	events := health.NewMetrics(reg, sup, orphans) // pass as supervisor.Options.Events
	_ = events
	health.RegisterAppProcess(reg, sup, "web")
	health.RegisterDefault(reg, slog.Default())
	srv, err := health.New(health.Options{
		Listen:     ":9090",
		Admin:      true,
		AdminToken: "from ENTRYPOINT_ADMIN_TOKEN", // required off loopback
		Controller: sup,
		Registry:   reg,
	})
	if err != nil {
		log.Fatal(err) // says why and how to fix it
	}
	go func() {
		if err := srv.Serve(context.Background()); err != nil {
			log.Print(err)
		}
	}()
}
