package graceful

import (
	"slices"
	"testing"
)

func TestCommandEnvRules(t *testing.T) {
	base := []string{"PATH=/bin", "ENTRYPOINT_ADMIN_TOKEN=x", "ENTRYPOINT_LOG_LEVEL=debug", "NOTIFY_SOCKET=@outer", "LISTEN_FDS=2", "COLOUR=red", "HOME=/root"}
	got := commandEnv(base, map[string]string{"COLOUR": "blue", "A": "1"})
	want := []string{"PATH=/bin", "HOME=/root", "A=1", "COLOUR=blue"}
	if !slices.Equal(got, want) {
		t.Fatalf("commandEnv = %q, want %q", got, want)
	}
}
