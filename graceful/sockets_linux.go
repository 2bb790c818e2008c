package graceful

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/internal/steer"
	"github.com/entrypoint/entrypoint/internal/unixsock"
)

// Sockets are the listening sockets the init owns, in config order. They
// are bound once and live as long as the init; Close them only at exit.
type Sockets struct {
	// files are the sockets in config order. In the Sockets Bind returns,
	// a steered listener's entry is nil: its file is its group's target
	// at the time of asking. In a generation's (Current, Next) every
	// entry is set.
	files []*os.File
	// groups are the SO_REUSEPORT groups of steered listeners, nil for
	// the others (unix listeners, or Bind without steering).
	groups  []*steer.Group
	gen     bool // a generation's sockets, from Current or Next
	names   []string
	addrs   []string
	starter []string // SERVER_STARTER_PORT keys, without "=fd"
	// unlink are the socket files we created, removed by Close if they are
	// still ours.
	unlink []socketFile
}

type socketFile struct {
	path     string
	dev, ino uint64
}

// Bind binds and listens on every listener, in order. On error nothing stays
// bound, and the error names the address: "bind :8080: address already in
// use".
func Bind(ls []config.Listener) (*Sockets, error) {
	return bind(ls, false)
}

// BindSteered is Bind for an app under the bind takeover: each TCP
// listener is the first socket of a SO_REUSEPORT group, so that a hot swap
// can give the new generation a socket of its own (Next) and steer new
// connections to it once it is ready (Steer). Unix listeners are bound as
// by Bind and shared by every generation. Only for the takeover, which
// makes sure the app's own bind() of the address never joins the group.
func BindSteered(ls []config.Listener) (*Sockets, error) {
	return bind(ls, true)
}

func bind(ls []config.Listener, steered bool) (*Sockets, error) {
	s := &Sockets{}
	for _, l := range ls {
		if err := s.bind(l, steered); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("bind %s: %w", l.Address, err)
		}
	}
	return s, nil
}

// Files returns the listening sockets in config order; a steered
// listener's is the socket that gets new connections now. They are
// blocking fds; calling Fd on them is harmless (it would only switch a
// non-blocking fd to blocking). The caller must not close them.
func (s *Sockets) Files() []*os.File {
	out := make([]*os.File, len(s.files))
	for i := range s.files {
		out[i] = s.file(i)
	}
	return out
}

func (s *Sockets) file(i int) *os.File {
	if s.files[i] == nil {
		return s.groups[i].Target()
	}
	return s.files[i]
}

// Steered reports whether any listener is steered (BindSteered).
func (s *Sockets) Steered() bool {
	return s != nil && slices.ContainsFunc(s.groups, func(g *steer.Group) bool { return g != nil })
}

// Current returns the sockets for a generation that starts with nobody
// else serving (the first start, a full restart, a restart after an
// exit): for a steered listener the socket new connections go to now,
// the one the previous generation had, with what waits in its accept
// queue. Give them back with Release once the generation is gone.
func (s *Sockets) Current() (*Sockets, error) {
	return s.generation(func(g *steer.Group) (*os.File, error) { return g.Hold(g.Target()) })
}

// Next returns the sockets for a generation started by a hot swap: for a
// steered listener a socket of its own in the listener's group, which gets
// no connection until Steer; unix listeners are shared. Give them back
// with Release once the generation is gone (or was rolled back).
func (s *Sockets) Next() (*Sockets, error) {
	return s.generation((*steer.Group).Add)
}

func (s *Sockets) generation(take func(*steer.Group) (*os.File, error)) (*Sockets, error) {
	if !s.Steered() {
		return s, nil // shared by every generation
	}
	v := *s
	v.gen, v.unlink = true, nil
	v.files = slices.Clone(s.files)
	for i, g := range s.groups {
		if g == nil {
			continue
		}
		f, err := take(g)
		if err != nil {
			v.Release()
			return nil, fmt.Errorf("socket for %s: %w", s.addrs[i], err)
		}
		v.files[i] = f
	}
	return &v, nil
}

// Steer sends the new connections of every steered listener to this
// generation's sockets. Nil-safe, as are the other methods a generation
// calls.
func (s *Sockets) Steer() error {
	if s == nil {
		return nil
	}
	for i, g := range s.groups {
		if g != nil && s.files[i] != nil {
			if err := g.Steer(s.files[i]); err != nil {
				return fmt.Errorf("steer %s: %w", s.addrs[i], err)
			}
		}
	}
	return nil
}

// WaitAccepted waits until the accept queues of this generation's steered
// sockets are empty (after Steer elsewhere nothing new arrives there) or
// ctx ends, and says whether they emptied; at once true without steered
// sockets.
func (s *Sockets) WaitAccepted(ctx context.Context) bool {
	if s == nil {
		return true
	}
	var fs []*os.File
	for i, g := range s.groups {
		if g != nil && s.files[i] != nil {
			fs = append(fs, s.files[i])
		}
	}
	return len(fs) == 0 || steer.WaitEmpty(ctx, fs)
}

