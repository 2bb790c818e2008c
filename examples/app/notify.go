package main

import (
	"fmt"
	"net"
	"os"
)

// notify sends one sd_notify(3) datagram, "READY=1\nSTATUS=serving" for
// example, to NOTIFY_SOCKET. Without NOTIFY_SOCKET it does nothing: the app
// runs fine outside a supervisor. A name starting with "@" is an abstract
// socket; Go's net package maps the "@" to the leading NUL byte itself
// (net/unixsock_posix.go), so the name is passed through unchanged. The
// kernel attaches our credentials because the receiver sets SO_PASSCRED.
func notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial NOTIFY_SOCKET %s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("send %q to NOTIFY_SOCKET %s: %w", state, name, err)
	}
	return nil
}
