package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Linux signal numbers for the real-time range. glibc reserves 32 and 33
// for its threads implementation, so its SIGRTMIN (and kill -l's) is 34.
const (
	sigRTMin = 34
	sigRTMax = 64
	// rtMid is the first signal kill -l names from SIGRTMAX (SIGRTMAX-14).
	rtMid = 50
)

// signalNames are the kernel's names for 1..31, in kill -l order.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

// signalAliases are other names Linux tools accept for the same numbers.
var signalAliases = map[string]syscall.Signal{
	"SIGIOT": 6, "SIGCLD": 17, "SIGPOLL": 29, "SIGUNUSED": 31,
}

// ParseSignal reads a signal as "SIGTERM", "TERM", "term", "15",
// "SIGRTMIN+3" or "RTMAX-2". It is what kill(1) and every config field
// use, so all of them accept the same spellings.
func ParseSignal(s string) (syscall.Signal, error) {
	if sig, ok := parseSignal(strings.TrimSpace(s)); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal; write it like \"SIGTERM\" or \"15\"", s)
}

func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		sig := syscall.Signal(n)
		return sig, validSignal(sig)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	for n, v := range signalNames {
		if v != "" && v == name {
			return syscall.Signal(n), true
		}
	}
	if sig, ok := signalAliases[name]; ok {
		return sig, true
	}
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"SIGRTMIN", sigRTMin, 1}, {"SIGRTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return syscall.Signal(rt.base), true
		}
		op, num := rest[0], rest[1:]
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || num == "" || num[0] == '+' || num[0] == '-' {
			return 0, false
		}
		if (rt.sign > 0 && op != '+') || (rt.sign < 0 && op != '-') {
			return 0, false
		}
		sig := syscall.Signal(rt.base + rt.sign*n)
		return sig, sig >= sigRTMin && sig <= sigRTMax
	}
	return 0, false
}

func validSignal(sig syscall.Signal) bool {
	return (sig >= 1 && sig <= 31) || (sig >= sigRTMin && sig <= sigRTMax)
}

// SignalName gives the name kill -l uses: "SIGTERM", "SIGRTMIN+3",
// "SIGRTMAX-2"; a number outside the known range comes back as "SIG<n>"
// so logs never lose it.
func SignalName(sig syscall.Signal) string {
	switch {
	case sig >= 1 && sig <= 31:
		return signalNames[sig]
	case sig == sigRTMin:
		return "SIGRTMIN"
	case sig == sigRTMax:
		return "SIGRTMAX"
	// bash and procps name the lower half from RTMIN and the upper half
	// from RTMAX; match them so kill -l output looks familiar.
	case sig > sigRTMin && sig < rtMid:
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-sigRTMin)
	case sig >= rtMid && sig < sigRTMax:
		return fmt.Sprintf("SIGRTMAX-%d", sigRTMax-int(sig))
	}
	return "SIG" + strconv.Itoa(int(sig))
}

// Signals lists every signal number ParseSignal accepts, in ascending
// order (1..31, 34..64), for kill -l.
func Signals() []syscall.Signal {
	var out []syscall.Signal
	for n := syscall.Signal(1); n <= sigRTMax; n++ {
		if validSignal(n) {
			out = append(out, n)
		}
	}
	return out
}

// Sys returns the signal as the syscall type.
func (s Signal) Sys() syscall.Signal { return syscall.Signal(s) }

// String returns the kill -l name, "SIGTERM".
func (s Signal) String() string { return SignalName(syscall.Signal(s)) }

// MarshalText writes "SIGTERM"; it also makes Signal usable as a JSON/YAML
// map key (Config.Rewrite).
func (s Signal) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads every spelling ParseSignal accepts.
func (s *Signal) UnmarshalText(b []byte) error { return s.Decode(string(b)) }

// MarshalJSON writes "SIGTERM".
func (s Signal) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads "SIGTERM", "TERM", "15" or the number 15.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var str string
	if len(b) > 0 && b[0] != '"' {
		str = string(b)
	} else if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	return s.Decode(str)
}

// Decode implements envconfig.Decoder.
func (s *Signal) Decode(v string) error {
	sig, err := ParseSignal(v)
	if err != nil {
		return err
	}
	*s = Signal(sig)
	return nil
}
