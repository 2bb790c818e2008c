// Command bench measures entrypoint against the targets and against
// tini, Debian's start_server (Server::Starter) and a plain process restart,
// and prints one markdown report.
//
//	go run ./bench [-quick] [-o report.md]
//
// Run it from the module root, as root on Linux: it builds ./cmd/entrypoint,
// ./examples/app, ./examples/selfbind and the start-up floors (an empty Go
// binary, ./bench/goinit with and without its signals) into a temporary
// directory,
// installs tini, libserver-starter-perl and nginx (for the bind-takeover
// section, -sections takeover) with apt-get when they are missing (a comparison
// whose tool cannot be installed is skipped with a line saying so), runs
// the init inside `unshare --pid --fork --mount-proc` where it must be PID 1,
// and drives the example app with its own load generator on 127.0.0.1.
//
// Every number is measured, none is asserted: each row shows the target
// and PASS or MISS next to the value. Progress goes to stderr, the report to
// stdout (and -o).
//
// The binary re-executes itself in helper roles (BENCH_ROLE): an app that
// makes thousands of orphans, and an app that timestamps the signals it
// gets. Nothing here may be imported by the init: it is a tool beside it.
package main
