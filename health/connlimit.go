package health

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxConns caps the health listener's open connections. Every
// connection costs the init a descriptor and some 20 KiB; without a cap,
// 10,000 idle kept-alive connections took it from 15 to 216 MB and, under
// a low descriptor limit, left /livez and the control socket without a
// descriptor to accept with (the kubelet then restarts the container).
const maxConns = 128

// connCap is maxConns, or a quarter of the descriptor limit when that is
// lower, so the rest stays for the control socket, the apps' starts and
// the watch.
func connCap() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		if q := int(rl.Cur / 4); q < maxConns {
			return max(q, 4)
		}
	}
	return maxConns
}

// limitListener holds at most max connections open. At the cap it closes
// the idle kept-alive ones (their clients reconnect, as HTTP allows), so a
// probe always gets in; when none is idle, new connections wait in the
// kernel's backlog until one ends.
type limitListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu     sync.Mutex
	open   int
	states map[net.Conn]http.ConnState
	freed  chan struct{}
	warned time.Time
}

func newLimitListener(l net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, max: max, log: log, states: map[net.Conn]http.ConnState{}, freed: make(chan struct{}, 1)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.open >= l.max {
			l.closeIdleLocked()
		}
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			c, err := l.Listener.Accept()
			if err != nil {
				l.release()
				return nil, err
			}
			return &limitedConn{Conn: c, l: l}, nil
		}
		if time.Since(l.warned) > time.Minute {
			l.warned = time.Now()
			l.log.Warn("health listener at its connection cap; new connections wait in the backlog", "cap", l.max)
		}
		l.mu.Unlock()
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-l.freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// closeIdleLocked closes every idle kept-alive connection. Closing one
// releases its slot at once (limitedConn.Close).
func (l *limitListener) closeIdleLocked() {
	var idle []net.Conn
	for c, st := range l.states {
		if st == http.StateIdle {
			idle = append(idle, c)
			delete(l.states, c)
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	l.mu.Lock()
}

// connState is the http.Server's ConnState hook.
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(l.states, c)
	default:
		l.states[c] = st
	}
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
