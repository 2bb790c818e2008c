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
//
// # Loops
//
// Run's loop takes signals, shutdown and pings; each app has a run loop
// of its own, the only goroutine that starts its generations. Every wait of
// an app's loop (a gate, a drain, the backoff, a validate command) goes
// through one helper that also answers pings and files requests, so
// Supervisor.Ping proves that each app's loop turns, and names the app
// whose loop does not. Shutdown is the cancellation of the app's context.
// SIGUSR1 and SIGUSR2 become requests sent from Run's loop, one app after
// the other, with one pending slot per kind: no goroutine per signal.
//
// # State diagram
//
// An app's states (status.State) and every move between them. Swaps,
// restarts, exits and shutdown cause them; transitionLocked in state.go
// is the only code that changes the state, logs each change and reports a
// move that is not listed here. TestStateDiagram keeps this list and the
// code's table equal.
//
//	starting   -> running backoff stopping exited failed
//	running    -> swapping restarting backoff stopping exited failed
//	swapping   -> running stopping
//	restarting -> running backoff stopping exited failed
//	backoff    -> running stopping
//	stopping   -> exited
//	exited     ->
//	failed     ->
//
// A generation's phase (status.Phase) goes starting -> ready -> draining;
// one that fails its gate is killed while starting.
//
// Requests collapse: swaps asked for during a swap make one more swap
// after it; a restart asked for while a generation is being brought up to
// be the current one (first start, a restart, a restart after a crash)
// joins that start and gets its outcome, so it never stops a generation
// that has only just become ready.
package supervisor
