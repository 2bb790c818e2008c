package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first inherited socket is fd 3.
const listenFDsStart = 3

// listeners returns the sockets to serve on and where they came from:
// "systemd" (LISTEN_FDS), "server-starter" (SERVER_STARTER_PORT) or "bind".
func listeners(addr string) ([]net.Listener, string, error) {
	ls, err := systemdListeners()
	if err != nil || ls != nil {
		return ls, "systemd", err
	}
	ls, err = serverStarterListeners()
	if err != nil || ls != nil {
		return ls, "server-starter", err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "bind", fmt.Errorf("bind %s: %w", addr, err)
	}
	return []net.Listener{l}, "bind", nil
}

// systemdListeners implements sd_listen_fds(3) with unset_environment: the
// fds are ours only when LISTEN_PID names this process; otherwise they were
// meant for a parent that forgot to unset the variables, and the caller
// falls back to binding. It returns nil, nil when there is no handoff.
func systemdListeners() ([]net.Listener, error) {
	nfds := os.Getenv("LISTEN_FDS")
	pid := os.Getenv("LISTEN_PID")
	names := os.Getenv("LISTEN_FDNAMES")
	// Unset so that anything this process starts does not take them too.
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if nfds == "" {
		return nil, nil
	}
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("parse LISTEN_FDS=%q: want a positive count", nfds)
	}
	nameList := strings.Split(names, ":")
	fds := make([]int, n)
	fdNames := make([]string, n)
	for i := range n {
		fds[i] = listenFDsStart + i
		fdNames[i] = "LISTEN_FD_" + strconv.Itoa(fds[i])
		if i < len(nameList) && nameList[i] != "" {
			fdNames[i] = nameList[i]
		}
	}
	return fileListeners(fds, fdNames)
}

// serverStarterListeners reads Server::Starter's SERVER_STARTER_PORT,
// "host:port=fd;/path/to/sock=fd;...", as start_server(1) sets it. It returns
// nil, nil when the variable is absent.
func serverStarterListeners() ([]net.Listener, error) {
	v := os.Getenv("SERVER_STARTER_PORT")
	if v == "" {
		return nil, nil
	}
	var fds []int
	var names []string
	for part := range strings.SplitSeq(v, ";") {
		if part == "" {
			continue
		}
		i := strings.LastIndexByte(part, '=')
		if i < 0 {
			return nil, fmt.Errorf("parse SERVER_STARTER_PORT entry %q: want addr=fd", part)
		}
		fd, err := strconv.Atoi(part[i+1:])
		if err != nil || fd < 0 {
			return nil, fmt.Errorf("parse SERVER_STARTER_PORT entry %q: bad fd", part)
		}
		fds = append(fds, fd)
		names = append(names, part[:i])
	}
	if len(fds) == 0 {
		return nil, fmt.Errorf("parse SERVER_STARTER_PORT=%q: no sockets", v)
	}
	return fileListeners(fds, names)
}

// fileListeners wraps inherited fds. net.FileListener dups the fd, so the
// original is closed afterwards; the dup is close-on-exec (the runtime opens
// everything that way), the original is marked so first in case wrapping fails.
func fileListeners(fds []int, names []string) ([]net.Listener, error) {
	var ls []net.Listener
	for i, fd := range fds {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), names[i])
		if f == nil {
			closeAll(ls)
			return nil, fmt.Errorf("use inherited fd %d (%s): not open", fd, names[i])
		}
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("use inherited fd %d (%s): %w", fd, names[i], err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}
