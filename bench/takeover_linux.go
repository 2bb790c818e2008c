//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// takeoverStatus is the part of `entrypoint status --json` the bench reads.
type takeoverStatus struct {
	Apps []struct {
		Ready    bool   `json:"ready"`
		Takeover string `json:"takeover"`
		Current  *struct {
			N int `json:"n"`
		} `json:"current"`
		Others []json.RawMessage `json:"others"`
	} `json:"apps"`
}

// selfBinder is a server that binds its own port, run under entrypoint
// with the bind takeover and swapped through the control socket.
type selfBinder struct {
	name    string
	addr    string
	control string
	cmd     *exec.Cmd
	logf    string
	ep      string
}

func (b *bench) startSelfBinder(name, addr string, epArgs, app []string) (*selfBinder, error) {
	dir := filepath.Join(b.t.dir, fmt.Sprintf("takeover-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &selfBinder{name: name, addr: addr, control: b.controlSocket(), logf: filepath.Join(dir, "log"), ep: b.t.entrypoint}
	logf, err := os.Create(s.logf)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	argv := append([]string{"--listen", addr, "--health-listen", "off", "--control-socket", s.control,
		"--drain-timeout", "10s", "--takeover", "on"}, epArgs...)
	argv = append(append(argv, "--"), app...)
	s.cmd = exec.Command(b.t.entrypoint, argv...)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.status()
		if err == nil && st.Apps[0].Ready {
			if st.Apps[0].Takeover != "active" {
				stopInit(s.cmd, 30*time.Second)
				return nil, fmt.Errorf("%s: takeover %q, want active", name, st.Apps[0].Takeover)
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			stopInit(s.cmd, 30*time.Second)
			return nil, fmt.Errorf("%s: not ready within 30s (%v); log: %s", name, err, tail(s.logf))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *selfBinder) cli(args ...string) ([]byte, error) {
	out, err := exec.Command(s.ep, append(args, "--control-socket", s.control, "--json")...).Output()
	if err != nil {
		return out, fmt.Errorf("entrypoint %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

func (s *selfBinder) status() (takeoverStatus, error) {
	var st takeoverStatus
	out, err := s.cli("status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil || len(st.Apps) != 1 {
		return st, fmt.Errorf("parse status (%v): %s", err, out)
	}
	return st, nil
}

// reload swaps through `entrypoint reload`, which waits for the outcome,
// and then waits until the old generation is gone, so that every swap
// starts from one generation. Its timing is only the total, the swap's
// duration as the init reports it: the app writes no events to split it.
func (s *selfBinder) reload() (reloadTiming, error) {
	out, err := s.cli("reload")
	if err != nil {
		return reloadTiming{}, fmt.Errorf("%w: %s", err, out)
	}
	var resp struct {
		OK      bool `json:"ok"`
		Results []struct {
			OK       bool          `json:"ok"`
			Reason   string        `json:"reason"`
			Duration time.Duration `json:"duration"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Results) != 1 {
		return reloadTiming{}, fmt.Errorf("parse reload (%v): %s", err, out)
	}
	if r := resp.Results[0]; !r.OK {
		return reloadTiming{}, fmt.Errorf("reload failed: %s", r.Reason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.status()
		if err == nil && len(st.Apps[0].Others) == 0 {
			return reloadTiming{total: resp.Results[0].Duration}, nil
		}
		if time.Now().After(deadline) {
			return reloadTiming{}, fmt.Errorf("old generation still there 30s after the reload: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxConf writes a minimal nginx configuration that serves addr from
// dir: master + 2 workers, in the foreground, everything under dir.
func nginxConf(dir, addr string) (string, error) {
	conf := fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log stderr notice;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / { return 200 "nginx pid=$pid\n"; }
  }
}
`, dir, addr)
	p := filepath.Join(dir, "nginx.conf")
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

func (b *bench) takeoverSection(ctx context.Context) {
	s := b.r.section("Bind takeover: servers that bind their own port")
	if b.t.entrypoint == "" {
		s.note("skipped: entrypoint did not build: %v", b.t.entryErr)
		return
	}
	b.takeoverSwapRows(s)
	if ctx.Err() != nil {
		return
	}
	b.bindCost(s)
	if ctx.Err() != nil {
		return
	}
	b.shutdownThroughput(s)
}

func (b *bench) takeoverSwapRows(s *section) {
	reqs := s.table("Server under entrypoint --takeover on", "Keep-alive", "Swaps", "Requests ok", "Refused", "Reset", "EOF", "Timeout", "Other",
		"Swap (entrypoint reload): median / max", "Target", "Result")
	type srv struct {
		name   string
		epArgs []string
		app    func(addr string) ([]string, error)
	}
	var servers []srv
	if b.t.selfbind == "" {
		s.note("selfbind skipped: %v", b.t.selfbindErr)
	} else {
		servers = append(servers, srv{"selfbind (Go net/http, binds itself; plain Shutdown)", nil,
			func(addr string) ([]string, error) { return []string{b.t.selfbind, "-addr", addr}, nil }},
			srv{"selfbind -lame-duck 1s", nil,
				func(addr string) ([]string, error) {
					return []string{b.t.selfbind, "-addr", addr, "-lame-duck", "1s"}, nil
				}})
	}
	if b.t.nginx == "" {
		s.note("nginx skipped: %v", b.t.nginxErr)
	} else {
		servers = append(servers, srv{"nginx (master + 2 workers), --stop-signal SIGQUIT", []string{"--stop-signal", "SIGQUIT"},
			func(addr string) ([]string, error) {
				dir, err := os.MkdirTemp(b.t.dir, "nginx-")
				if err != nil {
					return nil, err
				}
				conf, err := nginxConf(dir, addr)
				return []string{b.t.nginx, "-c", conf}, err
			}})
	}
	for _, sv := range servers {
		for _, keepAlive := range []bool{true, false} {
			addr := "127.0.0.1:" + strconv.Itoa(freePort())
			app, err := sv.app(addr)
			if err != nil {
				s.note("%s: %v", sv.name, err)
				continue
			}
			p, err := b.startSelfBinder(sv.name, addr, sv.epArgs, app)
			if err != nil {
				s.note("%v", err)
				continue
			}
			sc := b.reloadsUnderLoad(p.name, p.addr, p.logf, keepAlive, b.swaps, p.reload)
			if err := stopInit(p.cmd, 30*time.Second); err != nil {
				s.note("%s did not stop cleanly: %v", sv.name, err)
			}
			st := sc.stats
			ka := map[bool]string{true: "on", false: "off"}[keepAlive]
			var total []time.Duration
			for _, t := range sc.timings {
				total = append(total, t.total)
			}
			times := "—"
			if len(total) > 0 {
				times = dur(median(total)) + " / " + dur(percentile(total, 100))
			}
			eof := strconv.Itoa(st.counts[classEOF])
			if st.reusedRaces > 0 {
				eof += fmt.Sprintf(" (%d idle-close races)", st.reusedRaces)
			}
			// Refused is the takeover's promise; a kept-alive request that
			// meets the old generation's idle close is the server's drain.
			target := "0 failed"
			pass := st.failed() == 0
			if keepAlive {
				target = "0 refused, failures only idle-close races"
				pass = st.counts[classRefused] == 0 && st.failed() == st.reusedRaces
			}
			reqs.row(sv.name, ka, strconv.Itoa(sc.reloads), strconv.Itoa(st.counts[classOK]),
				strconv.Itoa(st.counts[classRefused]), strconv.Itoa(st.counts[classReset]), eof,
				strconv.Itoa(st.counts[classTimeout]), strconv.Itoa(st.counts[classOther]+st.counts[classNon2xx]),
				times, target, verdict(pass && sc.err == nil))
			if sc.err != nil {
				s.note("%s (keep-alive %s): %v", sv.name, ka, sc.err)
			}
		}
	}
	s.note("Each server binds 127.0.0.1:PORT itself; entrypoint owns that address (`--listen`) and hands the app the owned socket in its bind(). Readiness is the default gate: the app's listen() on the owned socket. A swap is `entrypoint reload` (the time it reports: trigger → new generation listening → old one signalled), then the bench waits until the old generation is gone before the next one.")
	s.note("selfbind (examples/selfbind) stops with http.Server.Shutdown, which closes idle kept-alive connections at once; nginx's graceful stop (SIGQUIT) does the same. A request sent on such a connection as it closes fails with EOF or reset before any byte of the answer ('idle-close races'): the server's drain, which clients such as net/http retry; the takeover's part is that no connection is refused.")
	s.note("Plain selfbind with keep-alive off: Go's net/http drops, unanswered, a request it reads after Shutdown began, so a connection the old generation accepted a moment before SIGTERM would fail. Under the takeover each swapped-in generation accepts on a socket of its own and the old one is signalled only once its accept queue is empty (README, Decisions, \"Steering\"), so none is left for it to drop; `-lame-duck 1s` (close the listener, answer what was accepted with Connection: close, then Shutdown) is the server-side fix where that steering does not apply (fds 3.. without the takeover).")
}
