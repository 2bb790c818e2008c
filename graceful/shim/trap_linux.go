package shim

import (
	"syscall"
	"unsafe"
)

// TakeoverEnv names the variable that carries the descriptor number of the
// init's end of a socketpair: the shim installs the takeover filter, sends
// the init the filter's notification fd over it, and closes it. With
// Env set to "" the shim is a probe: it reports and exits 0.
const TakeoverEnv = "ENTRYPOINT_INTERNAL_TAKEOVER"

// Classic BPF and seccomp constants; the syscall package lacks most of
// them, and this package may import nothing else.
const (
	bpfLdWAbs    = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK      = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfRetK      = 0x06 // BPF_RET | BPF_K
	retAllow     = 0x7fff0000
	retNotify    = 0x7fc00000 // SECCOMP_RET_USER_NOTIF
	setFilter    = 1          // SECCOMP_SET_MODE_FILTER
	flagNotify   = 8          // SECCOMP_FILTER_FLAG_NEW_LISTENER
	prNoNewPrivs = 38         // PR_SET_NO_NEW_PRIVS
	shutWR       = 1          // SHUT_WR
)

// The calls named in a refusal. The native shim (internal/execshim) names
// them the same way; its tests compare.
const (
	stepNoNewPrivs  = "prctl(PR_SET_NO_NEW_PRIVS)"
	stepNewListener = "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)"
)

// filter traps bind, listen, and shutdown unless it only ends writing:
// shutdown(SHUT_WR) is what servers call on every connection (Go, nginx,
// libuv, Python's socketserver), and on a listener it does nothing, so
// only SHUT_RD and SHUT_RDWR, which break a listener for every generation,
// cost a round trip to the init. Every other syscall, and every syscall of
// another ABI (x32, i386), runs as if there were no filter.
func filter() []syscall.SockFilter {
	const (
		offNr   = 0
		offArch = 4
		offArg1 = 16 + 8 // args[1], low word on little-endian machines
	)
	return []syscall.SockFilter{
		/* 0 */ {Code: bpfLdWAbs, K: offArch},
		/* 1 */ {Code: bpfJeqK, K: auditArch, Jt: 0, Jf: 6}, // other ABI: 8
		/* 2 */ {Code: bpfLdWAbs, K: offNr},
		/* 3 */ {Code: bpfJeqK, K: syscall.SYS_BIND, Jt: 5}, // 9
		/* 4 */ {Code: bpfJeqK, K: syscall.SYS_LISTEN, Jt: 4}, // 9
		/* 5 */ {Code: bpfJeqK, K: syscall.SYS_SHUTDOWN, Jt: 0, Jf: 2}, // 6 or 8
		/* 6 */ {Code: bpfLdWAbs, K: offArg1},
		/* 7 */ {Code: bpfJeqK, K: shutWR, Jt: 0, Jf: 1}, // 8 or 9
		/* 8 */ {Code: bpfRetK, K: retAllow},
		/* 9 */ {Code: bpfRetK, K: retNotify},
	}
}

// trap installs the filter on this thread, which is the one that execs the
// app (the runtime keeps the main goroutine on the main thread until every
// init has run), and sends the init the notification fd, or why not.
// Nothing here may fail the start: an app that takes fds 3.. works
// without the takeover, so a refusal is reported and the exec goes on.
func trap(sock int) {
	defer syscall.Close(sock)
	if !supported {
		report(sock, "E", syscall.ENOSYS, "seccomp filter for this architecture", -1)
		return
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		report(sock, "E", e, stepNoNewPrivs, -1)
		return
	}
	prog := filter()
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := syscall.RawSyscall(sysSeccomp, setFilter, flagNotify, uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		report(sock, "E", e, stepNewListener, -1)
		return
	}
	report(sock, "K", 0, "", int(r))
	syscall.Close(int(r))
}

// report sends "K" with the fd, or "E<errno> <what>" without one.
func report(sock int, kind string, e syscall.Errno, what string, fd int) {
	msg := kind
	var oob []byte
	if fd >= 0 {
		oob = syscall.UnixRights(fd)
	} else {
		msg += itoa(int(e)) + " " + what
	}
	for {
		err := syscall.Sendmsg(sock, []byte(msg), oob, nil, 0)
		if err != syscall.EINTR {
			return
		}
	}
}

func atoi(s string) int {
	n := 0
	if s == "" {
		return -1
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
