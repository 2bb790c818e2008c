package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: the path exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by another process; is another entrypoint running?", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	return nil
}
