package supervisor

import (
	"context"
	"syscall"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/status"
)

// What a caught signal asks of Run's loop.
const (
	sigHandled  = iota // nothing more
	sigShutdown        // begin the shutdown
	sigAction          // swap or restart every app
)

// handleSignal acts on one caught signal, or says what Run's loop must do.
func (s *Supervisor) handleSignal(sig syscall.Signal) (shutdownReq, opKind, int) {
	switch sig {
	case syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGCHLD, syscall.SIGURG:
		// Meaningful to the init only: a broken log pipe, or terminal
		// job control aimed at the init while the app owns the
		// terminal (tini ignores both TTIN and TTOU for this reason).
		return shutdownReq{}, 0, sigHandled
	case syscall.SIGUSR1:
		s.log.Info("signal received, hot swap", "signal", config.SignalName(sig))
		return shutdownReq{}, opSwap, sigAction
	case syscall.SIGUSR2:
		s.log.Info("signal received, full restart", "signal", config.SignalName(sig))
		return shutdownReq{}, opRestart, sigAction
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP:
		return shutdownReq{reason: config.SignalName(sig), sig: s.rewrite(sig)}, 0, sigShutdown
	}
	s.forwardAll(s.rewrite(sig))
	return shutdownReq{}, 0, sigHandled
}

// forwardAll forwards sig to every app: every kill(2) first, then, unless
// more signals are waiting, the init offers its CPU to the woken apps
// (yieldCPU), and only then are the sent signals counted and logged, in
// the apps' order. A signal queued or dropped is logged at once, so its
// line never lands after what the app did with it.
//
// Why (issue 13): an app woken by kill(2) is often queued on the init's
// own CPU, the other CPUs being busy, and waited there until the init had
// counted, logged and parked its thread: about 30 µs of a 160 µs median
// signal forward with one of two CPUs busy. With idle CPUs it changes
// nothing measurable.
func (s *Supervisor) forwardAll(sig syscall.Signal) {
	type sent struct {
		a *app
		g *gen
	}
	var buf [8]sent // no allocation for up to 8 apps
	done := buf[:0]
	for _, a := range s.apps {
		g, out := a.forward(sig)
		if out != sigSent {
			a.forwarded(sig, g, out)
			continue
		}
		done = append(done, sent{a, g})
	}
	if len(done) > 0 && len(s.signals) == 0 {
		yieldCPU()
	}
	for _, d := range done {
		d.a.forwarded(sig, d.g, sigSent)
	}
}

// sigSeq is a SIGUSR1 or SIGUSR2 being carried out by Run's loop: one
// request to one app at a time, in config order.
type sigSeq struct {
	op    opKind
	next  int // index of the app asked next
	app   *app
	reply chan status.Result
}

// advance asks the next app that takes requests and says whether one was
// asked (false: the sequence is over). It never blocks: an app whose
// queue is full (it is stuck; liveness says so) is skipped.
func (s *Supervisor) advance(q *sigSeq) bool {
	for q.next < len(s.apps) {
		a := s.apps[q.next]
		q.next++
		r := request{ctx: context.Background(), op: q.op, reply: make(chan status.Result, 1)}
		select {
		case <-a.done:
			continue // ended; nothing to act on
		default:
		}
		select {
		case a.reqs <- r:
			q.app, q.reply = a, r.reply
			return true
		default:
			a.log.Warn("request queue full, signal not acted on", "action", q.op.String())
		}
	}
	return false
}

func (s *Supervisor) rewrite(sig syscall.Signal) syscall.Signal {
	if to, ok := s.cfg.Rewrite[config.Signal(sig)]; ok {
		return syscall.Signal(to)
	}
	return sig
}
