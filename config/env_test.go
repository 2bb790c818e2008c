package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// processEnv makes the process environment hold exactly kv among the
// ENTRYPOINT_* variables (t.Setenv restores everything afterwards).
func processEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); strings.HasPrefix(k, EnvPrefix) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

// The process environment goes through envconfig.Process, the tests'
// getenv through readEnv's loop: both must read the same, report the same
// problems (all of them at once), and neither may read an unprefixed
// name.
func TestEnvProcessMatchesGetenv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kv      []string
		wantErr []string
	}{
		{"valid", []string{
			"ENTRYPOINT_LISTEN", ":8080, https=:8443", "ENTRYPOINT_DRAIN_TIMEOUT", "7s", "ENTRYPOINT_STOP_SIGNAL", "QUIT",
			"ENTRYPOINT_ADMIN_TOKEN", "s3cret", "ENTRYPOINT_LOG_LEVEL", " ", "ENTRYPOINT_REWRITE", "TERM:QUIT",
		}, nil},
		{"every bad value at once", []string{
			"ENTRYPOINT_DRAIN_TIMEOUT", "soon", "ENTRYPOINT_STOP_SIGNAL", "TERMX", "ENTRYPOINT_ADMIN", "maybe",
			"ENTRYPOINT_SUCCESS_EXIT_CODES", "0,300",
		}, []string{"ENTRYPOINT_DRAIN_TIMEOUT", "ENTRYPOINT_STOP_SIGNAL", "ENTRYPOINT_ADMIN:", "ENTRYPOINT_SUCCESS_EXIT_CODES"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			absent := noDefault(t)
			args := []string{"--", "/app"}
			viaGetenv, errGetenv := load(args, envOf(tc.kv...), absent)
			// Unprefixed twins that envconfig would read for a field
			// with an `envconfig:"..."` tag: they are the app's.
			processEnv(t, append(tc.kv, "NAME", "wrong", "DRAIN_TIMEOUT", "1h", "CONFIG", "/nonexistent")...)
			viaProcess, errProcess := load(args, nil, absent)
			if (errGetenv == nil) != (errProcess == nil) || (errGetenv != nil && errGetenv.Error() != errProcess.Error()) {
				t.Fatalf("getenv: %v\nprocess: %v", errGetenv, errProcess)
			}
			for _, w := range tc.wantErr {
				if errProcess == nil || !strings.Contains(errProcess.Error(), w) {
					t.Errorf("error %v does not name %s", errProcess, w)
				}
			}
			if tc.wantErr == nil {
				if !reflect.DeepEqual(viaGetenv, viaProcess) {
					t.Errorf("getenv: %+v\nprocess: %+v", viaGetenv, viaProcess)
				}
				a := viaProcess.Apps[0]
				if a.Name != DefaultAppName || a.DrainTimeout.D().String() != "7s" || len(a.Listen) != 2 || viaProcess.Health.AdminToken != "s3cret" {
					t.Errorf("process env misread: %+v", viaProcess)
				}
			}
		})
	}
}

// envconfig names every field of the spec exactly as the option's env
// twin, in table order.
func TestEnvSpecKeys(t *testing.T) {
	opts := options()
	var keys []string
	rows, err := envRows(opts, func(o *option, key string) string {
		if key != o.env() {
			t.Errorf("option --%s: envconfig reads %s, want %s", o.name, key, o.env())
		}
		keys = append(keys, key)
		return key + "\n"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(opts) || strings.Count(rows, "\n") != len(opts) {
		t.Errorf("%d rows for %d options", len(keys), len(opts))
	}
}

// Kubernetes service links of a Service named entrypoint or entrypoint-*
// are no typos; a setting mistyped into one of their names, with a value
// they never have, still is.
func TestUnknownEnvSkipsServiceLinks(t *testing.T) {
	links := []string{
		"ENTRYPOINT_SERVICE_HOST=10.96.12.7", "ENTRYPOINT_SERVICE_PORT=80", "ENTRYPOINT_SERVICE_PORT_METRICS=9090",
		"ENTRYPOINT_PORT=tcp://10.96.12.7:80", "ENTRYPOINT_PORT_80_TCP=tcp://10.96.12.7:80",
		"ENTRYPOINT_PORT_80_TCP_PROTO=tcp", "ENTRYPOINT_PORT_80_TCP_PORT=80", "ENTRYPOINT_PORT_80_TCP_ADDR=10.96.12.7",
		"ENTRYPOINT_WEB_SERVICE_HOST=fd00::7", "ENTRYPOINT_WEB_PORT_53_UDP=udp://[fd00::7]:53",
	}
	if got := UnknownEnv(links); len(got) != 0 {
		t.Errorf("service links warned about:\n%s", strings.Join(got, "\n"))
	}
	typos := []string{
		"ENTRYPOINT_HEALTH_PORT=9090", "ENTRYPOINT_SERVICE_HOST=web", "ENTRYPOINT_PORT=8080",
		"ENTRYPOINT_PORT_80_TCP_PROTO=http", "ENTRYPOINT_SERVICE_PORT=:80",
	}
	if got := UnknownEnv(typos); len(got) != len(typos) {
		t.Errorf("want a warning for each of %q, got:\n%s", typos, strings.Join(got, "\n"))
	}
}
