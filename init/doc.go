// Package supervisor is the PID-1 event loop and the per-app state machine:
// signals in, generations started, hot-swapped, drained, restarted and shut
// down; an exit code out. (The directory is init/, as DESIGN.md lays out;
// Go rejects a package named init.)
//
// It owns the apps' lifecycles and nothing else: sockets and readiness
// gates come from package graceful, exit statuses only from package reaper
// (it never waits for a process itself), config changes from package watch.
// The HTTP and control-socket code sees it only through package status's
// Controller and Events and must never reach into its state.
package supervisor
