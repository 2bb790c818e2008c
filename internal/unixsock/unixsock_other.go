//go:build !linux

package unixsock

import (
	"errors"
	"fmt"
)

// RemoveStale refuses on this system and touches nothing: see the package
// comment.
func RemoveStale(path string) error {
	return fmt.Errorf("remove stale socket %s: %w", path, errors.ErrUnsupported)
}
