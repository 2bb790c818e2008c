package swap

// The bind takeover (DESIGN rule 12) with servers nobody here wrote: each
// binds its own port, which entrypoint already holds, and is hot-swapped
// under load with a new connection per request.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port nobody listens on now. The servers
// under test bind a port they are told, so it cannot be :0.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// need fails the test when a server the suite drives is missing: CI
// installs them all (scripts/test.sh), so a missing one is a broken
// machine, not a reason to skip.
func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/test.sh installs it): %v", bin, err)
	}
	return p
}

// swapUnderLoad runs n swaps through the control socket while 4 clients
// send requests on new connections, and returns the counts.
func swapUnderLoad(t *testing.T, e *ep, addr string, n int) (int, map[string]int, []string) {
	t.Helper()
	l := startLoad(addr, 4, false)
	for i := 0; i < n; i++ {
		if r := e.reload("app"); !r.OK {
			l.stopCounts()
			t.Fatalf("swap %d: %+v", i+1, r)
		}
	}
	return l.stopCounts()
}

func checkTakeover(t *testing.T, e *ep) {
	t.Helper()
	a := e.app("app")
	if a.Takeover != "active" {
		t.Fatalf("takeover state %q, want active", a.Takeover)
	}
	if !strings.Contains(e.stderr.String(), "bind answered with the owned socket") {
		t.Fatalf("no takeover of the app's bind in the log:\n%s", e.stderr.String())
	}
}

// A plain Go net/http server that ignores LISTEN_FDS and sends no READY=1:
// ready at its listen(), 20 swaps, nothing refused. With a lame duck
// nothing fails; without, net/http itself drops the requests it reads
// after Shutdown began (EOF, the app's own), and only those.
func TestTakeoverGoServer(t *testing.T) {
	for _, lameDuck := range []string{"500ms", "0"} {
		t.Run("lame-duck="+lameDuck, func(t *testing.T) {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			e := startEP(t, "--listen", addr, "--", selfbindBin, "-addr", addr, "-lame-duck", lameDuck)
			checkTakeover(t, e)
			ok, failures, ex := swapUnderLoad(t, e, addr, 20)
			t.Logf("20 swaps of selfbind -lame-duck %s: %d ok, failures %v %q", lameDuck, ok, failures, ex)
			if ok == 0 || failures["refused"] > 0 || lameDuck != "0" && len(failures) > 0 {
				t.Fatalf("20 swaps: %d ok, failures %v", ok, failures)
			}
			for kind := range failures {
				if kind != "eof" {
					t.Fatalf("failure of kind %s: only net/http's EOF after Shutdown is the app's own", kind)
				}
			}
			if g := e.app("app").Current.N; g != 21 {
				t.Fatalf("generation %d after 20 swaps, want 21", g)
			}
		})
	}
}

// Python's http.server: blocking sockets, listen(5). SIGTERM kills it at
// once, so a request it had accepted may fail; none may be refused, and
// the backlog stays the owned socket's, not Python's 5.
func TestTakeoverPythonHTTPServer(t *testing.T) {
	py := need(t, "python3")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startEP(t, "--listen", addr, "--", py, "-m", "http.server", strconv.Itoa(port), "--bind", "127.0.0.1", "--directory", t.TempDir())
	checkTakeover(t, e)
	if q := listenBacklog(t, port); q < 128 {
		t.Fatalf("listen backlog of %s is %d: the app's listen(5) reached the owned socket", addr, q)
	}
	ok, failures, ex := swapUnderLoad(t, e, addr, 20)
	t.Logf("20 swaps of python3 -m http.server: %d ok, failures %v %q", ok, failures, ex)
	if failures["refused"] > 0 || ok == 0 {
		t.Fatalf("20 swaps: %d ok, %d refused", ok, failures["refused"])
	}
}

// listenBacklog reads the backlog of the socket listening on port (ss
// shows it as Send-Q of a listener).
func listenBacklog(t *testing.T, port int) int {
	t.Helper()
	out, err := exec.Command("ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		t.Fatalf("ss: no listener on %d: %q", port, out)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("ss: %q", out)
	}
	return n
}

