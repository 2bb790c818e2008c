// Package earlysig catches every catchable signal from the first moment the
// binary runs, before any other package's init, so that nothing sent to a
// freshly started PID 1 is lost or handled by the Go runtime's defaults.
//
// Why: a signal that arrives before signal.Notify covers it is handled by the
// runtime, which makes a Go PID 1 exit with status 2 on SIGTERM and drops
// SIGUSR1. This package has no dependencies beyond the standard library so
// that Go's initialisation order runs its init() before net/http's, the
// YAML parser's and everything else's.
//
// It owns the one process-wide signal channel (the only package-level state
// the binary has, because os/signal forces it). It must never act on a
// signal: the supervisor drains Incoming and decides. In the exec shim and
// the kill(1) personality it registers nothing, so their signals keep the
// kernel's defaults.
package earlysig

import (
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/entrypoint/entrypoint/graceful/shim"
)

// incoming is buffered generously: signals that arrive before the first app
// exists are queued here until the supervisor delivers them.
var incoming = make(chan os.Signal, 128)

// Catchable lists the signals the init handles. It leaves out SIGKILL and
// SIGSTOP (uncatchable), SIGCHLD (the reaper's own channel), SIGURG (the Go
// runtime's preemption signal, golang/go#37942), the synchronous faults
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: they belong to the
// thread that caused them), SIGPROF (the Go runtime's profiler takes it
// before os/signal sees it, so it can never be forwarded), and realtime
// signals 32 and 33, which glibc reserves, and 34, which musl reserves and
// the Go runtime keeps for itself (runtime/sigtab_linux_generic.go).
func Catchable() []os.Signal {
	skip := map[syscall.Signal]bool{
		syscall.SIGKILL: true, syscall.SIGSTOP: true, syscall.SIGCHLD: true,
		syscall.SIGURG: true, syscall.SIGSEGV: true, syscall.SIGBUS: true,
		syscall.SIGFPE: true, syscall.SIGILL: true, syscall.SIGTRAP: true,
		syscall.SIGSYS: true, syscall.SIGPROF: true, 32: true, 33: true, 34: true,
	}
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if !skip[s] {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// First lists the signals registered before init returns: those the Go
// runtime's defaults would turn into an exit or a crash (HUP, INT, TERM
// exit with status 2; QUIT, ABRT, STKFLT throw), the ones the init gives a
// meaning (USR1, USR2), the one a terminal sends most (WINCH), and the
// job-control signals whose default would stop a non-PID-1 init (TSTP,
// TTIN, TTOU). The rest of Catchable is registered in the background and
// is complete before Wait returns.
func First() []os.Signal {
	return []os.Signal{
		syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGABRT,
		syscall.SIGSTKFLT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
	}
}

// rest is Catchable minus First.
func rest() []os.Signal {
	first := map[os.Signal]bool{}
	for _, s := range First() {
		first[s] = true
	}
	var out []os.Signal
	for _, s := range Catchable() {
		if !first[s] {
			out = append(out, s)
		}
	}
	return out
}

// registered is closed once every signal of Catchable is caught. Together
// with incoming it is the package's only state, for the same reason.
var registered = make(chan struct{})

func init() {
	// shim.Env marks the process as the exec shim (package graceful/shim):
	// it must not catch signals meant for the app it is about to become.
	if os.Getenv(shim.Env) != "" || filepath.Base(os.Args[0]) == "kill" {
		close(registered)
		return
	}
	// Each signal costs the runtime a round trip to its signal-mask
	// thread (runtime.sigenable): 0.1 ms each on an idle machine, up to
	// 0.5 ms on a loaded one, about 60 in all. The dangerous and the
	// common ones are caught before init returns; the others (realtime
	// signals, ALRM, PIPE, CONT, XCPU, ...) while the remaining package
	// inits and the flag parsing run, and Wait makes sure they are all
	// caught before the first child starts (DESIGN rule 2). One that
	// arrives in between is dropped by the runtime, as any signal is in
	// the moments before this init runs at all.
	signal.Notify(incoming, First()...)
	go func() {
		signal.Notify(incoming, rest()...)
		close(registered)
	}()
}

// Wait returns once every signal of Catchable is caught. The init calls it
// before it starts any child process.
func Wait() { <-registered }

// Incoming returns the channel every caught signal arrives on, in order.
// Only one goroutine (the supervisor's loop) may receive from it.
func Incoming() <-chan os.Signal { return incoming }

// Stop stops catching signals, restoring the defaults; used by CLI
// subcommands that are clients, not an init.
// It waits for the background registration first, which would otherwise
// catch the rest again after Stop.
func Stop() {
	Wait()
	signal.Stop(incoming)
}
