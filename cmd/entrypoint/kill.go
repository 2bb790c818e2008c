package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/entrypoint/entrypoint/config"
)

// killUsage follows procps-ng's kill(1), which Debian's /bin/kill is.
const killUsage = `
Usage:
 kill [options] <pid> [...]

Options:
 <pid> [...]            send signal to every <pid> listed
 -<signal>, -s, --signal <signal>
                        specify the <signal> to be sent
 -l, --list=[<signal>]  list all signal names, or convert one to a name
 -L, --table            list all signal names in a nice table

 -h, --help     display this help and exit
 -V, --version  output version information and exit
`

// killMain is the kill(1) personality: invoked as "kill" through a
// symlink, or as "entrypoint kill", so that `kubectl exec POD -- kill
// -USR1 1` works in a scratch image. Messages and exit codes are those of
// procps-ng: 0 when every PID was signalled, 1 otherwise.
func killMain(prog string, args []string, stdout, stderr io.Writer) int {
	return runKill(prog, args, stdout, stderr, syscall.Kill)
}

// runKill is killMain with the kill(2) call passed in, so that the
// argument parsing can be fuzzed without signalling real processes.
func runKill(prog string, args []string, stdout, stderr io.Writer, kill func(pid int, sig syscall.Signal) error) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: "+format+"\n", append([]any{prog}, a...)...)
		return 1
	}
	sig, sigSet := syscall.SIGTERM, false
	setSig := func(v string) bool {
		s, err := killSignal(v)
		if err != nil {
			return false
		}
		sig, sigSet = s, true
		return true
	}
	var pids []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			pids = append(pids, args[i+1:]...)
			i = len(args)
		case arg == "-h" || arg == "--help":
			fmt.Fprint(stdout, killUsage)
			return 0
		case arg == "-V" || arg == "--version":
			fmt.Fprintf(stdout, "kill from entrypoint %s\n", version)
			return 0
		case arg == "-L" || arg == "--table":
			fmt.Fprint(stdout, signalTable())
			return 0
		case arg == "-l" || arg == "--list" || strings.HasPrefix(arg, "--list="):
			var v string
			if strings.HasPrefix(arg, "--list=") {
				v = strings.TrimPrefix(arg, "--list=")
			} else if i+1 < len(args) {
				v = args[i+1]
			}
			if v == "" {
				fmt.Fprint(stdout, signalList())
				return 0
			}
			return listOne(prog, v, stdout, stderr)
		case arg == "-s" || arg == "--signal":
			if i+1 >= len(args) {
				return fail("option requires an argument -- 's'%s", killUsage)
			}
			i++
			if !setSig(args[i]) {
				return fail("unknown signal name '%s'", args[i])
			}
		case strings.HasPrefix(arg, "--signal="):
			if v := strings.TrimPrefix(arg, "--signal="); !setSig(v) {
				return fail("unknown signal name '%s'", v)
			}
		case strings.HasPrefix(arg, "-") && len(arg) > 1 && !sigSet:
			// The first -X is always the signal, as in procps: "kill -1"
			// is SIGHUP with no pid (usage), never kill(-1).
			if !setSig(arg[1:]) {
				return fail("unknown signal name '%s'", arg[1:])
			}
		default:
			// Once the signal is set, "-N" is a process group.
			pids = append(pids, arg)
		}
	}
	if len(pids) == 0 {
		fmt.Fprint(stderr, killUsage)
		return 1
	}
	// Parse every pid before signalling any, as procps does: a typo must
	// not leave half the list signalled.
	nums := make([]int, len(pids))
	for i, p := range pids {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fail("failed to parse argument: '%s'", p)
		}
		nums[i] = n
	}
	code := 0
	for _, pid := range nums {
		if err := kill(pid, sig); err != nil {
			code = fail("(%d): %s", pid, errnoText(err))
		}
	}
	return code
}

// killSignal parses a signal for kill(1): a name or number, and also 0,
// the existence check scripts use (kill -0 PID).
func killSignal(v string) (syscall.Signal, error) {
	if v == "0" {
		return 0, nil
	}
	return config.ParseSignal(v)
}

func listOne(prog, v string, stdout, stderr io.Writer) int {
	if n, err := strconv.Atoi(v); err == nil {
		// kill -l 143 names the signal of an exit status, as shells do.
		if n > 128 {
			n -= 128
		}
		name := config.SignalName(syscall.Signal(n))
		if n < 1 || n > 64 || strings.HasPrefix(name, "signal ") {
			fmt.Fprintf(stderr, "%s: unknown signal name %s\n", prog, v)
			return 1
		}
		fmt.Fprintln(stdout, strings.TrimPrefix(name, "SIG"))
		return 0
	}
	s, err := config.ParseSignal(v)
	if err != nil {
		fmt.Fprintf(stderr, "%s: unknown signal name %s\n", prog, v)
		return 1
	}
	fmt.Fprintln(stdout, int(s))
	return 0
}

func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// classicSignals are 1..31 in kill -l order.
func classicSignals() []string {
	var names []string
	for n := 1; n <= 31; n++ {
		names = append(names, strings.TrimPrefix(config.SignalName(syscall.Signal(n)), "SIG"))
	}
	return names
}

func signalList() string {
	var b strings.Builder
	line := 0
	for _, n := range classicSignals() {
		if line > 0 && line+1+len(n) > 72 {
			b.WriteString("\n")
			line = 0
		}
		if line > 0 {
			b.WriteString(" ")
			line++
		}
		b.WriteString(n)
		line += len(n)
	}
	b.WriteString("\n")
	return b.String()
}

func signalTable() string {
	var b strings.Builder
	for i, n := range classicSignals() {
		fmt.Fprintf(&b, "%2d %-8s", i+1, n)
		if (i+1)%7 == 0 {
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}
