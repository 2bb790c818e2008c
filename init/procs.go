package supervisor

import (
	"context"
	"log/slog"
	"syscall"

	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
)

// procs is everything the supervisor does to processes: start a
// generation, signal it, learn that its group is gone, end what it left
// behind. It is a struct of function fields, not an interface, so a unit
// test replaces only what it fakes and drives fake generations through
// channels under testing/synctest, whose documentation asks to keep real
// processes out of the bubble (tableflip's env.go is the model).
type procs struct {
	// start runs a generation through the reaper (the one waiter) and
	// returns its pid and the channel its exit arrives on.
	start func(graceful.Spec) (int, <-chan reaper.Exit, error)
	// lookPath resolves the command with the app's PATH and dir.
	lookPath func(name, dir string, env []string) (string, error)
	// kill is kill(2): a negative pid addresses a process group.
	kill func(pid int, sig syscall.Signal) error
	// signalGroup signals the process group led by pid, never our own.
	signalGroup func(pid int, sig syscall.Signal)
	// groupGone waits until process group pgid is empty or deadline
	// closes, and says which.
	groupGone func(pgid int, deadline <-chan struct{}) bool
	// descendants records a leader's process tree before it is stopped.
	descendants func(leader int) []procID
	// leftovers ends what a generation left outside its group.
	leftovers func(a *app, g *gen, known []procID)
	// pidfd opens a pidfd for a just-started generation; nil without one.
	pidfd func(pid int, exit <-chan reaper.Exit) *pidfd
	// strays ends every process left once the apps ended.
	strays func(s *Supervisor)
	// run runs a command to its end (the validate command of a config
	// change) and returns its output and exit code; ctx ending kills it.
	run func(ctx context.Context, cmd graceful.Command) ([]byte, int, error)
	// takeoverProbe says whether the kernel and runtime let the shim
	// trap bind(): nil, or why not. The supervisor asks it once.
	takeoverProbe func() error
}

// realProcs is the procs of a running init.
func realProcs(r *reaper.Reaper, log *slog.Logger) procs {
	// One exec shim choice for the whole init: the native shim's memfd is
	// made once, and given up once for every app.
	shim := &graceful.ExecShim{
		OnFallback: func(err error) {
			log.Info("native exec shim unusable, apps with sockets start through the Go shim (a Go runtime start more per start)", "err", err)
		},
		OnNative: func(pid int) { log.Debug("started through the native exec shim", "pid", pid) },
	}
	return procs{
		start: func(spec graceful.Spec) (int, <-chan reaper.Exit, error) {
			spec.Shim = shim
			return r.Start(func() (int, error) { return graceful.Spawn(spec) })
		},
		lookPath:    lookPath,
		kill:        syscall.Kill,
		signalGroup: signalGroup,
		groupGone:   groupGone,
		descendants: descendantsOf,
		leftovers:   func(a *app, g *gen, known []procID) { a.endLeftovers(g, known) },
		pidfd:       openPidfd,
		strays:      (*Supervisor).reapStrays,
		run: func(ctx context.Context, cmd graceful.Command) ([]byte, int, error) {
			return graceful.Run(ctx, r, cmd)
		},
		takeoverProbe: func() error { return probeTakeover(r, shim) },
	}
}

// signalGroup sends sig to the process group led by g.
func (a *app) signalGroup(g *gen, sig syscall.Signal) {
	a.s.procs.signalGroup(g.pid, sig)
}
