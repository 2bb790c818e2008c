package status

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib keeps status a leaf: health, control and the CLI
// import it to build on any OS without the supervisor (issue 14), which
// holds only while status itself imports nothing outside the standard
// library.
func TestImportsOnlyStdlib(t *testing.T) {
	// go test puts its own go command first on PATH.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/entrypoint/entrypoint/status" {
			t.Errorf("status imports %s; it must import only the standard library", p)
		}
	}
}
