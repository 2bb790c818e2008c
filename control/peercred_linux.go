package control

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred reads the connecting process's credentials as the kernel
// recorded them at connect(2) (SO_PEERCRED, unix(7)); they cannot be
// forged by the peer.
func peerCred(c net.Conn) (peer, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peer{}, fmt.Errorf("peer credentials of %T: not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return peer{}, fmt.Errorf("getsockopt SO_PEERCRED: %w", cerr)
	}
	return peer{pid: cred.Pid, uid: cred.Uid}, nil
}

// peerGone reports whether the peer of c shut down its sending side or
// closed c: unix(7) stream sockets report POLLRDHUP for both at once,
// while the reader may still have to drain data the peer sent before.
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
			return
		}
	})
	return gone
}
