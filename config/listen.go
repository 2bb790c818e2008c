package config

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// sunPathMax is the usable length of sockaddr_un.sun_path on Linux (108
// bytes including the terminating NUL); bind(2) fails with EINVAL past it.
const sunPathMax = 107

// address is a parsed listener address.
type address struct {
	unix bool
	path string // unix: "/run/app.sock" or "@abstract"
	host string // tcp
	port int
}

const addressExample = `write it like ":8080", "127.0.0.1:8080", "[::1]:8080" or "unix:/run/app.sock"`

// parseAddress checks a listener address: TCP "host:port", ":port",
// "[::1]:port" with a numeric port, or "unix:/abs/path" / "unix:@abstract".
func parseAddress(s string) (address, error) {
	if rest, ok := strings.CutPrefix(s, "unix:"); ok {
		switch {
		case rest == "" || rest == "@":
			return address{}, fmt.Errorf("%q has no socket path; %s", s, addressExample)
		case !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "@"):
			return address{}, fmt.Errorf("%q is not an absolute path; write it like \"unix:/run/app.sock\"", s)
		case len(rest) > sunPathMax:
			return address{}, fmt.Errorf("%q is %d bytes long; a unix socket path may have at most %d", s, len(rest), sunPathMax)
		}
		if strings.HasPrefix(rest, "/") {
			// One file, however it is spelled: /x/./a.sock is /x/a.sock.
			rest = path.Clean(rest)
		}
		return address{unix: true, path: rest}, nil
	}
	if strings.HasPrefix(s, "=") {
		return address{}, fmt.Errorf("%q has an empty name before '='; write NAME=ADDR like \"https=:8443\", or the address alone", s)
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return address{}, fmt.Errorf("%q is not a listen address; %s", s, addressExample)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return address{}, fmt.Errorf("%q has port %q; the port must be a number 0-65535, like \":8080\"", s, portStr)
	}
	if !validHost(host) {
		return address{}, fmt.Errorf("%q has host %q, which is neither an IP address nor a host name; %s", s, host, addressExample)
	}
	return address{host: host, port: port}, nil
}

// validHost accepts "", an IP address (an IPv6 one with a %zone), or a DNS
// host name.
func validHost(h string) bool {
	if h == "" {
		return true
	}
	ip, _, _ := strings.Cut(h, "%")
	if net.ParseIP(ip) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ip is the host as an IP for comparisons: "localhost" is the loopback
// address it resolves to in a container (127.0.0.1; Go listens on the
// first address), names otherwise are nil.
func (a address) ip() net.IP {
	if strings.EqualFold(a.host, "localhost") {
		return net.IPv4(127, 0, 0, 1)
	}
	h, _, _ := strings.Cut(a.host, "%")
	return net.ParseIP(h)
}

// wildcard reports whether the TCP host binds every address.
func (a address) wildcard() bool {
	ip := a.ip()
	return a.host == "" || ip != nil && ip.IsUnspecified()
}

// sameHost reports whether two TCP hosts are one address however spelled:
// "localhost" and "127.0.0.1", "::ffff:127.0.0.1" and "127.0.0.1", a name
// in another case.
func (a address) sameHost(b address) bool {
	if strings.EqualFold(a.host, b.host) {
		return true
	}
	x, y := a.ip(), b.ip()
	return x != nil && y != nil && x.Equal(y)
}

// conflicts reports whether binding both addresses would fail with
// EADDRINUSE (or shadow one another). Port 0 never conflicts: the kernel
// picks a free port for each.
func (a address) conflicts(b address) bool {
	if a.unix || b.unix {
		return a.unix && b.unix && a.path == b.path
	}
	if a.port == 0 || a.port != b.port {
		return false
	}
	return a.sameHost(b) || a.wildcard() || b.wildcard()
}

// splitListen reads the flag/env form "name=address" or "address".
// The name part may not contain ':', '/' or '[' so that a unix path or an
// IPv6 address with an '=' in it is never mistaken for a name.
func splitListen(s string) Listener {
	s = strings.TrimSpace(s)
	if name, addr, ok := strings.Cut(s, "="); ok && name != "" && !strings.ContainsAny(name, ":/[") {
		return Listener{Name: name, Address: addr}
	}
	return Listener{Address: s}
}

// defaultListenerName derives a name from the address: "tcp-8080" or
// "unix-app.sock"; LISTEN_FDNAMES is colon-separated, so anything outside
// the name alphabet becomes '-'.
func defaultListenerName(addr string) string {
	a, err := parseAddress(addr)
	if err != nil {
		return "listener"
	}
	if !a.unix {
		return "tcp-" + strconv.Itoa(a.port)
	}
	base := path.Base(strings.TrimPrefix(a.path, "@"))
	b := []byte("unix-" + base)
	for i, c := range b {
		if !listenerNameChar(c) {
			b[i] = '-'
		}
	}
	return string(b)
}

func listenerNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func validListenerName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !listenerNameChar(s[i]) {
			return false
		}
	}
	return true
}
