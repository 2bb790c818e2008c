// Package unixsock decides whether a unix socket file in the way of a bind
// is stale, and removes it only then. graceful (a --listen unix: address)
// and control (the control socket) both bind paths a previous init may
// have left behind.
//
// One semantics for both: a path that does not exist is fine; a path that
// is not a socket (a regular file, a directory, a symlink, even one to a
// socket) is never touched; a socket is probed with a non-blocking stream
// connect and removed only when the kernel answers ECONNREFUSED, which for
// AF_UNIX means that no socket is bound to the file any more (its owner is
// gone). Anything else means someone owns it: accepted, a full backlog
// (EAGAIN) or a socket of another type bound there (EPROTOTYPE: a datagram
// socket that is alive; a dead one answers ECONNREFUSED too). An answer the
// probe cannot read (EACCES, ...) is an error and nothing is removed.
//
// It owns that decision and nothing else: it never binds, never listens and
// never removes a socket someone may still use. Between the probe and the
// remove another process could bind the same path; the callers' binds are
// the only ones expected there, so that window is accepted (systemd and
// Server::Starter work the same way). The probe is Linux's: on other
// systems RemoveStale refuses with errors.ErrUnsupported and touches
// nothing (macOS answers a full backlog with ECONNREFUSED too, which would
// take a live socket for a stale one).
package unixsock
