package graceful

import (
	"os"
	"testing"
)

// ExecShimWithImage is an ExecShim whose native image is a file the kernel
// refuses to execute (no execute permission), as a noexec memfd policy
// would: every start must fall back to the Go shim.
func ExecShimWithImage(t *testing.T, onFallback func(error)) *ExecShim {
	f, err := os.CreateTemp(t.TempDir(), "not-executable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &ExecShim{OnFallback: onFallback, opened: true, img: f}
}

// RefusedByPolicy is refusedByPolicy.
var RefusedByPolicy = refusedByPolicy
