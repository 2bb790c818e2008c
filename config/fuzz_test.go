package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLoad feeds the three layers (flags, ENTRYPOINT_* env, YAML file) to
// the loader. It must never panic, every failure must say something, and
// what loads must survive the round trip YAML() promises: the printed
// config loads back to the same Config.
//
// args are newline-separated; env is KEY=VALUE lines. --config and
// ENTRYPOINT_CONFIG are dropped: the fuzzer must not make the loader read
// arbitrary files (/dev/zero) from the machine.
func FuzzLoad(f *testing.F) {
	f.Add("--listen\n:8080\n--\n/app/server\n--port\n8080", "", "")
	f.Add("", "ENTRYPOINT_DRAIN_TIMEOUT=5s\nENTRYPOINT_LISTEN=:8080,unix:/run/a.sock", "apps:\n- name: web\n  command: [/app/web]\n")
	f.Add("--restart\nrestart\n--restart-backoff\n2s\n--\nsleep\n1", "ENTRYPOINT_LOG_LEVEL=debug", "logLevel: warn\n")
	f.Add("--rewrite\nTERM:QUIT,HUP:USR1\n--success-exit-codes\n143\n--\ntrue", "", "")
	f.Add("", "", "apps:\n- name: a\n  command: [x]\n  listen: [{address: ':80', backlog: 10}]\n  readiness: {type: http, address: 'http://127.0.0.1:80/'}\n- name: b\n  command: [y]\n")
	f.Add("", "", "rewrite: {SIGTERM: SIGQUIT}\nsuccessExitCodes: [143]\nhealth: {listen: off}\ncontrolSocket: off\napps: [{command: [a]}]\n")
	f.Add("--watch\n/etc/app\n--on-change\nsignal:HUP\n--validate\n/app/check\n--", "", "apps: [{command: [a], watchDebounce: 1.5}]\n")
	f.Add("--", "", "apps:\n- command: [a]\n  stopSignal: 0\n  drainTimeout: -1s\n")
	f.Add("", "", "apps: [{command: [a], restart: {crashLoop: 99999999999999999999}}]")
	f.Add("", "", "{")
	f.Add("", "", "- a\n- b\n")
	f.Add("--nope", "", "")
	// DEL, a C1 control and U+FFFF: YAML's reader refuses them raw, so
	// YAML() must escape them (CI found DEL in a flag value).
	f.Add("--\n/app\na\x7fb\n\u0086\n\uffff", "ENTRYPOINT_WATCH=/etc/\x7f", "")
	f.Fuzz(func(t *testing.T, args, env, file string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		argv := []string{"--config", path}
		for a := range strings.SplitSeq(args, "\n") {
			if strings.Contains(a, "config") {
				continue
			}
			argv = append(argv, a)
		}
		vars := map[string]string{}
		for line := range strings.SplitSeq(env, "\n") {
			k, v, _ := strings.Cut(line, "=")
			if k != EnvPrefix+"CONFIG" {
				vars[k] = v
			}
		}
		getenv := func(k string) (string, bool) {
			v, ok := vars[k]
			return v, ok
		}
		absent := filepath.Join(dir, "absent.yaml")

		cfg, err := load(argv, getenv, absent)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("load failed with an empty message")
			}
			return
		}
		if !utf8.ValidString(args) || !utf8.ValidString(env) {
			// argv and env are bytes, YAML is UTF-8: such a value prints
			// as U+FFFD and cannot round-trip (README, Decisions).
			return
		}
		out, err := cfg.YAML()
		if err != nil {
			t.Fatalf("YAML() of a loaded config: %v", err)
		}
		printed := filepath.Join(dir, "printed.yaml")
		if err := os.WriteFile(printed, out, 0o600); err != nil {
			t.Fatal(err)
		}
		// The admin token is never printed, so it comes back through env.
		tokenEnv := func(k string) (string, bool) {
			if k == EnvPrefix+"ADMIN_TOKEN" && cfg.Health.AdminToken != "" {
				return cfg.Health.AdminToken, true
			}
			return "", false
		}
		again, err := load([]string{"--config", printed}, tokenEnv, absent)
		if err != nil {
			t.Fatalf("the printed config does not load back: %v\nprinted:\n%s", err, out)
		}
		cfg.Source, again.Source = "", ""
		emptyToNil(reflect.ValueOf(cfg).Elem())
		emptyToNil(reflect.ValueOf(again).Elem())
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("the printed config loads back different:\nfirst:  %+v\nagain:  %+v\nprinted:\n%s", *cfg, *again, out)
		}
	})
}

// emptyToNil sets every empty slice and map under v to nil: YAML prints
// neither, and an empty list means the same as none.
func emptyToNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			emptyToNil(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				emptyToNil(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				emptyToNil(v.Index(i))
			}
		}
	}
}