// Release gives a generation's steered sockets back, once no process of
// it can accept on them any more. Idempotent; a no-op for Bind's own
// Sockets.
func (s *Sockets) Release() {
	if s == nil || !s.gen {
		return
	}
	for i, g := range s.groups {
		if g != nil && s.files[i] != nil {
			g.Release(s.files[i])
			s.files[i] = nil
		}
	}
}

// Names returns the LISTEN_FDNAMES names in config order.
func (s *Sockets) Names() []string { return append([]string(nil), s.names...) }

// Addrs returns the bound addresses in config order, with ":0" resolved:
// "127.0.0.1:43211", "[::]:8080", "unix:/run/app.sock", "unix:@name".
func (s *Sockets) Addrs() []string { return append([]string(nil), s.addrs...) }

// Len is the number of sockets.
func (s *Sockets) Len() int {
	if s == nil {
		return 0
	}
	return len(s.files)
}

// Close closes every socket, every socket of every steered listener's
// group, and removes the unix socket files Bind created, if they are still
// the same files. Only for the end of the init, on the Sockets Bind
// returned: a closed socket refuses connections.
func (s *Sockets) Close() error {
	if s.gen {
		return errors.New("graceful: Close of a generation's sockets; Release them")
	}
	var errs []error
	for i, f := range s.files {
		if s.groups[i] != nil {
			errs = append(errs, s.groups[i].Close())
			continue
		}
		if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, u := range s.unlink {
		var st unix.Stat_t
		if unix.Lstat(u.path, &st) == nil && st.Dev == u.dev && st.Ino == u.ino {
			if err := os.Remove(u.path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.unlink = nil
	return errors.Join(errs...)
}

func (s *Sockets) bind(l config.Listener, steered bool) error {
	name := l.Name
	if name == "" {
		name = "http"
		if strings.HasPrefix(l.Address, "unix:") {
			name = "unix"
		}
	}
	if err := checkName(name); err != nil {
		return err
	}
	backlog := l.Backlog
	if backlog <= 0 {
		backlog = somaxconn()
	}
	var (
		fd      int
		addr    string
		starter string
		err     error
	)
	if path, ok := strings.CutPrefix(l.Address, "unix:"); ok {
		fd, err = s.bindUnix(path, l, backlog)
		addr, starter = l.Address, path
	} else {
		fd, addr, starter, err = bindTCP(l.Address, backlog, steered)
	}
	if err != nil {
		return err
	}
	// os.NewFile keeps a blocking fd blocking and out of Go's poller: what
	// the app must inherit. (It would register a non-blocking fd.)
	f := os.NewFile(uintptr(fd), name)
	var g *steer.Group
	if steered && !strings.HasPrefix(l.Address, "unix:") {
		if g, err = steer.New(f); err != nil {
			f.Close()
			return err
		}
		f = nil // the group's target
	}
	s.files = append(s.files, f)
	s.groups = append(s.groups, g)
	s.names = append(s.names, name)
	s.addrs = append(s.addrs, addr)
	s.starter = append(s.starter, starter)
	return nil
}

// checkName applies systemd's rule for LISTEN_FDNAMES entries
// (fdname_is_valid): printable ASCII, no ':', at most 255 bytes.
func checkName(name string) error {
	if len(name) > 255 {
		return fmt.Errorf("name %q: longer than 255 bytes", name)
	}
	for _, c := range []byte(name) {
		if c < ' ' || c > '~' || c == ':' {
			return fmt.Errorf("name %q: only printable ASCII without ':' fits in LISTEN_FDNAMES", name)
		}
	}
	return nil
}

// somaxconn is the listen backlog Go's net package uses too: the kernel's
// cap, which listen(2) would clamp any larger value to.
func somaxconn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return unix.SOMAXCONN
}

// bindTCP returns the fd, the bound address and the SERVER_STARTER_PORT key.
func bindTCP(address string, backlog int, reuseport bool) (int, string, string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return -1, "", "", err
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return -1, "", "", err
	}
	var sa unix.Sockaddr
	family, dual := unix.AF_INET6, false
	switch host {
	case "", "::":
		// Go's net.Listen listens dual-stack on a wildcard address; so do
		// we, falling back to IPv4 where the kernel has no IPv6.
		sa, dual = &unix.SockaddrInet6{Port: pn}, true
	default:
		ta, err := net.ResolveTCPAddr("tcp", address)
		if err != nil {
			return -1, "", "", err
		}
		if ip4 := ta.IP.To4(); ip4 != nil {
			family = unix.AF_INET
			sa = &unix.SockaddrInet4{Port: pn, Addr: [4]byte(ip4)}
		} else {
			sa6 := &unix.SockaddrInet6{Port: pn, Addr: [16]byte(ta.IP.To16())}
			if ta.Zone != "" {
				if ifi, err := net.InterfaceByName(ta.Zone); err == nil {
					sa6.ZoneId = uint32(ifi.Index)
				} else if n, err := strconv.Atoi(ta.Zone); err == nil {
					sa6.ZoneId = uint32(n)
				}
			}
			sa = sa6
		}
	}
	fd, err := listenTCP(family, sa, dual, backlog, reuseport)
	if dual && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL)) {
		fd, err = listenTCP(unix.AF_INET, &unix.SockaddrInet4{Port: pn}, false, backlog, reuseport)
	}
	if err != nil {
		return -1, "", "", err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, "", "", fmt.Errorf("getsockname: %w", err)
	}
	var ta *net.TCPAddr
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		ta = &net.TCPAddr{IP: net.IP(b.Addr[:]), Port: b.Port}
	case *unix.SockaddrInet6:
		ta = &net.TCPAddr{IP: net.IP(b.Addr[:]), Port: b.Port}
		if b.ZoneId != 0 {
			ta.Zone = strconv.Itoa(int(b.ZoneId))
			if ifi, err := net.InterfaceByIndex(int(b.ZoneId)); err == nil {
				ta.Zone = ifi.Name
			}
		}
	}
	// Server::Starter writes a bare port for a listener given without a
	// host ("8080=3"), and host:port or [v6]:port otherwise.
	starter := ta.String()
	if host == "" {
		starter = strconv.Itoa(ta.Port)
	}
	return fd, ta.String(), starter, nil
}

