package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

var (
	durationType = reflect.TypeFor[Duration]()
	signalType   = reflect.TypeFor[Signal]()
	listenerType = reflect.TypeFor[Listener]()
)

// decodeFile reads the YAML file into cfg. Instead of stopping at the first
// error as yaml.UnmarshalStrict does, it walks the document against the
// Config type first and reports every unknown key and badly typed value
// with its path; then it drops those and decodes the rest strictly, so the
// remaining checks still run.
func decodeFile(file string, data []byte, cfg *Config, p *problems) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		// One problem per line: fold the YAML library's multi-line list.
		p.add(file, "not valid YAML: %s", strings.Join(strings.Fields(err.Error()), " "))
		p.fileBroken = true
		return
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		p.add(file, "not valid YAML: %v", err)
		p.fileBroken = true
		return
	}
	if tree == nil {
		return // an empty file is an empty config
	}
	if _, ok := tree.(map[string]any); !ok {
		p.add(file, "the file must be a mapping of keys like \"apps:\" and \"logLevel:\", not %s", describe(tree))
		p.fileBroken = true
		return
	}
	w := walker{file: file, p: p}
	tree, _ = w.walk("", reflect.TypeFor[Config](), tree)
	clean, err := json.Marshal(tree)
	if err == nil {
		d := json.NewDecoder(bytes.NewReader(clean))
		d.DisallowUnknownFields()
		err = d.Decode(cfg)
	}
	if err != nil {
		// The walk should have caught it; report rather than lose it.
		p.add(file, "%v", err)
	}
}

type walker struct {
	file string
	p    *problems
}

func (w *walker) fail(path, format string, args ...any) {
	w.p.add(w.file+": "+path, format, args...)
	w.p.bad[path] = true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk checks v against t and returns the value to decode; ok is false
// when v was reported and must be dropped.
func (w *walker) walk(path string, t reflect.Type, v any) (any, bool) {
	if path != "" {
		w.p.fromFile[path] = true
	}
	if v == nil {
		return nil, true // null leaves the zero value, as json does
	}
	switch t {
	case durationType:
		switch x := v.(type) {
		case string:
			if _, err := parseDuration(x); err != nil {
				w.fail(path, "%v", err)
				return nil, false
			}
			return x, true
		case json.Number:
			f, err := x.Float64()
			if err == nil {
				_, err = secondsDuration(f)
			}
			if err != nil {
				w.fail(path, "%s is not a duration; write it like \"30s\" or \"1m30s\"", x)
				return nil, false
			}
			return x, true
		}
		w.fail(path, "%s is not a duration; write it like \"30s\" or \"1m30s\"", describe(v))
		return nil, false
	case signalType:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			s = x.String()
		default:
			w.fail(path, "%s is not a signal; write it like \"SIGTERM\" or \"15\"", describe(v))
			return nil, false
		}
		if _, err := ParseSignal(s); err != nil {
			w.fail(path, "%v", err)
			return nil, false
		}
		return s, true
	case listenerType:
		// The short form of the flags, ":8080" or "https=:8443", is
		// allowed in the file too.
		if s, ok := v.(string); ok {
			l := splitListen(s)
			m := map[string]any{"address": l.Address}
			if l.Name != "" {
				m["name"] = l.Name
			}
			return m, true
		}
	}

	switch t.Kind() {
	case reflect.Struct:
		return w.walkStruct(path, t, v)
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			if s, isStr := v.(string); isStr && t.Elem() == listenerType {
				list = []any{s}
			} else {
				w.fail(path, "%s", listHint(path, t, v))
				return nil, false
			}
		}
		for i, item := range list {
			var ok bool
			list[i], ok = w.walk(fmt.Sprintf("%s[%d]", path, i), t.Elem(), item)
			if !ok {
				list[i] = nil
			}
		}
		return list, true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			w.fail(path, "%s is not a mapping; write it like {KEY: value}", describe(v))
			return nil, false
		}
		for _, k := range sortedKeys(m) {
			item := m[k]
			kp := join(path, k)
			if t.Key() == signalType {
				if _, err := ParseSignal(k); err != nil {
					w.fail(kp, "%v", err)
					delete(m, k)
					continue
				}
			} else if k == "" {
				w.fail(kp, "empty key; give it a name")
				delete(m, k)
				continue
			}
			var ok bool
			if m[k], ok = w.walk(kp, t.Elem(), item); !ok {
				delete(m, k)
			}
		}
		return m, true
	case reflect.String:
		switch v.(type) {
		case string:
		case []any, map[string]any:
			w.fail(path, "%s is not a string", describe(v))
			return nil, false
		case bool:
			w.fail(path, "%v is not a string; YAML reads an unquoted y, yes, on, n, no or off as a boolean, so quote the value", v)
			return nil, false
		default:
			w.fail(path, "%s is not a string; quote it: \"%v\"", describe(v), v)
			return nil, false
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.fail(path, "%s is not a boolean; write true or false without quotes", describe(v))
			return nil, false
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if ok {
			_, err := n.Int64()
			ok = err == nil
		}
		if !ok {
			w.fail(path, "%s is not a whole number; write it like 5", describe(v))
			return nil, false
		}
	}
	return v, true
}

func (w *walker) walkStruct(path string, t reflect.Type, v any) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		w.fail(path, "%s is not a mapping; write it as key: value lines", describe(v))
		return nil, false
	}
	fields := map[string]reflect.StructField{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
		names = append(names, name)
	}
	for _, k := range sortedKeys(m) {
		item := m[k]
		kp := join(path, k)
		f, ok := fields[k]
		if !ok {
			w.fail(kp, "unknown field; %s", unknownHint(k, t, names))
			delete(m, k)
			continue
		}
		var good bool
		if m[k], good = w.walk(kp, f.Type, item); !good {
			delete(m, k)
		}
	}
	return m, true
}

func unknownHint(key string, t reflect.Type, names []string) string {
	if t == reflect.TypeFor[Health]() && strings.EqualFold(key, "adminToken") {
		return "put the token in a file named by adminTokenFile, or in ENTRYPOINT_ADMIN_TOKEN, never in the config file"
	}
	if s := suggest(key, names); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return "valid keys here: " + strings.Join(sorted, ", ")
}

func listHint(path string, t reflect.Type, v any) string {
	if s, ok := v.(string); ok && t.Elem().Kind() == reflect.String {
		return fmt.Sprintf("%s is not a list; write it as a list, one item per argument, like [%s]",
			describe(v), quoteFields(s))
	}
	return fmt.Sprintf("%s is not a list; write it like [a, b] or as \"- item\" lines", describe(v))
}

func quoteFields(s string) string {
	f := strings.Fields(s)
	for i := range f {
		f[i] = fmt.Sprintf("%q", f[i])
	}
	return strings.Join(f, ", ")
}

// sortedKeys gives map keys in order, so messages come out the same way
// every run.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describe names a decoded YAML value for a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return fmt.Sprintf("%v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%v", v)
}
