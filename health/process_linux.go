package health

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/entrypoint/entrypoint/internal/procstat"
)

// userHZ is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// architecture Go supports on Linux.
const userHZ = 100

// procReader returns a reader of process metrics from /proc. The boot
// time, which never changes, is read once: /proc/stat sums interrupt
// counters over every CPU and is slow to produce on a large host.
func procReader() func(pid int) (procSample, error) {
	boot := sync.OnceValues(bootTime)
	return func(pid int) (procSample, error) {
		b, err := boot()
		if err != nil {
			return procSample{}, err
		}
		return readProcess(pid, b)
	}
}

// readProcess reads the process metrics of pid from /proc. The stat line
// is required; fds, limits and network counters are reported when
// readable (another user's process hides its fd table).
func readProcess(pid int, boot float64) (procSample, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return procSample{}, fmt.Errorf("process metrics of %d: %w", pid, err)
	}
	s := procSample{
		cpuSeconds: float64(st.UTime+st.STime) / userHZ,
		startTime:  boot + float64(st.StartTime)/userHZ,
		virtual:    float64(st.VSize),
		resident:   float64(st.RSS) * float64(os.Getpagesize()),
	}
	dir := "/proc/" + strconv.Itoa(pid)
	if n, err := countFDs(dir + "/fd"); err == nil {
		s.openFDs, s.fdsOK = float64(n), true
	}
	if b, err := os.ReadFile(dir + "/limits"); err == nil {
		fds, errF := softLimit(b, "Max open files")
		vm, errV := softLimit(b, "Max address space")
		if errF == nil && errV == nil {
			s.maxFDs, s.maxVM, s.limitsOK = fds, vm, true
		}
	}
	if b, err := os.ReadFile(dir + "/net/netstat"); err == nil {
		in, errI := netstat(b, "IpExt", "InOctets")
		out, errO := netstat(b, "IpExt", "OutOctets")
		if errI == nil && errO == nil {
			s.netIn, s.netOut, s.netOK = in, out, true
		}
	}
	return s, nil
}

// bootTime is the btime line of /proc/stat: the epoch second the
// kernel booted, from which stat's start times count.
func bootTime() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read boot time: %w", err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read boot time: btime %q: %w", bytes.TrimSpace(v), err)
			}
			return float64(n), nil
		}
	}
	return 0, errors.New("read boot time: no btime line in /proc/stat")
}

func countFDs(dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}

// softLimit reads the soft limit of one row of /proc/PID/limits, whose
// columns are aligned: "Max open files            1024      4096      files".
func softLimit(limits []byte, row string) (float64, error) {
	for line := range bytes.Lines(limits) {
		rest, ok := strings.CutPrefix(string(line), row)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		if f[0] == "unlimited" {
			return unlimited, nil
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("limit %q: %q: %w", row, f[0], err)
		}
		return float64(n), nil
	}
	return 0, fmt.Errorf("no limit %q", row)
}

// netstat reads one counter of /proc/PID/net/netstat, where each group is
// a line of names followed by a line of values with the same prefix.
func netstat(b []byte, group, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	prefix := group + ":"
	for sc.Scan() {
		names, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok || !sc.Scan() {
			continue
		}
		values, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			break
		}
		nf, vf := strings.Fields(names), strings.Fields(values)
		for i, n := range nf {
			if n == name && i < len(vf) {
				v, err := strconv.ParseUint(vf[i], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("netstat %s %s: %q: %w", group, name, vf[i], err)
				}
				return float64(v), nil
			}
		}
		break
	}
	return 0, fmt.Errorf("netstat: no %s %s", group, name)
}
