package supervisor

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/internal/procstat"
)

// LeftoverGrace is how long processes a drained generation left behind get
// between SIGTERM and SIGKILL.
const LeftoverGrace = StrayGrace

// procID names a process for good: a pid plus its start time (clock ticks
// after boot, /proc/PID/stat field 22), so a reused pid is never taken
// for the process it replaced.
type procID struct {
	pid   int
	start uint64
}

// procInfo is what /proc/PID/stat says about one process.
type procInfo struct {
	ppid, pgid int
	start      uint64
}

func readProcInfo(pid int) (procInfo, bool) {
	st, err := procstat.Read(pid)
	if err != nil {
		return procInfo{}, false
	}
	return procInfo{ppid: st.PPID, pgid: st.PGRP, start: st.StartTime}, true
}

// descendantsOf records every process below leader in the process tree
// right now (the leader's own group included; it is gone by the time the
// record is used).
func descendantsOf(leader int) []procID {
	if leader < 1 {
		return nil
	}
	parents := processParents()
	var out []procID
	for pid := range parents {
		if pid != leader && descends(pid, leader, parents) {
			if info, ok := readProcInfo(pid); ok {
				out = append(out, procID{pid, info.start})
			}
		}
	}
	return out
}

// leftoverMarkers are environment entries only g's processes carry: its
// LISTEN_PID (set by the exec shim), its own NOTIFY_SOCKET, and, with a
// single app, its ENTRYPOINT_GENERATION. A process keeps the environment
// it was exec'd with in /proc/PID/environ, so a daemon that double-forked
// away from the generation still shows where it came from unless it
// scrubbed its environment.
func (a *app) leftoverMarkers(g *gen) [][]byte {
	var m [][]byte
	if a.sockets.Len() > 0 {
		m = append(m, []byte("LISTEN_PID="+strconv.Itoa(g.pid)))
	}
	if g.notify != nil {
		m = append(m, []byte("NOTIFY_SOCKET="+g.notify.Addr()))
	}
	if len(a.s.apps) == 1 {
		m = append(m, []byte("ENTRYPOINT_GENERATION="+strconv.Itoa(g.n)))
	}
	return m
}

func hasMarker(pid int, markers [][]byte) bool {
	if len(markers) == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		for _, m := range markers {
			if bytes.Equal(kv, m) {
				return true
			}
		}
	}
	return false
}

// liveGroups are the process groups of every generation still running, of
// every app: what is in them is theirs, never a leftover.
func (s *Supervisor) liveGroups() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]bool{}
	for _, a := range s.apps {
		for _, g := range append(slices.Clone(a.others), a.cur) {
			if g != nil && g.alive() {
				m[g.pid] = true
			}
		}
	}
	return m
}

// endLeftovers ends what generation g left behind once it drained:
// processes that escaped its process group (an app that setsid's a
// daemon) and so survived the group's SIGKILL, re-parented to the init.
// They are found two ways: known (recorded descendants of g from before
// its leader exited, when the tree still linked them to it) and marked
// (their environment carries g's markers, for daemons that double-forked
// away before any record). Each gets SIGTERM, LeftoverGrace, then SIGKILL,
// through a pidfd opened after the start time was checked, so a reused
// pid is never signalled. Processes of a live generation's group are never
// touched. It returns how many processes it ended.
func (a *app) endLeftovers(g *gen, known []procID) int {
	self := os.Getpid()
	if hasChildren(self) == childrenNone {
		// Every leftover descends from the init (it re-parents to us), so
		// with no child at all there is nothing to find: skip the scan of
		// /proc, which reads every process's stat (a few ms on a busy
		// host, paid on every exit of a single app).
		return 0
	}
	live := a.s.liveGroups()
	markers := a.leftoverMarkers(g)
	parents := processParents()
	isKnown := make(map[procID]bool, len(known))
	for _, k := range known {
		isKnown[k] = true
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var pids []int
	for pid := range parents {
		if pid == self || !descends(pid, self, parents) {
			continue
		}
		info, ok := readProcInfo(pid)
		if !ok || live[info.pgid] || info.pgid == self {
			continue
		}
		if !isKnown[procID{pid, info.start}] && !hasMarker(pid, markers) {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone, or no pidfd: never signal by a bare pid
		}
		// The pidfd pins the process: if the start time still matches
		// after it was opened, it is the one we found.
		if again, ok := readProcInfo(pid); !ok || again.start != info.start {
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
		pids = append(pids, pid)
	}
	if len(fds) == 0 {
		return 0
	}
	a.log.Warn("ending processes a drained generation left behind", "generation", g.n, "pids", pids, "signal", "SIGTERM", "grace", LeftoverGrace)
	for _, fd := range fds {
		_ = unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0)
	}
	a.s.reaper.Kick()
	alive := waitPidfds(fds, LeftoverGrace)
	if len(alive) > 0 {
		var still []int
		for _, i := range alive {
			still = append(still, pids[i])
			_ = unix.PidfdSendSignal(fds[i], unix.SIGKILL, nil, 0)
		}
		a.log.Warn("leftover processes ignored SIGTERM, killed", "generation", g.n, "pids", still, "signal", "SIGKILL")
		a.s.reaper.Kick()
		waitPidfds(fds, killWait)
	}
	a.s.events.LeftoversEnded(a.cfg.Name, len(fds))
	return len(fds)
}

// waitPidfds waits until every process behind fds exited or d passed and
// returns the indexes of those still running. A pidfd polls readable once
// its process exited (pidfd_open(2)).
func waitPidfds(fds []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	alive := make([]int, len(fds))
	for i := range fds {
		alive[i] = i
	}
	for len(alive) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		pfd := make([]unix.PollFd, len(alive))
		for j, i := range alive {
			pfd[j] = unix.PollFd{Fd: int32(fds[i]), Events: unix.POLLIN}
		}
		if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && !errors.Is(err, syscall.EINTR) {
			break
		}
		next := alive[:0:0]
		for j, i := range alive {
			if pfd[j].Revents == 0 {
				next = append(next, i)
			}
		}
		alive = next
	}
	return alive
}

// childrenAnswer is what the kernel says about a process's children.
type childrenAnswer int

const (
	childrenUnknown childrenAnswer = iota // no /proc/PID/task/TID/children
	childrenNone
	childrenSome
)

// hasChildren reads /proc/PID/task/*/children (CONFIG_PROC_CHILDREN, on in
// every distribution kernel). Children hang off the thread that forked
// them, and an orphan re-parents to any thread of its reaper, so every
// thread's file is read. A process that re-parents to pid does so before
// its old parent can be reaped, so after the reaper delivered an app's
// exit its orphans are listed here.
func hasChildren(pid int) childrenAnswer {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return childrenUnknown
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// The thread exited meanwhile, or the kernel lacks
				// the file: tell apart by the task directory.
				if _, serr := os.Stat(dir + "/" + t.Name()); serr == nil {
					return childrenUnknown
				}
				continue
			}
			return childrenUnknown
		}
		if len(bytes.TrimSpace(b)) > 0 {
			return childrenSome
		}
	}
	return childrenNone
}
