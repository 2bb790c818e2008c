package config

import (
	"fmt"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// envconfigPrefix is EnvPrefix as envconfig wants it: it adds the "_".
const envconfigPrefix = "ENTRYPOINT"

// envValue is one ENTRYPOINT_* variable as written. Its Decode never
// fails, so envconfig.Process never stops at a bad value: the option's
// own parser (the one its flag uses) judges it afterwards, and every bad
// value is reported together (rawFlag does the same for flags).
type envValue struct {
	val string
	set bool
}

// Decode implements envconfig.Decoder.
func (v *envValue) Decode(s string) error {
	v.val, v.set = s, true
	return nil
}

var envValueType = reflect.TypeFor[envValue]()

// envSpec is the env layer's envconfig specification: a pointer to a
// struct with one envValue field per option, in table order. Each field is
// named after its variable without the prefix (DRAIN_TIMEOUT, a valid Go
// identifier), so envconfig's key is exactly ENTRYPOINT_DRAIN_TIMEOUT. No
// `envconfig:"..."` tag is set on purpose: envconfig also reads a tagged
// field's unprefixed name (DRAIN_TIMEOUT, NAME, CONFIG), which would pick
// up variables meant for the app. The struct is built from the option
// table rather than written out, so the flags, the env and the reference
// cannot drift apart; the `option` tag names the flag.
func envSpec(opts []option) reflect.Value {
	fields := make([]reflect.StructField, len(opts))
	for i, o := range opts {
		fields[i] = reflect.StructField{
			Name: strings.TrimPrefix(o.env(), EnvPrefix),
			Type: envValueType,
			Tag:  reflect.StructTag(fmt.Sprintf("option:%q", o.name)),
		}
	}
	return reflect.New(reflect.StructOf(fields))
}

// readEnv returns the env layer's raw values, index for index with opts.
// A nil getenv means the process environment, read by envconfig.Process;
// tests pass their own so they never touch it, and a test checks that
// both ways read the same (TestEnvProcessMatchesGetenv).
func readEnv(opts []option, getenv func(string) (string, bool)) ([]envValue, error) {
	spec := envSpec(opts)
	if getenv == nil {
		if err := envconfig.Process(envconfigPrefix, spec.Interface()); err != nil {
			return nil, fmt.Errorf("read the %s* environment: %w", EnvPrefix, err)
		}
	} else {
		for i := range opts {
			if v, ok := getenv(opts[i].env()); ok {
				_ = spec.Elem().Field(i).Addr().Interface().(*envValue).Decode(v)
			}
		}
	}
	vals := make([]envValue, len(opts))
	for i := range opts {
		vals[i] = spec.Elem().Field(i).Interface().(envValue)
	}
	return vals, nil
}

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
//
// They are warnings, not errors, and so not envconfig.CheckDisallowed's
// refusal: Kubernetes gives every pod of a namespace ENTRYPOINT_SERVICE_HOST,
// ENTRYPOINT_PORT, ... when a Service there is named "entrypoint" (the
// chart's default name) or "entrypoint-...", and an init that refused to
// start for them would take the namespace's pods down with it. Those
// service links, recognised by name and value, get no warning either.
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
	var links *serviceLinks
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, EnvPrefix) || known[k] || strings.HasPrefix(k, internalEnvPrefix) {
			continue
		}
		if links == nil {
			links = newServiceLinks()
		}
		if links.is(kv) {
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

// serviceLinks holds the patterns of Kubernetes' service link variables:
// the names it sets for every Service of a namespace (enableServiceLinks,
// on by default): for a Service "entrypoint-web",
// ENTRYPOINT_WEB_SERVICE_HOST=10.0.0.7, ENTRYPOINT_WEB_SERVICE_PORT[_NAME]=80,
// ENTRYPOINT_WEB_PORT=tcp://10.0.0.7:80 and
// ENTRYPOINT_WEB_PORT_80_TCP[_PROTO|_PORT|_ADDR] (submatch 1 of name says
// which kind, and so which value to expect), and the value of ..._PORT and
// ..._PORT_80_TCP (url).
//
// They are compiled once per UnknownEnv call that meets an unknown
// ENTRYPOINT_* variable, not in package variables: a package-level regexp
// would cost every start of the binary its compilation (issue 13).
type serviceLinks struct{ name, url *regexp.Regexp }

func newServiceLinks() *serviceLinks {
	return &serviceLinks{
		name: regexp.MustCompile(`^[A-Z0-9_]+?_(SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT|PORT_[0-9]+_(?:TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$`),
		url:  regexp.MustCompile(`^(tcp|udp|sctp)://[0-9a-fA-F.:\[\]]+:[0-9]+$`),
	}
}

// is reports whether kv is a Kubernetes service link variable: its name
// has one of their shapes and its value the shape that name gets, so a
// mistyped setting such as ENTRYPOINT_HEALTH_PORT=9090 is still warned
// about.
func (l *serviceLinks) is(kv string) bool {
	k, v, _ := strings.Cut(kv, "=")
	m := l.name.FindStringSubmatch(k)
	if m == nil {
		return false
	}
	isPort := func(s string) bool { n, err := strconv.Atoi(s); return err == nil && n > 0 && n < 65536 }
	switch kind, suffix := m[1], m[2]; {
	case kind == "SERVICE_HOST" || suffix == "_ADDR":
		return net.ParseIP(v) != nil
	case strings.HasPrefix(kind, "SERVICE_PORT") || suffix == "_PORT":
		return isPort(v)
	case suffix == "_PROTO":
		return v == "tcp" || v == "udp" || v == "sctp"
	default: // PORT, PORT_80_TCP
		return l.url.MatchString(v)
	}
}
