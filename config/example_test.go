package config_test

import (
	"fmt"

	"github.com/entrypoint/entrypoint/config"
)

func ExampleLoad() {
	env := map[string]string{"ENTRYPOINT_DRAIN_TIMEOUT": "10s", "ENTRYPOINT_CONFIG": "/nonexistent/config.yaml"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	// A named config file must exist; every problem comes back at once.
	_, err := config.Load([]string{"--stop-signal", "TERMX", "--", "/app/server"}, getenv)
	fmt.Println(err)

	delete(env, "ENTRYPOINT_CONFIG")
	cfg, err := config.Load([]string{"--listen", ":8080", "--", "/app/server", "--port", "8080"}, getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	app := cfg.Apps[0]
	fmt.Println(app.Name, app.Command, app.Listen[0].Name, app.DrainTimeout, app.StopSignal, app.Readiness.Type)
	// Output:
	// /nonexistent/config.yaml: cannot read the config file: no such file or directory; fix the path given with --config or ENTRYPOINT_CONFIG
	// --stop-signal: "TERMX" is not a signal; write it like "SIGTERM" or "15"
	// app [/app/server --port 8080] tcp-8080 10s SIGTERM auto
}
