//go:build !linux

package control

import (
	"errors"
	"net"
)

// errNoPeerCred is why the server refuses every caller off Linux: the
// credential check (SO_PEERCRED) is the control socket's only guard for
// abstract names and its uid check for paths, and it is Linux-only here.
var errNoPeerCred = errors.New("control: peer credentials (SO_PEERCRED) need Linux")

// peerCred fails: without a trusted peer uid the server must refuse.
func peerCred(net.Conn) (peer, error) { return peer{}, errNoPeerCred }

// peerGone reports false: a hang-up is then noticed by the watcher's
// read alone, as before the start check.
func peerGone(net.Conn) bool { return false }
