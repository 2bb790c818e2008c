package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Issue 11 item 9: a missing or non-directory dir is a config error
// naming the field, not an exit 127 at start.
func TestAppDirMustBeADirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	cfg := writeYAML(t, "apps:\n- name: web\n  command: [/bin/true]\n  dir: "+missing+"\n")
	if msg := loadErr(t, []string{"--config", cfg}, envOf()); !strings.Contains(msg, "apps[0].dir") || !strings.Contains(msg, "no such file or directory") {
		t.Errorf("missing dir: %s", msg)
	}
	file := writeYAML(t, "")
	cfg = writeYAML(t, "apps:\n- name: web\n  command: [/bin/true]\n  dir: "+file+"\n")
	if msg := loadErr(t, []string{"--config", cfg}, envOf()); !strings.Contains(msg, "apps[0].dir") || !strings.Contains(msg, "is not a directory") {
		t.Errorf("file as dir: %s", msg)
	}
	cfg = writeYAML(t, "apps:\n- name: web\n  command: [/bin/true]\n  dir: "+t.TempDir()+"\n")
	mustLoad(t, []string{"--config", cfg}, envOf())
}

// Issue 11 item 10: one socket spelled two ways is caught by validate.
func TestDuplicateListenerAliases(t *testing.T) {
	for _, tc := range [][2]string{
		{"unix:/x/./a.sock", "unix:/x/a.sock"},
		{"unix:/x//a.sock", "unix:/x/y/../a.sock"},
		{"localhost:8080", "127.0.0.1:8080"},
		{"[::ffff:127.0.0.1]:8080", "127.0.0.1:8080"},
		{"[0:0:0:0:0:0:0:0]:8080", "127.0.0.1:8080"},
		{"LOCALHOST:8080", "localhost:8080"},
	} {
		msg := loadErr(t, []string{"--listen", tc[0], "--listen", tc[1], "--", "/app"}, envOf())
		if !strings.Contains(msg, "overlaps") {
			t.Errorf("%s and %s: %s", tc[0], tc[1], msg)
		}
	}
	mustLoad(t, []string{"--listen", "127.0.0.1:8080", "--listen", "127.0.0.2:8080", "--", "/app"}, envOf())
}

// Issue 11 item 11: "=:P", a watchdog too short to keep, a backlog out of
// range.
func TestOddValuesRejected(t *testing.T) {
	if msg := loadErr(t, []string{"--listen", "=:8080", "--", "/app"}, envOf()); !strings.Contains(msg, "empty name before '='") {
		t.Errorf("=:8080: %s", msg)
	}
	if msg := loadErr(t, []string{"--listen", "a=b:8080", "--listen", "x y:1", "--", "/app"}, envOf()); !strings.Contains(msg, `has host "x y"`) {
		t.Errorf("bad host: %s", msg)
	}
	if msg := loadErr(t, []string{"--watchdog", "500ns", "--", "/app"}, envOf()); !strings.Contains(msg, "--watchdog: 500ns is shorter than 1s") {
		t.Errorf("watchdog: %s", msg)
	}
	mustLoad(t, []string{"--watchdog", "1s", "--", "/app"}, envOf())
	cfg := writeYAML(t, "apps:\n- name: web\n  command: [/app]\n  listen: [{address: \":8080\", backlog: 99999999999}]\n")
	if msg := loadErr(t, []string{"--config", cfg}, envOf()); !strings.Contains(msg, "apps[0].listen[0].backlog: 99999999999 is larger than 65535") {
		t.Errorf("backlog: %s", msg)
	}
}

// Issue 11 item 13: what is read and echoed is bounded; a FIFO, a device
// or a directory is refused at once.
func TestConfigFileBounds(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{fifo: "a FIFO", "/dev/zero": "a character device", t.TempDir(): "a directory"} {
		if msg := loadErr(t, []string{"--config", path}, envOf()); !strings.Contains(msg, "not a regular file ("+kind+")") {
			t.Errorf("%s: %s", path, msg)
		}
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("logLevel: "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := loadErr(t, []string{"--config", big}, envOf()); !strings.Contains(msg, "larger than 1024 KiB") {
		t.Errorf("big file: %.300s", msg)
	}
	// A huge value in a file under the bound, in a flag, in env: every
	// problem line stays short and still ends with its fix.
	huge := strings.Repeat("y", 600<<10)
	cfg := writeYAML(t, "logLevel: "+huge+"\n")
	for _, msg := range []string{
		loadErr(t, []string{"--config", cfg, "--", "/app"}, envOf()),
		loadErr(t, []string{"--log-level", huge, "--", "/app"}, envOf()),
		loadErr(t, []string{"--", "/app"}, envOf("ENTRYPOINT_ADMIN", huge)),
	} {
		for _, line := range strings.Split(msg, "\n") {
			if len(line) > 2*maxEcho {
				t.Errorf("a problem line of %d bytes: %.200s", len(line), line)
			}
		}
		if !strings.Contains(msg, "bytes cut]") {
			t.Errorf("no cut marker: %.300s", msg)
		}
	}
}

// Issue 11 item 12: an ENTRYPOINT_* variable that is no setting is named
// in a warning with the closest real one; the legitimate non-settings are
// left alone.
func TestUnknownEnvWarns(t *testing.T) {
	got := UnknownEnv([]string{
		"ENTRYPOINT_DRAIN_TIMOUT=10s", "ENTRYPOINT_DRAIN_TIMEOUT=5s", "PATH=/bin",
		"ENTRYPOINT_GENERATION=3", "ENTRYPOINT_APP_PID=7", "ENTRYPOINT_INTERNAL_SHIM=/app",
		"ENTRYPOINT_ADMIN_TOKEN=secret", "ENTRYPOINT_CONFIG=/x", "ENTRYPOINT_ADMIN_TOKEN_FILE=/t",
		"ENTRYPOINT_ZZZZZZZZZZ=1",
	})
	want := []string{
		"ENTRYPOINT_DRAIN_TIMOUT is not a setting of entrypoint and is ignored; did you mean ENTRYPOINT_DRAIN_TIMEOUT?",
		"ENTRYPOINT_ZZZZZZZZZZ is not a setting of entrypoint and is ignored; run entrypoint -h for the settings and their variables",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnknownEnv =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
