// Package procstat reads /proc/PID/stat, the one place the binary (init,
// graceful, health and the bench tool) learns a process's parent, process
// group, CPU time, start time and memory.
//
// The line is "pid (comm) state ppid pgrp ...". comm is the process's own
// name, up to 15 bytes the process chooses (prctl PR_SET_NAME), so it may
// hold spaces and ')' (proc_pid_stat(5)): every field is read after the
// LAST ')' of the line, never by splitting the whole line on spaces.
//
// It owns that parsing and nothing else: it never signals, opens no other
// file of /proc, keeps no state and caches nothing (a pid may be reused the
// moment after it was read; callers that must not be fooled compare
// StartTime, as init's leftover scan does). prometheus/procfs is not used
// here (nor linked at all since issue 13): its Proc.Stat scans
// all 52 fields with fmt.Fscan (slow on a scan of every process) and
// fails for a field it cannot convert that none of our callers need.
package procstat
