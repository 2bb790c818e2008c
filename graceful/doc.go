// Package graceful owns the application's listening sockets, hands them to
// each generation of the app, and runs the readiness gates that decide when
// a new generation counts as serving.
//
// # Sockets
//
// Bind creates every configured listener once, with raw syscalls, before the
// first generation starts. The sockets stay BLOCKING and are wrapped with
// os.NewFile, never net.Listener: the app shares the open file description,
// and a non-Go app expects a blocking socket. The init never accepts on
// them; it only holds them open so that no connection is refused while
// generations come and go (DESIGN rule 3). ":port" and "[::]:port" listen
// dual-stack, as net.Listen does (IPv4 only where the kernel has no IPv6);
// "0.0.0.0:port" is IPv4 only, as the user wrote; "[::1]:port" is IPv6 only;
// a host name binds its first address, IPv4 preferred. "unix:/path" and
// "unix:@abstract" are unix stream sockets; a stale socket file (connect is
// refused) is replaced, a live one or any other file is an error.
//
// # Handoff (the env var contract)
//
// Spawn starts a generation with the sockets as fds 3.. in config order and:
//
//	LISTEN_FDS=<n>                   systemd socket activation
//	LISTEN_FDNAMES=<name>:<name>...  in the same order
//	LISTEN_PID=<the app's own pid>   set by the exec shim, see below
//	SERVER_STARTER_PORT=8080=3;127.0.0.1:8081=4;[::1]:8082=5;/run/app.sock=6
//	SERVER_STARTER_GENERATION=<N>    Server::Starter's names
//	ENTRYPOINT_GENERATION=<N>        always
//	NOTIFY_SOCKET=@entrypoint/...    when a Notify is given (abstract socket)
//	WATCHDOG_USEC=<µs>               when a watchdog is configured
//
// Every one of these is removed from the environment first, so a stale value
// inherited by the init never reaches a generation that gets none. Nothing
// but fds 0, 1, 2 and the sockets reaches the app: Spawn marks every other
// inherited fd close-on-exec before it forks.
//
// LISTEN_PID must equal the app's pid, and Go cannot run code between fork
// and exec, so with sockets an exec shim runs first, sets LISTEN_PID to its
// own pid and execve()s the app: same pid, nothing of the shim left. With
// a Spec.Shim (the init sets one) that is the native shim of
// internal/execshim, a few syscalls in a sealed memfd executed as
// /proc/self/fd/N, which also installs the bind takeover's filter. Without
// one, where this machine has none, and where the kernel refuses to
// execute it (Spawn then falls back for good and says why once), it is
// the Go shim: Spawn executes
// /proc/self/exe with shim.Env set to the app's path, and the init() of
// package graceful/shim, which every binary that spawns with sockets
// imports, does the same before the binary's heavier packages are
// initialised. Without sockets the app is executed directly.
//
// # Readiness
//
// NewGate builds one of the gates of DESIGN rule 4: "notify" (READY=1 on the
// generation's own NOTIFY_SOCKET, accepted only from that generation's
// processes, checked with SCM_CREDENTIALS), "exec", "http", "tcp", "delay"
// and "none". Every gate is bounded by its timeout. A sender that exits
// right after sending (systemd-notify in a shell script) is checked while
// it still waits on its BARRIER=1 fd, which is closed only after the check.
// A Notify keeps
// delivering every message on Messages after READY=1 (for WATCHDOG=1 and
// STATUS=); the first READY=1 also closes Ready, which the notify gate waits
// on, so the gate consumes nothing.
//
// # Steered listeners
//
// BindSteered (for apps under the bind takeover) makes each TCP listener
// the first socket of a SO_REUSEPORT group (package internal/steer). A
// generation takes its sockets with Current (the ones new connections go
// to now: first start, restarts) or Next (a hot swap: a socket of its own
// in each group, which gets nothing until Steer), and gives them back with
// Release once none of its processes can accept any more. Files of Bind's
// Sockets names, for a steered listener, the socket new connections go to.
// Unix listeners are shared by every generation either way.
//
// # What it must never do
//
// It never waits for a process: every exit status comes from the reaper
// (RunCommand registers its child there). It never closes a socket that
// may get a connection: during a swap or restart only a steered
// generation's own socket leaves its group, once the generation is gone
// and new connections go elsewhere; Sockets.Close, at the very end,
// closes the rest.
package graceful