// nginxConf writes a minimal nginx configuration under dir that serves
// body on addr, with the site in conf.d so a test can change it.
func nginxConf(t *testing.T, dir, addr, body string) string {
	t.Helper()
	for _, d := range []string{"conf.d", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o777)
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  server {
    listen %[2]s;
    include %[1]s/conf.d/*.conf;
  }
}
`, dir, addr))
	writeFile(t, filepath.Join(dir, "conf.d", "site.conf"), fmt.Sprintf("location / { return 200 \"%s\\n\"; }\n", body))
	return conf
}

// nginx (master and workers) with its graceful stop signal: 20 swaps,
// nothing fails; a config change in a watched directory swaps it; a full
// restart refuses nothing.
func TestTakeoverNginx(t *testing.T) {
	nginx := need(t, "nginx")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := nginxConf(t, dir, addr, "v1")
	e := startEP(t, "--listen", addr, "--stop-signal", "SIGQUIT",
		"--watch", filepath.Join(dir, "conf.d"), "--watch-debounce", "100ms",
		"--", nginx, "-c", conf, "-p", dir, "-e", "stderr")
	checkTakeover(t, e)
	ok, failures, ex := swapUnderLoad(t, e, addr, 20)
	if len(failures) > 0 || ok == 0 {
		t.Fatalf("20 swaps: %d ok, failures %v, e.g. %q", ok, failures, ex)
	}
	t.Logf("20 swaps of nginx: %d requests, 0 failed", ok)

	l := startLoad(addr, 4, false)
	gen := e.app("app").Current.N
	writeFile(t, filepath.Join(dir, "conf.d", "site.conf"), "location / { return 200 \"v2\\n\"; }\n")
	e.waitGeneration("app", gen+1)
	eventually(t, fresh(5*time.Second), addr, "/", func(b string) bool { return strings.TrimSpace(b) == "v2" })
	e.signal(syscall.SIGUSR2)
	e.waitGeneration("app", gen+2)
	l.finish(t, "config change and full restart of nginx")
}

// node's http server binds "localhost" in its own way (libuv); 20 swaps
// with server.close() on SIGTERM fail nothing.
func TestTakeoverNode(t *testing.T) {
	node := need(t, "node")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	script := filepath.Join(t.TempDir(), "server.js")
	writeFile(t, script, `const http = require('http');
const server = http.createServer((req, res) => res.end('node generation ' + process.env.ENTRYPOINT_GENERATION + '\n'));
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => server.close());
`)
	e := startEP(t, "--listen", addr, "--", node, script, strconv.Itoa(port))
	checkTakeover(t, e)
	ok, failures, ex := swapUnderLoad(t, e, addr, 20)
	if len(failures) > 0 || ok == 0 {
		t.Fatalf("20 swaps: %d ok, failures %v, e.g. %q", ok, failures, ex)
	}
	t.Logf("20 swaps of node: %d requests, 0 failed", ok)
}

// A release that exits before it listens is rolled back; the old
// generation keeps serving and nothing fails.
func TestTakeoverRollbackBeforeListen(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	broken := filepath.Join(t.TempDir(), "broken")
	script := fmt.Sprintf(`if [ -e %s ]; then exec %s -exit-before-listen; fi; exec %s -addr %s`, broken, selfbindBin, selfbindBin, addr)
	e := startEP(t, "--listen", addr, "--", "sh", "-c", script)
	l := startLoad(addr, 4, false)
	writeFile(t, broken, "")
	r := e.reload("app")
	if r.OK || !strings.Contains(r.Reason, "exited before it was ready") {
		t.Fatalf("swap to a release that exits: %+v", r)
	}
	l.finish(t, "rolled-back swap")
	if a := e.app("app"); !a.Ready || a.Current.N != 1 {
		t.Fatalf("after rollback: %+v", a)
	}
}

// A server that calls shutdown(SHUT_RDWR) on its listener when it stops
// would break the socket for every generation; the takeover suppresses it.
func TestTakeoverShutdownOfListenerSuppressed(t *testing.T) {
	py := need(t, "python3")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	script := filepath.Join(t.TempDir(), "server.py")
	writeFile(t, script, `import signal, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
def stop(*_):
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    c.close()
`)
	e := startEP(t, "--listen", addr, "--", py, script, strconv.Itoa(port))
	for i := 2; i <= 3; i++ {
		if r := e.reload("app"); !r.OK {
			t.Fatalf("swap: %+v", r)
		}
		// Once the old generation has shut its listener down and gone,
		// a new connection must still reach the new one.
		deadline := time.Now().Add(30 * time.Second)
		for len(e.app("app").Others) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		get(t, fresh(5*time.Second), addr, "/")
	}
	if !strings.Contains(e.stderr.String(), "shutdown of an owned listener suppressed") {
		t.Fatalf("no suppressed shutdown in the log:\n%s", e.stderr.String())
	}
}

// An owned port bound at an address that does not overlap the owned one
// is refused with a line naming both and the fix, not an EADDRINUSE
// crash of unknown cause.
func TestTakeoverAddressMismatch(t *testing.T) {
	port := freePort(t)
	e := startEPNoWait(t, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--", selfbindBin, "-addr", fmt.Sprintf("127.0.0.2:%d", port))
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		t.Fatal("entrypoint did not end")
	}
	log := e.stderr.String()
	want := fmt.Sprintf("the app binds 127.0.0.2:%d, but entrypoint owns port %d as 127.0.0.1:%d", port, port, port)
	if e.code == 0 || !strings.Contains(log, want) || !strings.Contains(log, fmt.Sprintf("--listen 127.0.0.2:%d", port)) {
		t.Fatalf("exit %d; want a line %q naming the fix:\n%s", e.code, want, log)
	}
}

// Wildcards: the owned address and the one the app binds overlap, so the
// app gets the owned socket whichever way round they are written. Go's
// net.Listen("tcp", "0.0.0.0:P") makes an IPv6 dual-stack socket, which
// may get an IPv4 listener; an app's IPv4 socket never gets an IPv6 one:
// Python's http.server binding 0.0.0.0 under --listen :P is refused with a
// line naming both and the --listen that fits.
func TestTakeoverWildcards(t *testing.T) {
	for _, c := range []struct{ owned, app string }{
		{":%d", ":%d"},
		{"0.0.0.0:%d", "0.0.0.0:%d"},
		{"0.0.0.0:%d", "127.0.0.1:%d"},
		{"127.0.0.1:%d", "0.0.0.0:%d"},
		{"127.0.0.1:%d", "localhost:%d"},
	} {
		port := freePort(t)
		owned, app := fmt.Sprintf(c.owned, port), fmt.Sprintf(c.app, port)
		t.Run(owned+"_"+app, func(t *testing.T) {
			e := startEP(t, "--listen", owned, "--", selfbindBin, "-addr", app)
			checkTakeover(t, e)
			get(t, fresh(5*time.Second), fmt.Sprintf("127.0.0.1:%d", port), "/")
		})
	}
	py := need(t, "python3")
	port := freePort(t)
	e := startEPNoWait(t, "--listen", fmt.Sprintf(":%d", port), "--", py, "-m", "http.server", strconv.Itoa(port), "--bind", "0.0.0.0", "--directory", t.TempDir())
	select {
	case <-e.done:
	case <-time.After(60 * time.Second):
		t.Fatal("entrypoint did not end")
	}
	want := fmt.Sprintf("the app binds 0.0.0.0:%d (IPv4), but entrypoint owns port %d as [::]:%d (IPv6)", port, port, port)
	if log := e.stderr.String(); e.code == 0 || !strings.Contains(log, want) || !strings.Contains(log, fmt.Sprintf("--listen 0.0.0.0:%d", port)) {
		t.Fatalf("exit %d; want %q and the fix:\n%s", e.code, want, log)
	}
}

// With the takeover off, an app that binds the owned address itself dies
// with its own "address already in use"; entrypoint says that it holds the
// address and what to do.
func TestTakeoverOffNamesTheHolder(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := startEPNoWait(t, "--takeover", "off", "--listen", addr, "--", selfbindBin, "-addr", addr)
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		t.Fatal("entrypoint did not end")
	}
	log := e.stderr.String()
	if e.code == 0 || !strings.Contains(log, "entrypoint holds that address") || !strings.Contains(log, "--takeover off") {
		t.Fatalf("exit %d, log:\n%s", e.code, log)
	}
}

// entrypoint under entrypoint: the outer one's filter already has a
// listener, so the kernel refuses the inner one's (EBUSY). The inner init
// says so once, reports it, and still swaps an app that takes fd 3; with
// --takeover on it refuses to start, naming the reason.
func TestTakeoverUnavailableUnderAnotherListener(t *testing.T) {
	outer := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	inner := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	innerSock := filepath.Join(t.TempDir(), "inner.sock")
	e := startEP(t, "--listen", outer, "--readiness", "delay", "--readiness-delay", "1s", "--",
		entrypointBin, "--control-socket", innerSock, "--health-listen", "off", "--listen", inner, "--", exampleBin)
	in := &ep{t: t, socket: innerSock, done: make(chan struct{}), stderr: e.stderr}
	in.waitReady()
	a := in.app("app")
	if !strings.HasPrefix(a.Takeover, "unavailable") || !strings.Contains(a.Takeover, "EBUSY") && !strings.Contains(a.Takeover, "device or resource busy") {
		t.Fatalf("inner takeover state %q, want unavailable with EBUSY", a.Takeover)
	}
	if n := strings.Count(e.stderr.String(), "bind takeover unavailable"); n != 1 {
		t.Fatalf("%d lines say the takeover is unavailable, want 1:\n%s", n, e.stderr.String())
	}
	l := startLoad(inner, 4, false)
	if r := in.reload("app"); !r.OK {
		t.Fatalf("swap of the fd-3 app without takeover: %+v", r)
	}
	l.finish(t, "swap without takeover")

	on := startEPNoWait(t, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--readiness", "delay", "--readiness-delay", "1s", "--",
		entrypointBin, "--control-socket", filepath.Join(t.TempDir(), "on.sock"), "--health-listen", "off",
		"--takeover", "on", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--", exampleBin)
	select {
	case <-on.done:
	case <-time.After(30 * time.Second):
		t.Fatal("entrypoint did not end")
	}
	if log := on.stderr.String(); !strings.Contains(log, "--takeover on, but the bind takeover is unavailable") || !strings.Contains(log, "another seccomp listener") {
		t.Fatalf("--takeover on under another listener, log:\n%s", log)
	}
}
