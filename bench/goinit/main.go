// Command goinit is the floor the start-up benchmark compares entrypoint
// with: the least a Go init can do. It runs its arguments as a child,
// waits for it and exits with its status; nothing else, no config, no
// logger, no reaper, no listener.
//
// Built as is, it first catches every signal entrypoint catches, with the
// same package and in the same order (earlysig: the common ones in its
// init, the rest in the background, all before the child starts; DESIGN
// rule 2). Built with -tags nosignals it catches none. The difference
// between the two is what rule 2 costs any Go init that honours it with
// os/signal, whatever else it does.
//
// It is a measuring stick for ./bench, never part of the image.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goinit PROGRAM [ARG...]")
		os.Exit(2)
	}
	beforeChild()
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goinit:", err)
		os.Exit(127)
	}
}
