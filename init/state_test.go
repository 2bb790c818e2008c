package supervisor

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/entrypoint/entrypoint/status"
)

// The diagram in doc.go lists exactly the moves next() allows.
func TestStateDiagram(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[status.State][]status.State{}
	for _, line := range strings.Split(string(b), "\n") {
		from, to, ok := strings.Cut(strings.TrimPrefix(line, "//\t"), "->")
		if !ok || !strings.HasPrefix(line, "//\t") {
			continue
		}
		var edges []status.State
		for _, f := range strings.Fields(to) {
			edges = append(edges, status.State(f))
		}
		doc[status.State(strings.TrimSpace(from))] = edges
	}
	if len(doc) != len(states()) {
		t.Errorf("doc.go lists %d states, the code has %d", len(doc), len(states()))
	}
	for _, st := range states() {
		got, want := doc[st], next(st)
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: doc.go says -> %v, next() says -> %v", st, got, want)
		}
	}
}
