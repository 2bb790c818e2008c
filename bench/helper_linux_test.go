//go:build linux

package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// roleMiniInit is a test-only init: it starts its arguments and reaps
// every child until that one has exited, as PID 1 must.
const roleMiniInit = "mini-init"

func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); role {
	case "":
		os.Exit(m.Run())
	case roleMiniInit:
		os.Exit(miniInit())
	default:
		os.Exit(runHelper(role))
	}
}

func miniInit() int {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"="+roleOrphans)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 1
	}
	// This process is the only waiter here, so wait4(-1) is safe.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 1
		}
		if pid == cmd.Process.Pid {
			return ws.ExitStatus()
		}
	}
}

func unshareOrSkip(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	p, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare not installed")
	}
	return p
}

// The orphan maker's measurement with an init that reaps, and the negative
// control: as PID 1 itself it reaps nothing, and must say so.
func TestOrphansMeasured(t *testing.T) {
	unshare := unshareOrSkip(t)
	// The reaping case gets a budget no loaded machine needs; the
	// negative control, whose orphans never go, only a short one.
	run := func(role string, n int, giveUp string) (remaining int) {
		t.Helper()
		cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", os.Args[0])
		cmd.Env = append(os.Environ(), roleEnv+"="+role, "BENCH_ORPHANS="+strconv.Itoa(n), "BENCH_ORPHANS_TIMEOUT="+giveUp)
		out, err := cmd.Output()
		m := orphansResult.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no result line (%v): %q", role, err, out)
		}
		if string(m[1]) != strconv.Itoa(n) {
			t.Fatalf("%s: made %s orphans, want %d", role, m[1], n)
		}
		remaining, _ = strconv.Atoi(string(m[4]))
		return remaining
	}
	if r := run(roleMiniInit, 100, "60s"); r != 0 {
		t.Errorf("with a reaping init %d orphans remained", r)
	}
	if r := run(roleOrphans, 20, "300ms"); r != 20 {
		t.Errorf("with no reaper %d of 20 orphans remained, want all", r)
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss, err := rssKiB(pid); err != nil || rss <= 0 {
		t.Errorf("rssKiB = %d, %v", rss, err)
	}
	// RssAnon + RssFile + RssShmem = VmRSS; a Go test binary has no shmem.
	if m, err := rssParts(pid); err != nil || m.anon <= 0 || m.file <= 0 || m.anon+m.file > m.total {
		t.Errorf("rssParts = %+v, %v", m, err)
	}
	if _, err := cpuTicks(pid); err != nil {
		t.Errorf("cpuTicks: %v", err)
	}
	before, err := openFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if after, _ := openFDs(pid); after != before+1 {
		t.Errorf("openFDs: %d, then %d after opening one file", before, after)
	}
}
