package takeover

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// owned is one listener the init holds, as the rules need it.
type owned struct {
	addr   string     // as bound: "127.0.0.1:8080", "[::]:8080"
	ip     netip.Addr // unmapped; unspecified for a wildcard
	port   uint16
	v6     bool // an AF_INET6 socket (":P" and "[::]:P" are, dual stack)
	fd     int
	ino    uint64
	listen bool // this generation listened on it
}

func parseOwned(addr string) (ip netip.Addr, port uint16, ok bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return ap.Addr().Unmap(), ap.Port(), true
}

// sockaddr decodes the bind() argument of an IPv4 or IPv6 socket; ok is
// false for any other family (unix sockets pass through: see the README).
func sockaddr(b []byte) (netip.AddrPort, bool) {
	if len(b) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) < 8 {
			return netip.AddrPort{}, false
		}
		ip := netip.AddrFrom4([4]byte(b[4:8]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:4])), true
	case unix.AF_INET6:
		if len(b) < 24 {
			return netip.AddrPort{}, false
		}
		ip := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:4])), true
	}
	return netip.AddrPort{}, false
}

// covers says whether the app's bind of want (on a socket of the IPv6
// family when wantV6) may get the owned listener o. An app that made an
// IPv4 socket never gets an IPv6 one: it can break in ways nobody sees at
// bind time (nginx configured with "listen 8080;" closes every connection
// it accepts on an IPv6 socket). An IPv6 socket bound to the wildcard or to
// an IPv4-mapped address would have taken IPv4 connections, so it may get
// an IPv4 listener (Go's net.Listen("tcp", "0.0.0.0:P") makes exactly
// that socket). Within a family, a wildcard on either side takes in the
// other address (the user's --listen wins, narrower or wider); two
// specific addresses must be equal. Anything else is refused with a clear
// line: passed through, the app's own socket would work for one
// generation and break the next swap with EADDRINUSE.
func covers(o *owned, want netip.Addr, wantV6 bool) bool {
	switch {
	case o.v6 && !wantV6:
		return false
	case !o.v6 && wantV6 && !want.IsUnspecified() && !want.Is4():
		return false // a specific IPv6 address against an IPv4 listener
	case want.IsUnspecified() || o.ip.IsUnspecified():
		return true
	default:
		return o.ip == want
	}
}

func (o *owned) String() string { return o.addr }

func addrString(ap netip.AddrPort) string {
	return net.JoinHostPort(ap.Addr().String(), strconv.Itoa(int(ap.Port())))
}

// mismatch names both addresses and the fix.
func mismatch(app netip.AddrPort, appV6 bool, o *owned) string {
	family := func(v6 bool) string {
		if v6 {
			return "IPv6"
		}
		return "IPv4"
	}
	if appV6 != o.v6 {
		return fmt.Sprintf("the app binds %s (%s), but entrypoint owns port %d as %s (%s): a socket of another family can break the app, so the bind is refused with EADDRINUSE; make the families match: --listen %s for this app, or make it bind %s",
			addrString(app), family(appV6), app.Port(), o.addr, family(o.v6), wildcard(app, appV6), o.addr)
	}
	return fmt.Sprintf("the app binds %s, but entrypoint owns port %d as %s and the two do not overlap: refused with EADDRINUSE; listen on the address the app binds (--listen %s) or make the app bind %s",
		addrString(app), app.Port(), o.addr, addrString(app), o.addr)
}

// wildcard is the --listen that fits an app binding app: its own address,
// written so that graceful binds a socket of the same family.
func wildcard(app netip.AddrPort, v6 bool) string {
	if v6 && app.Addr().Is4() {
		// A v4-mapped address on an IPv6 socket.
		return net.JoinHostPort("::ffff:"+app.Addr().String(), strconv.Itoa(int(app.Port())))
	}
	if v6 && app.Addr().IsUnspecified() {
		return fmt.Sprintf(":%d", app.Port())
	}
	return addrString(app)
}
