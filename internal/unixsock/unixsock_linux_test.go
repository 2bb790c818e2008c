package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// staleSocket leaves a socket file whose socket is closed, as a dead init
// would.
func staleSocket(t *testing.T, network, path string) {
	t.Helper()
	switch network {
	case "unix":
		l, err := net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
	case "unixgram":
		c, err := net.ListenUnixgram(network, &net.UnixAddr{Name: path, Net: network})
		if err != nil {
			t.Fatal(err)
		}
		c.Close() // a datagram socket never unlinks its file
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket file: %v", err)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()

	t.Run("absent", func(t *testing.T) {
		if err := RemoveStale(filepath.Join(dir, "absent.sock")); err != nil {
			t.Errorf("absent path: %v", err)
		}
	})

	// graceful's and control's case: a stream socket a dead init left.
	for _, network := range []string{"unix", "unixgram"} {
		t.Run("stale "+network, func(t *testing.T) {
			p := filepath.Join(dir, network+"-stale.sock")
			staleSocket(t, network, p)
			if err := RemoveStale(p); err != nil {
				t.Fatalf("stale socket: %v", err)
			}
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale socket still there: %v", err)
			}
		})
	}

	t.Run("live stream", func(t *testing.T) {
		p := filepath.Join(dir, "live.sock")
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		live(t, p)
	})

	// A full backlog answers EAGAIN: alive, and the probe must not wait.
	t.Run("live stream, backlog full", func(t *testing.T) {
		p := filepath.Join(dir, "full.sock")
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: p}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Listen(fd, 0); err != nil {
			t.Fatal(err)
		}
		// Connect until the kernel answers EAGAIN: the backlog is full.
		full := false
		for range 64 {
			c, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(c)
			if err := syscall.Connect(c, &syscall.SockaddrUnix{Name: p}); errors.Is(err, syscall.EAGAIN) {
				full = true
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if !full {
			t.Fatal("the backlog never filled")
		}
		live(t, p)
	})

	t.Run("live datagram", func(t *testing.T) {
		p := filepath.Join(dir, "dgram.sock")
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		live(t, p)
	})

	// Never removed, whatever they are: not sockets.
	reg := filepath.Join(dir, "data")
	if err := os.WriteFile(reg, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "target.sock")
	staleSocket(t, "unix", stale)
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(stale, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{reg, dir, link} {
		t.Run("not a socket "+filepath.Base(p), func(t *testing.T) {
			err := RemoveStale(p)
			if !errors.Is(err, ErrNotSocket) || !strings.Contains(err.Error(), "refusing to remove it") {
				t.Errorf("RemoveStale(%s) = %v, want ErrNotSocket", p, err)
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s was removed: %v", p, err)
			}
		})
	}
	if b, _ := os.ReadFile(reg); string(b) != "keep" {
		t.Errorf("regular file changed: %q", b)
	}
}

func live(t *testing.T, p string) {
	t.Helper()
	err := RemoveStale(p)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "address already in use: a process accepts on "+p) {
		t.Errorf("RemoveStale on a live socket = %v, want EADDRINUSE naming the path", err)
	}
	if _, err := os.Lstat(p); err != nil {
		t.Errorf("live socket removed: %v", err)
	}
}
