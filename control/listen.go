package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/entrypoint/entrypoint/internal/unixsock"
)

// Listen binds the control socket. A path starting with "@" is an abstract
// socket (no file, so it works on a read-only root filesystem; guarded by
// the peer-credential check alone). Otherwise the file is created with
// mode 0600; a stale socket left by a dead init is replaced, one that
// still answers or a file that is not a socket is an error.
func Listen(path string) (net.Listener, error) {
	path, err := Expand(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(path, "@") {
		if !abstractNames {
			// Elsewhere "@name" would be a file of that name in the
			// working directory, without the mode the path branch sets.
			return nil, fmt.Errorf("control socket %s: abstract socket names (@...) need Linux; give a socket path", path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("bind control socket %s: %w", path, err)
		}
		return l, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create control socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("bind control socket %s: %w", path, err)
	}
	// bind(2) applies the umask, and changing the umask is process-wide
	// (racy with every other goroutine): chmod right after instead. The
	// peer-credential check covers the moment in between.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict control socket %s to mode 0600: %w", path, err)
	}
	return l, nil
}

// removeStale clears the socket file a dead init left at path. A socket
// someone still serves, or a file of another kind, is an error and is left
// alone (internal/unixsock).
func removeStale(path string) error {
	err := unixsock.RemoveStale(path)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("control socket: %w; is another entrypoint running?", err)
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}
