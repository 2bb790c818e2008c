// Command example-app is the small socket-activated HTTP server that the
// demo, the tests and the benchmarks run under entrypoint.
//
// It takes its listening sockets from the systemd socket-activation handoff
// (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; fds 3..), or from Server::Starter's
// SERVER_STARTER_PORT, and binds -addr itself only when neither is present.
// It serves HTTP on every socket it got, tells the init it is ready through
// sd_notify (READY=1 on NOTIFY_SOCKET, abstract "@" names included), and on
// SIGTERM, SIGINT or SIGQUIT stops accepting, sends STOPPING=1, answers
// what still arrives on open connections with "Connection: close", lets
// in-flight requests finish within -drain and exits 0.
//
// It uses the standard library only, on purpose: the few lines of the two
// protocols are written out here so that a reader sees everything an app
// needs to do to be swapped without dropping a connection.
//
// Routes:
//
//	/          one line: pid, ENTRYPOINT_GENERATION, version, start-up time, config
//	/pid       the pid
//	/sleep?d=3s  sends the headers, sleeps d (default 10s, as the seed's demo), then the pid
//	/healthz   200 "ok"
//
// Flags (env twin in brackets): -addr (APP_ADDR, default :8080), -version
// (APP_VERSION, or -ldflags "-X main.version=v2", default v1), -config
// (APP_CONFIG: a file read once at start; a new config needs a new
// generation), -ready-delay, -fail-start, -never-ready, -drain (default 25s),
// -lame-duck (APP_LAME_DUCK, default 0: after the stop signal, how long
// kept-alive connections are still answered, with "Connection: close",
// before idle ones are closed; with 0 a client whose request was already on
// the wire can see a reset or EOF, which net/http and browsers retry),
// -events (APP_EVENTS: a file that gets one JSON line per lifecycle event
// with a nanosecond timestamp, which the benchmark uses to split a swap into
// its parts).
//
// Build: go build -o example-app ./examples/app
package main
