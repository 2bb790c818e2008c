package config

import (
	"errors"
	"fmt"
	"strings"
)

// problems collects every configuration error so the user fixes them in
// one round, and labels each with where the value came from.
type problems struct {
	errs []error
	file string // the YAML file read, if any
	// origin maps a field path ("apps[0].listen") to the flag or env var
	// that set it last.
	origin map[string]string
	// fromFile holds every field path present in the file.
	fromFile map[string]bool
	// bad holds paths that already failed to parse; validation stays quiet
	// about them and everything under or above them, so one mistake gives
	// one message.
	bad map[string]bool
	// fileBroken: the file could not be read as a whole, so "no apps" is
	// a consequence, not a second problem.
	fileBroken bool
}

func newProblems() *problems {
	return &problems{origin: map[string]string{}, fromFile: map[string]bool{}, bad: map[string]bool{}}
}

// add records a problem under an explicit label.
func (p *problems) add(label, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", clip(label), clip(fmt.Sprintf(format, args...))))
}

// at records a problem with a field path, labelled by its origin.
func (p *problems) at(path, format string, args ...any) {
	for b := range p.bad {
		if related(b, path) {
			return
		}
	}
	p.add(p.label(path), format, args...)
}

// label names where the value at path came from: "--listen",
// "ENTRYPOINT_LISTEN", "/etc/entrypoint/config.yaml: apps[1].listen[0]",
// or the bare path for a default.
func (p *problems) label(path string) string {
	for q := path; q != ""; q = parent(q) {
		if o, ok := p.origin[q]; ok {
			return o
		}
	}
	for q := path; q != ""; q = parent(q) {
		if p.fromFile[q] {
			return p.file + ": " + path
		}
	}
	return path
}

func (p *problems) err() error {
	return errors.Join(p.errs...)
}

// parent strips the last ".key" or "[n]" from a field path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// related reports whether one path is the other or contains it.
func related(a, b string) bool {
	return within(a, b) || within(b, a)
}

func within(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// suggest returns the candidate closest to s when it is close enough to be
// a typo (case differences, or up to two edits).
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
