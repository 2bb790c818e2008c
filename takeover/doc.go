// Package takeover answers the bind(), listen() and shutdown() calls that
// the exec shim's seccomp filter traps in an app that binds its own port
// (DESIGN rule 12), so that an unmodified server ends up accepting on the
// very socket the init holds across generations:
//
//   - bind() of an address the init owns becomes that listener, at the
//     same fd number (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD), and returns 0;
//     any other bind runs as the app asked (SECCOMP_USER_NOTIF_FLAG_CONTINUE);
//     an owned port bound at an address that does not overlap the owned one
//     is refused with EADDRINUSE and a line naming both;
//   - listen() on an owned socket returns 0 without touching it, so the
//     app's backlog (Python asks for 5) never shrinks the queue of every
//     later generation; having listened on every owned socket is the
//     generation's readiness;
//   - shutdown(SHUT_RD or SHUT_RDWR) of an owned socket is suppressed: on a
//     listener it would stop accepting for every generation.
//
// It owns each generation's notification fd and the address rules. It must
// never create or close an owned socket (graceful owns them), never answer
// a call of a socket it does not own with anything but CONTINUE, and never
// block the app on anything but its own answer.
package takeover
