//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/entrypoint/entrypoint/internal/procstat"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// rssKiB reads VmRSS from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) {
	m, err := rssParts(pid)
	return m.total, err
}

// rss is a process's resident memory in KiB: the total (VmRSS), its
// anonymous part (heap, stacks: RssAnon) and the part mapped from files
// (the binary's pages in the page cache, shared and reclaimable: RssFile).
type rss struct{ total, anon, file int64 }

// rssParts reads VmRSS, RssAnon and RssFile from /proc/<pid>/status.
func rssParts(pid int) (rss, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, fmt.Errorf("read status of %d: %w", pid, err)
	}
	var m rss
	found := false
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.total, found = n, true
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		}
	}
	if !found {
		return rss{}, fmt.Errorf("read status of %d: no VmRSS", pid)
	}
	return m, nil
}

// cpuTicks returns utime+stime of pid from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0, err
	}
	return int64(st.UTime + st.STime), nil
}

// openFDs counts the entries of /proc/<pid>/fd.
func openFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("list fds of %d: %w", pid, err)
	}
	return len(es), nil
}
