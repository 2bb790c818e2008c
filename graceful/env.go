package graceful

import (
	"os"
	"slices"
	"strings"

	"github.com/entrypoint/entrypoint/config"
)

// CommandEnv is the environment of every command the init runs for an app:
// its generations, its validate command and its exec readiness gate
// (DESIGN rule 13). It is the init's own environment without the init's
// ENTRYPOINT_* configuration (the admin token among it) and without the
// variables Spawn hands over per generation (a NOTIFY_SOCKET the init got
// from its own supervisor is not the app's), plus extra, the app's env,
// which wins over the init's. Keys of extra come out sorted, so the result
// is the same every time.
func CommandEnv(extra map[string]string) []string {
	return commandEnv(os.Environ(), extra)
}

func commandEnv(base []string, extra map[string]string) []string {
	handed := handedVars()
	env := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, config.EnvPrefix) || slices.Contains(handed, k) {
			continue
		}
		if _, ok := extra[k]; ok {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}
