package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envOf is a getenv over fixed pairs, so tests never touch the process
// environment.
func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeYAML(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// noDefault is a default file path that never exists.
func noDefault(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.yaml") }

func mustLoad(t *testing.T, args []string, getenv func(string) (string, bool)) *Config {
	t.Helper()
	c, err := load(args, getenv, noDefault(t))
	if err != nil {
		t.Fatalf("load(%q): %v", args, err)
	}
	return c
}

func loadErr(t *testing.T, args []string, getenv func(string) (string, bool)) string {
	t.Helper()
	c, err := load(args, getenv, noDefault(t))
	if err == nil {
		t.Fatalf("load(%q) = %+v; want an error", args, c)
	}
	return err.Error()
}

func TestMinimalCommandLine(t *testing.T) {
	c := mustLoad(t, []string{"--listen", ":8080", "--", "/app/server", "--port", "8080"}, envOf())
	want := &Config{
		LogFormat: "text", LogLevel: "info", SignalTarget: "group",
		Health:        Health{Listen: ":9090"},
		ControlSocket: "@entrypoint-control-{ns}",
		Source:        "command line",
		Apps: []App{{
			Name:         "app",
			Command:      []string{"/app/server", "--port", "8080"},
			StopSignal:   Signal(syscall.SIGTERM),
			DrainTimeout: Duration(30 * time.Second),
			Restart: Restart{Policy: "exit", Backoff: Duration(time.Second), MaxBackoff: Duration(30 * time.Second),
				CrashLoop: 5, StableAfter: Duration(10 * time.Second)},
			Listen:          []Listener{{Name: "tcp-8080", Address: ":8080"}},
			Readiness:       Readiness{Type: "auto", Timeout: Duration(time.Minute)},
			Takeover:        "auto",
			WatchDebounce:   Duration(time.Second),
			ValidateTimeout: Duration(30 * time.Second),
			OnChange:        "swap",
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	// Without "--" the first non-flag starts the command, as in tini.
	c = mustLoad(t, []string{"/bin/true", "--listen", ":1"}, envOf())
	if got := c.Apps[0].Command; !reflect.DeepEqual(got, []string{"/bin/true", "--listen", ":1"}) || c.Apps[0].Listen != nil {
		t.Fatalf("command = %q, listen = %v", got, c.Apps[0].Listen)
	}
	if c.Apps[0].Readiness.Type != "none" {
		t.Fatalf("readiness without listeners = %q; want none", c.Apps[0].Readiness.Type)
	}
}

func TestPrecedence(t *testing.T) {
	type layer struct{ flag, env, yaml string }
	for _, tc := range []struct {
		name    string
		flag    string
		envVar  string
		yamlKey string // rendered under apps[0] when app is set
		app     bool
		layers  layer
		get     func(*Config) string
		want    string
	}{
		{"flag beats env", "drain-timeout", "ENTRYPOINT_DRAIN_TIMEOUT", "drainTimeout", true,
			layer{"10s", "20s", "40s"}, func(c *Config) string { return c.Apps[0].DrainTimeout.String() }, "10s"},
		{"env beats yaml", "drain-timeout", "ENTRYPOINT_DRAIN_TIMEOUT", "drainTimeout", true,
			layer{"", "20s", "40s"}, func(c *Config) string { return c.Apps[0].DrainTimeout.String() }, "20s"},
		{"yaml beats default", "drain-timeout", "ENTRYPOINT_DRAIN_TIMEOUT", "drainTimeout", true,
			layer{"", "", "40s"}, func(c *Config) string { return c.Apps[0].DrainTimeout.String() }, "40s"},
		{"default", "drain-timeout", "ENTRYPOINT_DRAIN_TIMEOUT", "drainTimeout", true,
			layer{"", "", ""}, func(c *Config) string { return c.Apps[0].DrainTimeout.String() }, "30s"},
		{"global flag", "log-level", "ENTRYPOINT_LOG_LEVEL", "logLevel", false,
			layer{"debug", "warn", "error"}, func(c *Config) string { return c.LogLevel }, "debug"},
		{"global env", "log-level", "ENTRYPOINT_LOG_LEVEL", "logLevel", false,
			layer{"", "warn", "error"}, func(c *Config) string { return c.LogLevel }, "warn"},
		{"global yaml", "log-level", "ENTRYPOINT_LOG_LEVEL", "logLevel", false,
			layer{"", "", "error"}, func(c *Config) string { return c.LogLevel }, "error"},
		{"nested yaml key", "health-listen", "ENTRYPOINT_HEALTH_LISTEN", "", false,
			layer{"", "127.0.0.1:9100", ""}, func(c *Config) string { return c.Health.Listen }, "127.0.0.1:9100"},
		{"signal env", "stop-signal", "ENTRYPOINT_STOP_SIGNAL", "stopSignal", true,
			layer{"", "quit", "SIGINT"}, func(c *Config) string { return c.Apps[0].StopSignal.String() }, "SIGQUIT"},
		{"list flag replaces env list", "listen", "ENTRYPOINT_LISTEN", "listen", true,
			layer{":1111", ":2222,:3333", ":4444"}, func(c *Config) string { return listenAddrs(c.Apps[0]) }, ":1111"},
		{"env list replaces yaml list", "listen", "ENTRYPOINT_LISTEN", "listen", true,
			layer{"", ":2222, :3333,", ":4444"}, func(c *Config) string { return listenAddrs(c.Apps[0]) }, ":2222 :3333"},
		{"bool env false beats yaml true", "admin", "ENTRYPOINT_ADMIN", "", false,
			layer{"", "false", ""}, func(c *Config) string { return map[bool]string{true: "on", false: "off"}[c.Health.Admin] }, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			var kv []string
			yml := "health:\n  admin: true\n  adminTokenFile: /t\napps:\n- name: app\n  command: [/bin/true]\n"
			if tc.layers.flag != "" {
				args = append(args, "--"+tc.flag+"="+tc.layers.flag)
			}
			if tc.layers.env != "" {
				kv = append(kv, tc.envVar, tc.layers.env)
			}
			if tc.layers.yaml != "" {
				if tc.app {
					yml += "  " + tc.yamlKey + ": " + yamlValue(tc.layers.yaml, tc.flag == "listen") + "\n"
				} else {
					yml = tc.yamlKey + ": " + tc.layers.yaml + "\n" + yml
				}
			}
			args = append([]string{"--config", writeYAML(t, yml)}, args...)
			c := mustLoad(t, args, envOf(kv...))
			if got := tc.get(c); got != tc.want {
				t.Fatalf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func yamlValue(v string, list bool) string {
	if list {
		return `["` + v + `"]`
	}
	return `"` + v + `"`
}

func listenAddrs(a App) string {
	var s []string
	for _, l := range a.Listen {
		s = append(s, l.Address)
	}
	return strings.Join(s, " ")
}

func TestConfigFileChoice(t *testing.T) {
	yml := "apps:\n- name: from-file\n  command: [/bin/true]\n"
	// The default file is read only when it exists.
	def := writeYAML(t, yml)
	c, err := load(nil, envOf(), def)
	if err != nil || c.Apps[0].Name != "from-file" || c.Source != def {
		t.Fatalf("default file: %+v, %v", c, err)
	}
	if _, err := load([]string{"--", "/bin/true"}, envOf(), noDefault(t)); err != nil {
		t.Fatalf("absent default file: %v", err)
	}
	// ENTRYPOINT_CONFIG picks a file; --config beats it.
	other := writeYAML(t, "apps:\n- name: other\n  command: [/bin/true]\n")
	c, err = load(nil, envOf("ENTRYPOINT_CONFIG", other), def)
	if err != nil || c.Apps[0].Name != "other" {
		t.Fatalf("env file: %+v, %v", c, err)
	}
	c, err = load([]string{"--config", def}, envOf("ENTRYPOINT_CONFIG", other), def)
	if err != nil || c.Apps[0].Name != "from-file" {
		t.Fatalf("flag file: %+v, %v", c, err)
	}
	// An explicitly named file must exist.
	missing := noDefault(t)
	msg := loadErr(t, []string{"--config", missing, "--", "/bin/true"}, envOf())
	if !strings.Contains(msg, missing+": cannot read the config file") {
		t.Fatalf("missing file error: %s", msg)
	}
}

func TestStrictFile(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown app field", "apps:\n- name: web\n  command: [/bin/true]\n  colour: blue\n",
			[]string{"apps[0].colour: unknown field; valid keys here: command, dir, drainTimeout"}},
		{"typo suggestion", "apps:\n- name: web\n  command: [/bin/true]\n  drainTimout: 5s\n",
			[]string{`apps[0].drainTimout: unknown field; did you mean "drainTimeout"?`}},
		{"wrong case is a typo too", "logformat: json\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{`logformat: unknown field; did you mean "logFormat"?`}},
		{"nested", "health:\n  listn: :9\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{`health.listn: unknown field; did you mean "listen"?`}},
		{"token never in the file", "health:\n  adminToken: s3cret\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{"health.adminToken: unknown field; put the token in a file named by adminTokenFile, or in ENTRYPOINT_ADMIN_TOKEN"}},
		{"Source is not a key", "Source: x\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{"Source: unknown field"}},
		{"duplicate key", "logLevel: info\nlogLevel: debug\n", []string{"not valid YAML", `"logLevel" already set`}},
		{"syntax", "apps: [\n", []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"the file must be a mapping"}},
		{"command as string", "apps:\n- name: web\n  command: /app/server --port 8080\n",
			[]string{`apps[0].command: "/app/server --port 8080" is not a list; write it as a list, one item per argument, like ["/app/server", "--port", "8080"]`}},
		{"number in argv", "apps:\n- name: web\n  command: [/app/server, --port, 8080]\n",
			[]string{`apps[0].command[2]: the number 8080 is not a string; quote it: "8080"`}},
		{"YAML 1.1 boolean", "apps:\n- name: web\n  command: [/bin/sh, -c, y]\n",
			[]string{"apps[0].command[2]: true is not a string; YAML reads an unquoted y, yes, on"}},
		{"quoted bool", "health:\n  admin: \"yes\"\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{`health.admin: "yes" is not a boolean; write true or false without quotes`}},
		{"bad duration", "apps:\n- name: web\n  command: [/bin/true]\n  drainTimeout: \"30\"\n",
			[]string{`apps[0].drainTimeout: "30" is not a duration; write it like "30s" or "1m30s"`}},
		{"bad signal", "apps:\n- name: web\n  command: [/bin/true]\n  stopSignal: TERMX\n",
			[]string{`apps[0].stopSignal: "TERMX" is not a signal; write it like "SIGTERM" or "15"`}},
		{"bad rewrite key", "rewrite: {TERMX: QUIT}\napps: [{name: web, command: [/bin/true]}]\n",
			[]string{`rewrite.TERMX: "TERMX" is not a signal`}},
		{"crashLoop not a number", "apps:\n- name: web\n  command: [/bin/true]\n  restart: {crashLoop: many}\n",
			[]string{`apps[0].restart.crashLoop: "many" is not a whole number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeYAML(t, tc.yaml)
			msg := loadErr(t, []string{"--config", file}, envOf())
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, file+":") {
				t.Errorf("error %q does not start with the file name", msg)
			}
			// One mistake, one message: the dropped value causes no follow-up.
			if n := strings.Count(msg, "\n") + 1; n != 1 {
				t.Errorf("got %d messages for one mistake:\n%s", n, msg)
			}
		})
	}
}

func TestEveryErrorAtOnce(t *testing.T) {
	file := writeYAML(t, `
logFormat: xml
apps:
- name: Web
  command: [/app/web]
  drainTimeout: "30"
  colour: blue
  listen: [":99999", "unix:relative.sock"]
- name: worker
  readiness: {type: http, address: "not a url"}
- name: worker
  command: [/app/worker]
  restart: {policy: always}
  onChange: signal:NOPE
`)
	msg := loadErr(t, []string{"--config", file, "--stop-signal", "TERMX", "--rewrite", "TERM", "--success-exit-codes", "0,300"},
		envOf("ENTRYPOINT_DRAIN_TIMEOUT", "ten", "ENTRYPOINT_LOG_LEVEL", "loud"))
	want := []string{
		file + `: logFormat: "xml" is not allowed; write one of text, json`,
		`ENTRYPOINT_LOG_LEVEL: "loud" is not allowed; write one of debug, info, warn, error`,
		`ENTRYPOINT_DRAIN_TIMEOUT: "ten" is not a duration; write it like "30s" or "1m30s"`,
		`--stop-signal: "TERMX" is not a signal; write it like "SIGTERM" or "15"`,
		`--rewrite: "TERM" is not a rewrite; write it like "TERM:QUIT"`,
		`--success-exit-codes: "300" is not an exit code`,
		file + `: apps[0].drainTimeout: "30" is not a duration`,
		file + `: apps[0].colour: unknown field`,
		file + `: apps[0].name: "Web" is not a valid app name`,
		file + `: apps[0].listen[0].address: ":99999" has port "99999"; the port must be a number 0-65535`,
		file + `: apps[0].listen[1].address: "unix:relative.sock" is not an absolute path`,
		file + `: apps[1].command: missing; give the program and its arguments as a list`,
		file + `: apps[1].readiness.address: "not a url" is not an http URL`,
		file + `: apps[2].name: "worker" is already the name of apps[1]`,
		file + `: apps[2].restart.policy: "always" is not allowed; write one of exit, restart`,
		file + `: apps[2].onChange: "NOPE" is not a signal`,
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q", w)
		}
	}
	if got := strings.Count(msg, "\n") + 1; got != len(want) {
		t.Errorf("got %d messages, want %d:\n%s", got, len(want), msg)
	}
}

func TestMultiAppFile(t *testing.T) {
	file := writeYAML(t, `
logFormat: json
rewrite: {SIGTERM: SIGQUIT, 2: 3}
successExitCodes: [0, 143]
preStopDelay: 5
controlSocket: "off"
apps:
- name: web
  command: ["/app/web", "--port", "8080"]
  env: {MODE: prod}
  listen:
  - ":8080"
  - "https=:8443"
  - {name: admin, address: "unix:/run/web.sock", mode: "0660", owner: "1000:1000", backlog: 128}
  watch: [/etc/web]
  validate: [/app/web, --check]
  onChange: signal:hup
- name: worker
  command: [/app/worker]
  stopSignal: 3
  drainTimeout: 1m30s
  restart: {policy: restart, backoff: 2m}
  readiness: {command: [/bin/check]}
`)
	c := mustLoad(t, []string{"--config", file}, envOf())
	if c.LogFormat != "json" || c.PreStopDelay.D() != 5*time.Second || c.ControlSocket != "" ||
		!reflect.DeepEqual(c.SuccessExitCodes, []int{0, 143}) ||
		!reflect.DeepEqual(c.Rewrite, map[Signal]Signal{15: 3, 2: 3}) {
		t.Fatalf("globals: %+v", c)
	}
	web, worker := c.Apps[0], c.Apps[1]
	wantListen := []Listener{
		{Name: "tcp-8080", Address: ":8080"},
		{Name: "https", Address: ":8443"},
		{Name: "admin", Address: "unix:/run/web.sock", Mode: "0660", Owner: "1000:1000", Backlog: 128},
	}
	if !reflect.DeepEqual(web.Listen, wantListen) || web.Readiness.Type != "auto" || web.OnChange != "signal:SIGHUP" ||
		web.Env["MODE"] != "prod" || web.DrainTimeout.D() != 30*time.Second {
		t.Fatalf("web: %+v", web)
	}
	if worker.StopSignal.Sys() != syscall.SIGQUIT || worker.DrainTimeout.D() != 90*time.Second ||
		worker.Restart.Policy != "restart" || worker.Restart.MaxBackoff.D() != 2*time.Minute ||
		worker.Readiness.Type != "exec" || worker.Readiness.Delay.D() != 250*time.Millisecond {
		t.Fatalf("worker: %+v", worker)
	}
}

func TestCommandLineAndFileApps(t *testing.T) {
	file := writeYAML(t, `
apps:
- name: web
  command: [/app/old]
  drainTimeout: 5s
  listen: [":8080"]
- name: worker
  command: [/app/worker]
`)
	// The command replaces the first app's; per-app flags override only it.
	c := mustLoad(t, []string{"--config", file, "--drain-timeout", "7s", "--name", "front", "--", "/app/new", "-v"}, envOf())
	if len(c.Apps) != 2 {
		t.Fatalf("apps: %+v", c.Apps)
	}
	first, second := c.Apps[0], c.Apps[1]
	if first.Name != "front" || !reflect.DeepEqual(first.Command, []string{"/app/new", "-v"}) ||
		first.DrainTimeout.D() != 7*time.Second || listenAddrs(first) != ":8080" {
		t.Fatalf("first app: %+v", first)
	}
	if second.Name != "worker" || second.DrainTimeout.D() != 30*time.Second || second.Command[0] != "/app/worker" {
		t.Fatalf("second app: %+v", second)
	}
	// Without a command the file's command stays.
	c = mustLoad(t, []string{"--config", file}, envOf())
	if c.Apps[0].Command[0] != "/app/old" {
		t.Fatalf("file command replaced: %+v", c.Apps[0])
	}
	// Flags without a command and without apps: a clear error.
	msg := loadErr(t, []string{"--listen", ":8080"}, envOf())
	if msg != "no command: give one after --, like `entrypoint -- /app/server`, or define apps in the config file" {
		t.Fatalf("no command error: %q", msg)
	}
	if msg := loadErr(t, nil, envOf()); !strings.HasPrefix(msg, "no command: give one after --") {
		t.Fatalf("empty config error: %q", msg)
	}
}

func TestListenerValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{[]string{"--listen", ":8080"}, ""},
		{[]string{"--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}, ""},
		{[]string{"--listen", "[::1]:8080,localhost:8081"}, ""},
		{[]string{"--listen", "unix:/run/a=b.sock"}, ""},
		{[]string{"--listen", "unix:@abstract"}, ""},
		{[]string{"--listen", "8080"}, `--listen: "8080" is not a listen address; write it like ":8080"`},
		{[]string{"--listen", ":http"}, `--listen: ":http" has port "http"`},
		{[]string{"--listen", "::1:80"}, `--listen: "::1:80" is not a listen address`},
		{[]string{"--listen", "unix:"}, `--listen: "unix:" has no socket path`},
		{[]string{"--listen", "unix:/" + strings.Repeat("x", 120)}, "a unix socket path may have at most 107"},
		{[]string{"--listen", "bad name=:80"}, `--listen: "bad name" is not a listener name`},
		{[]string{"--listen", "a=:80,a=:81"}, `--listen: "a" names two listeners of app "app"`},
		{[]string{"--listen", ":8080,0.0.0.0:8080"}, `--listen: "0.0.0.0:8080" overlaps --listen`},
		{[]string{"--listen", "127.0.0.1:9090"}, `--listen: "127.0.0.1:9090" overlaps health.listen`},
		{[]string{"--listen", ":9090", "--health-listen", "off"}, ""},
		{[]string{"--health-listen", "unix:/run/h.sock"}, "kubelet probes need TCP"},
	} {
		args := append(tc.args, "--", "/bin/true")
		c, err := load(args, envOf(), noDefault(t))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v; want %q", tc.args, err, tc.want)
		case tc.want == "" && len(c.Apps[0].Listen) > 0 && c.Apps[0].Listen[0].Name == "":
			t.Errorf("%q: listener without a name", tc.args)
		}
	}
}

func TestListenerNames(t *testing.T) {
	c := mustLoad(t, []string{"--listen", "127.0.0.1:80,127.0.0.2:80,tcp-80=[::1]:81,unix:/run/app.sock,unix:@x:y", "--", "x"}, envOf())
	var got []string
	for _, l := range c.Apps[0].Listen {
		got = append(got, l.Name)
	}
	// An explicit name wins; derived names step aside with a suffix.
	want := []string{"tcp-80-2", "tcp-80-3", "tcp-80", "unix-app.sock", "unix-x-y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("names %q; want %q", got, want)
	}
}

func TestFileListenerShortForm(t *testing.T) {
	file := writeYAML(t, "apps:\n- name: web\n  command: [x]\n  listen: \"https=:8443\"\n")
	c := mustLoad(t, []string{"--config", file}, envOf())
	if !reflect.DeepEqual(c.Apps[0].Listen, []Listener{{Name: "https", Address: ":8443"}}) {
		t.Fatalf("listen %+v", c.Apps[0].Listen)
	}
}

func TestRewriteAndExitCodes(t *testing.T) {
	c := mustLoad(t, []string{"--rewrite", "TERM:QUIT", "--rewrite", "sigint:3,RTMIN+1:HUP", "--success-exit-codes", "0,143", "--success-exit-codes", "2", "--", "x"}, envOf())
	want := map[Signal]Signal{15: 3, 2: 3, 35: 1}
	if !reflect.DeepEqual(c.Rewrite, want) || !reflect.DeepEqual(c.SuccessExitCodes, []int{0, 143, 2}) {
		t.Fatalf("rewrite %v codes %v", c.Rewrite, c.SuccessExitCodes)
	}
	c = mustLoad(t, []string{"--", "x"}, envOf("ENTRYPOINT_REWRITE", "TERM:QUIT, INT:QUIT"))
	if !reflect.DeepEqual(c.Rewrite, map[Signal]Signal{15: 3, 2: 3}) {
		t.Fatalf("env rewrite %v", c.Rewrite)
	}
	for _, bad := range []struct{ arg, want string }{
		{"TERM", `"TERM" is not a rewrite; write it like "TERM:QUIT"`},
		{"TERM:NOPE", `"TERM:NOPE" is not a rewrite of one signal to another`},
		{"KILL:TERM", "SIGKILL cannot be caught"},
	} {
		if msg := loadErr(t, []string{"--rewrite", bad.arg, "--", "x"}, envOf()); !strings.Contains(msg, "--rewrite: "+bad.want) {
			t.Errorf("--rewrite %s: %s", bad.arg, msg)
		}
	}
}

func TestReadinessAndAdminRules(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--readiness", "exec"}, nil, "--readiness: the exec gate needs a command"},
		{[]string{"--readiness", "delay"}, nil, "--readiness: the delay gate needs a delay"},
		{[]string{"--readiness", "magic"}, nil, `--readiness: "magic" is not a readiness gate`},
		{[]string{"--readiness-address", "127.0.0.1:8080", "--listen", ":8080"}, nil, "--readiness-address: \"127.0.0.1:8080\" is served by listener \":8080\""},
		{[]string{"--readiness", "notify", "--readiness-address", "x:1"}, nil, "--readiness-address: is set but the gate is \"notify\""},
		{[]string{"--admin"}, nil, `--admin: the admin page on ":9090" is reachable from the network and needs a token`},
		{[]string{"--admin", "--health-listen", "off"}, nil, "the admin page is served on the health listener, which is off"},
		{[]string{"--health-tls-cert", "/c"}, nil, "--health-tls-cert: HTTPS needs both"},
		{[]string{"--validate", "/bin/check"}, nil, "--validate: is only run when a watched path changes"},
		{[]string{"--on-change", "reload"}, nil, `--on-change: "reload" is not allowed`},
		{[]string{"--control-socket", "relative"}, nil, `--control-socket: "relative" is not a socket path`},
		{[]string{"--restart-backoff", "1m", "--restart-max-backoff", "10s"}, nil, "--restart-max-backoff: 10s is less than restart.backoff 1m0s"},
		{[]string{"--drain-timeout", "-1s"}, nil, "--drain-timeout: -1s is negative"},
		{nil, []string{"ENTRYPOINT_ADMIN", "maybe"}, `ENTRYPOINT_ADMIN: "maybe" is not a boolean`},
	} {
		msg := loadErr(t, append(tc.args, "--", "x"), envOf(tc.env...))
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%q: %s\nwant %q", tc.args, msg, tc.want)
		}
	}
	for _, ok := range []struct {
		args, env []string
	}{
		{[]string{"--admin", "--health-listen", "127.0.0.1:9090"}, nil},
		{[]string{"--admin", "--health-listen", "[::1]:9090"}, nil},
		{[]string{"--admin", "--admin-token-file", "/run/secrets/token"}, nil},
		{[]string{"--admin"}, []string{"ENTRYPOINT_ADMIN_TOKEN", "s3cret"}},
		{[]string{"--readiness-address", "http://127.0.0.1:8081/ready", "--listen", ":8080"}, nil},
		{[]string{"--readiness-command", "/bin/check --quick"}, nil},
		{[]string{"--watch", "/etc/app", "--validate", "/app/server --check", "--on-change", "signal:USR2"}, nil},
	} {
		c, err := load(append(ok.args, "--", "x"), envOf(ok.env...), noDefault(t))
		if err != nil {
			t.Errorf("%q %q: %v", ok.args, ok.env, err)
		}
		if err == nil && len(ok.env) > 0 && c.Health.AdminToken != "s3cret" {
			t.Errorf("admin token not read from env")
		}
	}
	c := mustLoad(t, []string{"--readiness-command", "/bin/check --quick", "--", "x"}, envOf())
	if r := c.Apps[0].Readiness; r.Type != "exec" || !reflect.DeepEqual(r.Command, []string{"/bin/check", "--quick"}) {
		t.Fatalf("readiness %+v", r)
	}
	c = mustLoad(t, []string{"--readiness-address", "http://127.0.0.1:8081/ready", "--", "x"}, envOf())
	if c.Apps[0].Readiness.Type != "http" {
		t.Fatalf("readiness %+v", c.Apps[0].Readiness)
	}
}

func TestFlagErrors(t *testing.T) {
	_, err := load([]string{"-h"}, envOf(), noDefault(t))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if u := Usage(); !strings.Contains(u, "--drain-timeout DURATION") || !strings.Contains(u, "env ENTRYPOINT_DRAIN_TIMEOUT") ||
		strings.Contains(u, "--admin-token ") {
		t.Fatalf("usage:\n%s", u)
	}
	msg := loadErr(t, []string{"--drain-timout", "5s", "--", "x"}, envOf())
	if !strings.HasPrefix(msg, "--drain-timout: unknown flag; did you mean --drain-timeout?") {
		t.Fatalf("unknown flag: %s", msg)
	}
	// A secret is not accepted on the command line, where ps shows it.
	if msg := loadErr(t, []string{"--admin-token", "x", "--", "x"}, envOf()); !strings.Contains(msg, "unknown flag") {
		t.Fatalf("--admin-token: %s", msg)
	}
	if msg := loadErr(t, []string{"--listen"}, envOf()); msg != "--listen: needs a value, like --listen=VALUE" {
		t.Fatalf("missing value: %s", msg)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := mustLoad(t, []string{"--listen", ":8080,https=:8443", "--rewrite", "TERM:QUIT", "--control-socket", "off",
		"--watch", "/etc/app", "--readiness-timeout", "90s", "--", "/app/server", "--flag=1"},
		envOf("ENTRYPOINT_ADMIN_TOKEN", "s3cret", "ENTRYPOINT_ADMIN", "true"))
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") {
		t.Fatalf("token leaked:\n%s", out)
	}
	for _, w := range []string{"controlSocket: \"off\"", "drainTimeout: 30s", "SIGTERM: SIGQUIT", "stopSignal: SIGTERM", "timeout: 1m30s"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("YAML lacks %q:\n%s", w, out)
		}
	}
	back := mustLoad(t, []string{"--config", writeYAML(t, string(out))}, envOf("ENTRYPOINT_ADMIN_TOKEN", "s3cret"))
	back.Source, c.Source = "", ""
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
	}
}

func TestReference(t *testing.T) {
	got, err := reference()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("REFERENCE.md", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatal("REFERENCE.md is out of date; run go test ./config -run TestReference -update")
	}
	for _, o := range options() {
		if !strings.Contains(got, o.env()) {
			t.Errorf("reference lacks %s", o.env())
		}
	}
}

var update = flag.Bool("update", false, "rewrite REFERENCE.md")

func TestEmptyEnvIsUnset(t *testing.T) {
	file := writeYAML(t, "logLevel: warn\napps: [{name: web, command: [x], drainTimeout: 5s}]\n")
	c := mustLoad(t, []string{"--config", file}, envOf("ENTRYPOINT_LOG_LEVEL", "", "ENTRYPOINT_DRAIN_TIMEOUT", " "))
	if c.LogLevel != "warn" || c.Apps[0].DrainTimeout.D() != 5*time.Second {
		t.Fatalf("empty env overrode the file: %+v", c)
	}
}

// A value the file sets and a flag overrides is blamed on the flag; one
// the flag does not touch is blamed on the file.
func TestLabels(t *testing.T) {
	file := writeYAML(t, "apps:\n- name: web\n  command: [x]\n  listen: [\":8080\"]\n- name: other\n  command: [/bin/y]\n  listen: [\":8081\"]\n")
	msg := loadErr(t, []string{"--config", file, "--listen", ":8081"}, envOf())
	want := file + `: apps[1].listen[0].address: ":8081" overlaps --listen; each socket can be bound once`
	if msg != want+", give it another port or path" {
		t.Fatalf("got  %s\nwant %s", msg, want)
	}
	msg = loadErr(t, []string{"--config", file}, envOf("ENTRYPOINT_NAME", "other"))
	if msg != file+`: apps[1].name: "other" is already the name of apps[0]; give each app a unique name` {
		t.Fatalf("got %s", msg)
	}
}
