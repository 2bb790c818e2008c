package config

import (
	"fmt"
	"sort"
	"strings"
)

// handedEnv lists ENTRYPOINT_* variables that are not settings but that an
// init may legitimately find in its environment: the ones entrypoint hands
// to the commands it runs (an entrypoint started by another one gets
// them).
func handedEnv() []string { return []string{"ENTRYPOINT_GENERATION", "ENTRYPOINT_APP_PID"} }

// internalEnvPrefix marks entrypoint's own plumbing (the exec shim's).
const internalEnvPrefix = EnvPrefix + "INTERNAL_"

// UnknownEnv returns one warning for every ENTRYPOINT_* variable in
// environ ("KEY=value" pairs, as os.Environ gives) that is not a setting,
// naming the closest one: a typo like ENTRYPOINT_DRAIN_TIMOUT must not be
// silently ignored while the YAML file rejects unknown keys. Warnings come
// sorted by name. Values are never repeated (one may be a token).
func UnknownEnv(environ []string) []string {
	known := map[string]bool{}
	var names []string
	for _, o := range options() {
		known[o.env()] = true
		names = append(names, o.env())
	}
	for _, n := range handedEnv() {
		known[n] = true
	}
	var warnings []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, EnvPrefix) || known[k] || strings.HasPrefix(k, internalEnvPrefix) {
			continue
		}
		hint := "run entrypoint -h for the settings and their variables"
		if s := suggest(k, names); s != "" {
			hint = "did you mean " + s + "?"
		}
		warnings = append(warnings, fmt.Sprintf("%s is not a setting of entrypoint and is ignored; %s", clip(k), hint))
	}
	sort.Strings(warnings)
	return warnings
}
