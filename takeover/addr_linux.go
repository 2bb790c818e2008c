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
	dual   bool // an IPv6 wildcard that also accepts IPv4
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

// covers says whether the owned listener o answers connections to an
// address the app asked for, or the app's address takes in o's: then the
// takeover gives the app the port the user configured. Two specific
// addresses that differ, or families that do not meet (the app's [::1]
// against an IPv4 listener), do not overlap: the kernel would let both
// binds succeed, and the app's own socket would break the next swap with
// EADDRINUSE, so the bind is refused with a clear line instead.
func covers(o *owned, want netip.Addr, wantV6 bool) bool {
	switch {
	case want.IsUnspecified():
		// 0.0.0.0 takes in every IPv4 listener; [::] (dual stack unless
		// the app set IPV6_V6ONLY, which we cannot see before bind) every
		// listener.
		return wantV6 || o.ip.Is4() || o.dual
	case o.ip.IsUnspecified():
		if want.Is4() {
			return o.ip.Is4() || o.dual
		}
		return o.ip.Is6()
	default:
		return o.ip == want
	}
}

func (o *owned) String() string { return o.addr }

func addrString(ap netip.AddrPort) string {
	return net.JoinHostPort(ap.Addr().String(), strconv.Itoa(int(ap.Port())))
}

// describe names an owned listener and the fix for a mismatch.
func mismatch(app netip.AddrPort, o *owned) string {
	return fmt.Sprintf("the app binds %s, but entrypoint owns port %d as %s and the two do not overlap: refused with EADDRINUSE; listen on the address the app binds (--listen %s) or make the app bind %s",
		addrString(app), app.Port(), o.addr, addrString(app), o.addr)
}
