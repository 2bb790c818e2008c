package procstat

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// line builds a stat line like the kernel's (52 fields) around comm.
func line(pid int, comm string, ppid, pgrp int, utime, stime, start uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 120 0 0 0 %d %d 0 0 20 0 1 0 %d "+
		"1234567 89 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		pid, comm, ppid, pgrp, pgrp, utime, stime, start)
}

func TestParse(t *testing.T) {
	for _, comm := range []string{
		"sleep", "", "a b", "x) S 9 9 9", ")", "((", "a)(b)", "tab\tname", "15 bytes long!!",
	} {
		s, err := Parse([]byte(line(42, comm, 7, 42, 11, 22, 333)))
		if err != nil {
			t.Errorf("comm %q: %v", comm, err)
			continue
		}
		want := Stat{PID: 42, Comm: comm, State: 'S', PPID: 7, PGRP: 42, UTime: 11, STime: 22, StartTime: 333, VSize: 1234567, RSS: 89}
		if s != want {
			t.Errorf("comm %q: got %+v, want %+v", comm, s, want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	full := line(1, "x", 0, 1, 0, 0, 5)
	for _, b := range []string{
		"",
		"1 x S 0 1",            // no (comm)
		"1 (x",                 // no ')'
		"1 )x( S",              // ')' before '('
		"1 (x)",                // nothing after comm
		"1 (x) S 0 1 1 0 -1",   // too few fields
		"one (x) S" + full[7:], // pid not a number
		strings.Replace(full, " S ", " SS ", 1),
		strings.Replace(full, "S 0 1", "S zero 1", 1),
		"1 (x) S 0 1 1 0 -1 4194560 120 0 0 0 0 0 0 0 20 0 1 0", // cut before starttime
	} {
		if s, err := Parse([]byte(b)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", b, s)
		} else if !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%q): %v does not wrap ErrFormat", b, err)
		}
	}
}

func TestReadSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no /proc/PID/stat on " + runtime.GOOS)
	}
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != os.Getpid() || s.PPID != os.Getppid() || s.StartTime == 0 {
		t.Errorf("Read(self) = %+v; want pid %d, ppid %d and a start time", s, os.Getpid(), os.Getppid())
	}
	if _, err := Read(-1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(-1): %v, want ErrNotExist", err)
	}
}

// FuzzParse: Parse never panics, and whatever comm holds (spaces, ')',
// newlines included) the fields after it come back intact.
func FuzzParse(f *testing.F) {
	f.Add("sleep", int64(3), int64(4))
	f.Add("a) S 1 1", int64(1), int64(1))
	f.Add(")))", int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, comm string, ppid, pgrp int64) {
		_, _ = Parse([]byte(comm)) // any bytes at all: no panic
		b := line(9, comm, int(ppid), int(pgrp), 1, 2, 3)
		s, err := Parse([]byte(b))
		if err != nil {
			t.Fatalf("Parse(%q): %v", b, err)
		}
		if s.PPID != int(ppid) || s.PGRP != int(pgrp) || s.StartTime != 3 || s.Comm != comm {
			t.Fatalf("Parse(%q) = %+v", b, s)
		}
	})
}
