package takeover

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		owned   string
		ownedV6 bool
		app     string
		want    bool
	}{
		{"0.0.0.0:80", false, "0.0.0.0:80", true},
		{"0.0.0.0:80", false, "127.0.0.1:80", true},
		{"127.0.0.1:80", false, "0.0.0.0:80", true},
		{"127.0.0.1:80", false, "127.0.0.1:80", true},
		{"[::]:80", true, "[::]:80", true},
		{"[::]:80", true, "[::1]:80", true},
		{"[::1]:80", true, "[::]:80", true},
		{"[::]:80", true, "[::ffff:127.0.0.1]:80", true}, // mapped, on an IPv6 socket
		// An IPv4 socket never gets an IPv6 listener.
		{"[::]:80", true, "0.0.0.0:80", false},
		{"[::]:80", true, "127.0.0.1:80", false},
		// An IPv6 socket that would have taken IPv4 may get an IPv4
		// listener (Go's "0.0.0.0:P" is such a socket); a specific
		// IPv6 address may not.
		{"0.0.0.0:80", false, "[::]:80", true},
		{"127.0.0.1:80", false, "[::]:80", true},
		{"127.0.0.1:80", false, "[::ffff:127.0.0.1]:80", true},
		{"127.0.0.1:80", false, "[::ffff:127.0.0.2]:80", false},
		{"0.0.0.0:80", false, "[::1]:80", false},
		// Two specific addresses that differ.
		{"127.0.0.1:80", false, "127.0.0.2:80", false},
		{"[::1]:80", true, "[::2]:80", false},
	} {
		ip, port, ok := parseOwned(c.owned)
		if !ok {
			t.Fatalf("parseOwned(%q)", c.owned)
		}
		o := &owned{addr: c.owned, ip: ip, port: port, v6: c.ownedV6}
		ap := netip.MustParseAddrPort(c.app)
		if got := covers(o, ap.Addr().Unmap(), ap.Addr().Is6()); got != c.want {
			t.Errorf("owned %s (v6 %v), app binds %s: covers %v, want %v", c.owned, c.ownedV6, c.app, got, c.want)
		}
	}
}

func TestSockaddr(t *testing.T) {
	v4 := make([]byte, 16)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 8080)
	copy(v4[4:], []byte{127, 0, 0, 1})
	if ap, ok := sockaddr(v4); !ok || ap.String() != "127.0.0.1:8080" {
		t.Fatalf("v4: %v %v", ap, ok)
	}
	v6 := make([]byte, 28)
	binary.NativeEndian.PutUint16(v6, unix.AF_INET6)
	binary.BigEndian.PutUint16(v6[2:], 443)
	mapped := netip.MustParseAddr("::ffff:10.1.2.3").As16()
	copy(v6[8:], mapped[:])
	if ap, ok := sockaddr(v6); !ok || ap.String() != "10.1.2.3:443" {
		t.Fatalf("v6 mapped: %v %v", ap, ok)
	}
	for _, b := range [][]byte{nil, v4[:6], v6[:20], {1, 0, 0, 0}} {
		if _, ok := sockaddr(b); ok {
			t.Fatalf("sockaddr(%v) accepted", b)
		}
	}
}

func TestMismatchNamesBothAndTheFix(t *testing.T) {
	ip, port, _ := parseOwned("127.0.0.1:8080")
	msg := mismatch(netip.MustParseAddrPort("127.0.0.2:8080"), false, &owned{addr: "127.0.0.1:8080", ip: ip, port: port})
	for _, want := range []string{"binds 127.0.0.2:8080", "as 127.0.0.1:8080", "--listen 127.0.0.2:8080", "bind 127.0.0.1:8080"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func TestMismatchOfFamilies(t *testing.T) {
	ip, port, _ := parseOwned("[::]:8080")
	msg := mismatch(netip.MustParseAddrPort("0.0.0.0:8080"), false, &owned{addr: "[::]:8080", ip: ip, port: port, v6: true})
	for _, want := range []string{"binds 0.0.0.0:8080 (IPv4)", "as [::]:8080 (IPv6)", "--listen 0.0.0.0:8080"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	msg = mismatch(netip.MustParseAddrPort("[::]:8080"), true, &owned{addr: "0.0.0.0:8080", port: port})
	if !strings.Contains(msg, "--listen :8080") {
		t.Errorf("%q lacks --listen :8080", msg)
	}
}

func TestRefusedSaysWhy(t *testing.T) {
	r := &Refused{Step: "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)", Errno: syscall.EBUSY}
	if !strings.Contains(r.Error(), "another seccomp listener") {
		t.Fatal(r.Error())
	}
}

// On this machine (Linux >= 5.9, amd64) the kernel has what the takeover
// needs; CI runs here too.
func TestCheckOnThisKernel(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if major, minor, ok := kernelVersion(); !ok || major < 5 {
		t.Fatalf("kernelVersion: %d.%d %v", major, minor, ok)
	}
}
