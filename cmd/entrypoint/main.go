// Command entrypoint is a container init: it runs as PID 1, reaps zombies,
// forwards signals, owns the app's listening sockets and hot-swaps the app
// without dropping a connection. See the README for the whole story.
//
// It needs Linux. Built for another system it keeps what a developer's
// machine can use (validate, probe, version, kill and the control client)
// and says so for the rest (serve_other.go).
//
// This file only parses and dispatches; every behaviour lives in a package.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes of the binary itself (the app's own codes pass through).
const (
	exitUsage   = 2 // bad flags, env or config file
	exitStartup = 1 // a socket could not be bound, a port is taken, ...
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	if filepath.Base(argv[0]) == "kill" {
		return killMain("kill", argv[1:], stdout, stderr)
	}
	args := argv[1:]
	if len(args) > 0 {
		switch args[0] {
		case "kill":
			stopEarlySignals()
			return killMain("kill", args[1:], stdout, stderr)
		case "validate":
			stopEarlySignals()
			return validateMain(args[1:], stdout, stderr)
		case "reload", "restart", "shutdown", "status":
			stopEarlySignals()
			return controlMain(args[0], args[1:], stdout, stderr)
		case "install":
			stopEarlySignals()
			return installMain(args[1:], stdout, stderr)
		case "probe":
			stopEarlySignals()
			return probeMain(args[1:], stdout, stderr)
		case "version", "--version":
			fmt.Fprintf(stdout, "entrypoint %s\n", version)
			return 0
		}
	}
	return serve(args, stderr)
}

// printErr prints every line of a (joined) error with the program's name,
// one problem a line.
func printErr(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "entrypoint: %s\n", line)
	}
}
