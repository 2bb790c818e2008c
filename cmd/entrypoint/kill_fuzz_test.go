package main

import (
	"bytes"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// FuzzKillArgs runs kill(1)'s argument parsing on arbitrary argv
// (newline-separated) with kill(2) replaced by a recorder. It must never
// panic; it exits 0 or 1; it signals only with a valid signal and only
// pids written as numbers in argv; and, as procps does, it signals
// nothing at all when any pid fails to parse.
func FuzzKillArgs(f *testing.F) {
	for _, s := range []string{
		"-USR1\n1", "-s\nHUP\n1\n2", "--signal=TERM\n--\n-1", "-9\n-5", "-0\n7",
		"-l", "-l\n143", "--list=USR1", "-L", "-h", "-V", "1\nx", "-s",
		"--signal=NOPE\n1", "-RTMIN+3\n4", "-SIGRTMAX-1\n4", "--\n-1\n2", "-",
		"-15\n-9\n3", "-l\n-1", "-l\n99999999999999999999", "-\n1", "-s\n0\n1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, argv string) {
		args := strings.Split(argv, "\n")
		var sent []int
		var stdout, stderr bytes.Buffer
		code := runKill("kill", args, &stdout, &stderr, func(pid int, sig syscall.Signal) error {
			if sig < 0 || sig > 64 || (sig > 31 && sig < 34) {
				t.Fatalf("kill(%d, %d): not a signal", pid, sig)
			}
			sent = append(sent, pid)
			return nil
		})
		if code != 0 && code != 1 {
			t.Fatalf("exit code %d; kill(1) exits 0 or 1", code)
		}
		if code == 1 && stderr.Len() == 0 {
			t.Fatalf("failed without a message on stderr (stdout %q)", stdout.String())
		}
		if len(sent) == 0 {
			return
		}
		if code != 0 {
			t.Fatalf("signalled %v but exit %d with every kill(2) succeeding", sent, code)
		}
		numbers := map[int]bool{}
		for _, a := range args {
			if n, err := strconv.Atoi(a); err == nil {
				numbers[n] = true
			}
		}
		for _, pid := range sent {
			if !numbers[pid] {
				t.Fatalf("signalled pid %d, which argv %q does not name", pid, args)
			}
		}
	})
}
