package unixsock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// RemoveStale removes path if it is a unix socket nobody is bound to, and
// returns nil if path is then free (removed or never there). A live socket
// gives an error wrapping syscall.EADDRINUSE ("address already in use: a
// process accepts on PATH"), a file of another kind one wrapping
// ErrNotSocket; neither is touched. Safe for concurrent use; it keeps no
// state.
func RemoveStale(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is %w; refusing to remove it", path, ErrNotSocket)
	}
	// Non-blocking: a live listener with a full backlog answers EAGAIN at
	// once instead of holding the caller (unix(7)).
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		// Stale: the file outlived the socket bound to it.
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale socket %s: %w", path, err)
		}
		return nil
	case errors.Is(err, unix.ENOENT):
		return nil // removed since the Lstat
	case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EPROTOTYPE):
		// Accepted, backlog full, or a live socket of another type.
		return fmt.Errorf("%w: a process accepts on %s", unix.EADDRINUSE, path)
	default:
		return fmt.Errorf("probe %s: %w", path, err)
	}
}
