//go:build !linux

package main

import (
	"fmt"
	"io"
	"runtime"
)

// The init itself needs Linux throughout (a child subreaper, the
// reaper's wait4 loop, signal forwarding with Linux's signal set, the
// seccomp bind takeover), and `install` copies /proc/self/exe into a
// Linux container. Rather than a binary that half works, both say so at
// once; the subcommands that only parse, print or dial stay usable.

func serve(_ []string, stderr io.Writer) int { return linuxOnly(stderr) }

func installMain(_ []string, _, stderr io.Writer) int { return linuxOnly(stderr) }

// stopEarlySignals has nothing to undo: only the Linux build catches
// signals before main (package earlysig).
func stopEarlySignals() {}

func linuxOnly(stderr io.Writer) int {
	fmt.Fprintf(stderr, "entrypoint: runs on Linux only (it is a container init); this build is for %s\n", runtime.GOOS)
	return exitStartup
}
