package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrFormat is wrapped by every error about a stat line that does not
// parse.
var ErrFormat = errors.New("procstat: malformed /proc/PID/stat")

// Stat holds the fields of /proc/PID/stat the binary uses. Times are in
// clock ticks (USER_HZ, 100 on every Linux architecture Go supports).
type Stat struct {
	PID       int
	Comm      string // between the first '(' and the last ')'
	State     byte   // field 3: R, S, D, Z, T, ...
	PPID      int    // field 4
	PGRP      int    // field 5
	UTime     uint64 // field 14
	STime     uint64 // field 15
	StartTime uint64 // field 22, ticks after boot: with PID it names a process for good
	VSize     uint64 // field 23, virtual memory in bytes
	RSS       uint64 // field 24, resident set in pages
}

// Read reads and parses /proc/pid/stat. A process that is gone gives an
// error wrapping fs.ErrNotExist (or ESRCH, when it exits mid-read).
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	return Parse(b)
}

// fieldsAfterComm is how many fields Parse needs after the last ')':
// state (field 3) through rss (field 24). Every kernel since 2.6
// writes 52 fields (from 3.5 on), older ones at least 41.
const fieldsAfterComm = 22

// Parse parses the content of a /proc/PID/stat file. It never panics,
// whatever b holds.
func Parse(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("%w: no (comm)", ErrFormat)
	}
	var s Stat
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("%w: pid %q", ErrFormat, clip(b[:open]))
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closing])

	var f [fieldsAfterComm][]byte
	n := 0
	rest := b[closing+1:]
	for n < len(f) {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
		n++
	}
	if n < len(f) {
		return Stat{}, fmt.Errorf("%w: %d fields after comm, want %d", ErrFormat, n, len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: state %q", ErrFormat, clip(f[0]))
	}
	s.State = f[0][0]
	// f[i] is field i+3 of proc_pid_stat(5).
	var errs []error
	s.PPID, errs = atoi(f[1], "ppid", errs)
	s.PGRP, errs = atoi(f[2], "pgrp", errs)
	s.UTime, errs = atou(f[11], "utime", errs)
	s.STime, errs = atou(f[12], "stime", errs)
	s.StartTime, errs = atou(f[19], "starttime", errs)
	s.VSize, errs = atou(f[20], "vsize", errs)
	s.RSS, errs = atou(f[21], "rss", errs)
	if len(errs) > 0 {
		return Stat{}, fmt.Errorf("%w: %w", ErrFormat, errors.Join(errs...))
	}
	return s, nil
}

func atoi(b []byte, name string, errs []error) (int, []error) {
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 0, append(errs, fmt.Errorf("%s %q", name, clip(b)))
	}
	return n, errs
}

func atou(b []byte, name string, errs []error) (uint64, []error) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, append(errs, fmt.Errorf("%s %q", name, clip(b)))
	}
	return n, errs
}

// clip keeps an echoed field short: a stat line is never long, but Parse
// may be handed anything.
func clip(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}