func listenTCP(family int, sa unix.Sockaddr, dual bool, backlog int, reuseport bool) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	// SO_REUSEADDR lets a restarted init bind while old connections sit in
	// TIME_WAIT, as every server (and Go's net package) does.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
	}
	// SO_REUSEPORT makes the socket the first of a group that only the
	// init adds to (package steer); the takeover keeps the app out.
	if reuseport {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return -1, fmt.Errorf("setsockopt SO_REUSEPORT: %w", err)
		}
	}
	if family == unix.AF_INET6 {
		// Explicit either way: the sysctl net.ipv6.bindv6only default must
		// not decide.
		v6only := 1
		if dual {
			v6only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return -1, fmt.Errorf("setsockopt IPV6_V6ONLY: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, err
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return -1, fmt.Errorf("listen: %w", err)
	}
	ok = true
	return fd, nil
}

// bindUnix binds a unix stream socket. A stale socket file (nobody accepts
// on it) is removed; a live one or any other kind of file is an error.
func (s *Sockets) bindUnix(path string, l config.Listener, backlog int) (int, error) {
	if path == "" {
		return -1, errors.New("empty unix socket path")
	}
	abstract := path[0] == '@'
	if !abstract {
		if err := unixsock.RemoveStale(path); err != nil {
			return -1, err
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return -1, err
	}
	if !abstract {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return -1, err
		}
		s.unlink = append(s.unlink, socketFile{path: path, dev: st.Dev, ino: st.Ino})
		// Mode and owner are set between bind and listen: until listen,
		// connect is refused, so nobody ever gets in under the umask's
		// permissions. chmod/chown on the path: fchmod on a socket fd
		// does not touch the file.
		if l.Mode != "" {
			mode, err := strconv.ParseUint(l.Mode, 8, 32)
			if err != nil || mode > 0o7777 {
				return -1, fmt.Errorf("mode %q: want an octal mode like \"0660\"", l.Mode)
			}
			if err := unix.Chmod(path, uint32(mode)); err != nil {
				return -1, fmt.Errorf("chmod %s: %w", l.Mode, err)
			}
		}
		if l.Owner != "" {
			uid, gid, err := parseOwner(l.Owner)
			if err != nil {
				return -1, err
			}
			if err := unix.Lchown(path, uid, gid); err != nil {
				return -1, fmt.Errorf("chown %s: %w", l.Owner, err)
			}
		}
	} else if l.Mode != "" || l.Owner != "" {
		return -1, errors.New("mode and owner do not apply to an abstract socket")
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return -1, fmt.Errorf("listen: %w", err)
	}
	ok = true
	return fd, nil
}

// parseOwner reads "uid", "uid:gid", "user" or "user:group"; a missing
// group leaves the group unchanged.
func parseOwner(owner string) (int, int, error) {
	u, g, hasGroup := strings.Cut(owner, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		usr, lerr := user.Lookup(u)
		if lerr != nil {
			return -1, -1, fmt.Errorf("owner %q: %w", owner, lerr)
		}
		uid, _ = strconv.Atoi(usr.Uid)
	}
	gid := -1
	if hasGroup {
		gid, err = strconv.Atoi(g)
		if err != nil {
			grp, lerr := user.LookupGroup(g)
			if lerr != nil {
				return -1, -1, fmt.Errorf("owner %q: %w", owner, lerr)
			}
			gid, _ = strconv.Atoi(grp.Gid)
		}
	}
	return uid, gid, nil
}
