// Package control is the init's unix control socket and its client: the
// `entrypoint reload|restart|shutdown|status` commands send one JSON
// request per connection and get the outcome back once the action
// finished.
//
// The server reads the supervisor only through supervisor.Controller and
// never acts itself. Only root and the init's own uid may use it: the
// socket file is mode 0600 and every connection's peer credentials
// (SO_PEERCRED) are checked, which also guards abstract sockets ("@name"),
// which have no file mode at all.
package control
