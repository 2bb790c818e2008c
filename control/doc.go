// Package control is the init's unix control socket and its client: the
// `entrypoint reload|restart|shutdown|status` commands send one JSON
// request per connection and get the outcome back once the action
// finished.
//
// The server reads the supervisor only through status.Controller, runs
// reloads and restarts through status.Do, and never acts itself; it must
// never import the supervisor (init/), so that it builds on any OS.
//
// A caller that hangs up cancels its request: the supervisor asks the connection (status.WithStartCheck) right before
// it starts an action, and the caller is told, before the outcome, each
// action that started (it then runs to its end whatever the caller does).
//
// The default name, "@entrypoint-control-{ns}", carries the PID and mount
// namespace inodes (Expand): the containers of a pod share one network
// namespace and so one set of abstract names, and each container's init
// and CLI must find their own. Peers in a PID namespace that is neither
// ours nor below it show as pid 0 in SO_PEERCRED; the server refuses such
// callers and the client such servers unless told otherwise.
//
// Only root and the init's own uid may use it: the socket file is mode
// 0600 and every connection's peer credentials
// (SO_PEERCRED) are checked, which also guards abstract sockets ("@name"),
// which have no file mode at all.
//
// The namespaced name, abstract names and the credential check are
// Linux-only (ns_linux.go, peercred_linux.go). Elsewhere the package
// builds, but a socket needs a path and the server refuses every caller,
// since it cannot tell who calls.
package control
