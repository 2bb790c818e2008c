// Package reaper is the only code in the binary that calls wait4.
//
// One loop (Run) sweeps wait4(-1, WNOHANG) until it returns 0 or ECHILD,
// woken by SIGCHLD and by a one-second ticker because SIGCHLDs coalesce
// (tini waits in sigtimedwait with a 1 s timeout for the same reason). Each
// exit status goes to whoever registered that PID through Start; every other
// status belongs to an orphan that was re-parented to us, and is counted.
//
// Start registers the PID under the same lock the sweep takes to look a PID
// up, and holds it across the fork, so a child that exits before Start
// returns is never mistaken for an orphan and its status is never lost
// (pebble's StartCommand, containerd's Monitor.Start).
//
// It must never be bypassed: no exec.Cmd.Wait, no os.Process.Wait anywhere
// else, or that second waiter steals exit statuses.
package reaper
