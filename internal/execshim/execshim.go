// Package execshim owns the native exec shim: a static ELF executable of a
// few hundred bytes, written here for the machine the init runs on, that
// sets LISTEN_PID to its own pid and execve()s the app.
//
// LISTEN_PID must be the app's pid, and Go cannot run code between fork and
// exec, so something must run in the child first. The Go shim (package
// graceful/shim) is this very binary started again: a Go runtime start and
// the page faults of a 15 MB image, about 10 ms idle and three times that
// on a loaded machine, on every hot swap. This one is a few syscalls.
//
// The contract, which the init and the code below must agree on:
//
//	argv: [errfd or "errfd:takeoverfd", path, app argv[0], app argv[1], ...]
//	envp: ["LISTEN_PID=" + ten spare bytes, the app's environment...]
//	fds:  errfd is the write end of the exec-error pipe, errfd+1 is
//	      this image, takeoverfd the shim's end of a takeover.Channel;
//	      all are closed by the time the app runs
//
// The shim marks errfd close-on-exec and closes errfd+1. With a takeover
// fd it then does what the Go shim's trap does (DESIGN rule 12):
// PR_SET_NO_NEW_PRIVS, the seccomp filter that traps bind, listen and
// shutdown with SECCOMP_FILTER_FLAG_NEW_LISTENER, and one SEQPACKET
// message on the takeover fd: "K" carrying the notification fd, or
// "E<errno> <the call that failed>"; the exec goes on either way. An
// empty path makes it the takeover's start-up probe: it exits 0 there,
// having answered. Otherwise it writes its pid over the spare bytes (NUL-terminated) and execve()s path
// with the rest. When execve fails it writes the errno in decimal to errfd
// and exits 127 for ENOENT and ENOTDIR, 126 for any other (tini's codes,
// and the Go shim's); unlike the Go shim it prints nothing to the app's
// stderr: the init reports the error, which it read from errfd. Without
// the pid slot, or with an errfd below 3, it exits 126 at once.
//
// The source is testdata/shim_<arch>.s and code_<arch>.go is generated
// from it by testdata/gen.sh; the tests assemble it and compare. An
// architecture without one gets no image, and the Go shim runs there.
//
// It must never do more than that contract: no parsing of the app's
// environment, no allocation, no signal handling.
package execshim

import "encoding/binary"

// PIDSlot is the first entry of the shim's environment: the shim writes its
// pid over the zeros. Ten digits hold any pid (pid_max is at most 2^22).
const PIDSlot = "LISTEN_PID=0000000000"

// base is where the image is loaded; anything page-aligned and above
// vm.mmap_min_addr works for a static ET_EXEC.
const base = 0x400000

// Image returns the shim for this machine as an ELF executable, or nil
// when there is none for GOARCH.
func Image() []byte {
	if code == "" {
		return nil
	}
	const ehsize, phsize, nph = 64, 56, 2
	hdr := ehsize + nph*phsize
	b := make([]byte, hdr, hdr+len(code))
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, little endian, EV_CURRENT
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)                // EV_CURRENT
	le.PutUint64(b[24:], base+uint64(hdr)) // entry: the first instruction
	le.PutUint64(b[32:], ehsize)           // program headers follow
	le.PutUint16(b[52:], ehsize)           // e_ehsize
	le.PutUint16(b[54:], phsize)           // e_phentsize
	le.PutUint16(b[56:], nph)              // e_phnum
	ph := b[ehsize:]
	// PT_LOAD: the whole file, read and execute, never written.
	le.PutUint32(ph[0:], 1)
	le.PutUint32(ph[4:], 5) // PF_R|PF_X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(hdr+len(code)))
	le.PutUint64(ph[40:], uint64(hdr+len(code)))
	le.PutUint64(ph[48:], 0x1000)
	// PT_GNU_STACK without PF_X: a stack that is not executable.
	ph = ph[phsize:]
	le.PutUint32(ph[0:], 0x6474e551)
	le.PutUint32(ph[4:], 6) // PF_R|PF_W
	le.PutUint64(ph[48:], 16)
	return append(b, code...)
}
