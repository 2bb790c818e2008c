package recipes

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// swaps per server: enough to meet every race a swap has, few enough to
// keep six servers' tests short.
const swaps = 10

// pythonApp writes a WSGI app and an ASGI app into dir as app.py.
func pythonApp(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "app.py"), `import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("generation %s\n" % os.environ.get("ENTRYPOINT_GENERATION")).encode()]

async def asgi(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ("generation %s\n" % os.environ.get("ENTRYPOINT_GENERATION")).encode()})
`)
}

// nginx binds its own port (the takeover); its graceful stop is SIGQUIT,
// which entrypoint picks for a command named nginx.
func TestNginx(t *testing.T) {
	nginx := need(t, "nginx")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / { return 200 "nginx\n"; }
  }
}
`, dir, addr))
	// No --stop-signal: entrypoint picks SIGQUIT for nginx and says so.
	e := start(t, "--listen", addr, "--", nginx, "-c", conf, "-p", dir, "-e", "stderr", "-g", "daemon off;")
	if !strings.Contains(e.log.String(), "stop signal SIGQUIT, the graceful stop of nginx") {
		t.Fatalf("no line about nginx's stop signal:\n%s", e.log.String())
	}
	recipe(t, e, addr, swaps)
}

// HAProxy in master-worker mode binds its own port (the takeover) and
// sends READY=1; its graceful stop is SIGUSR1 (soft stop).
func TestHAProxy(t *testing.T) {
	haproxy := need(t, "haproxy")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfg, fmt.Sprintf(`global
  maxconn 1000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend web
  bind %s
  http-request return status 200 content-type text/plain string "haproxy\n"
`, addr))
	e := start(t, "--listen", addr, "--stop-signal", "SIGUSR1", "--", haproxy, "-Ws", "-f", cfg)
	recipe(t, e, addr, swaps)
}

// lighttpd binds its own port (the takeover); its graceful stop is SIGINT.
func TestLighttpd(t *testing.T) {
	lighttpd := need(t, "lighttpd")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	writeFile(t, filepath.Join(dir, "index.html"), "lighttpd\n")
	conf := filepath.Join(dir, "lighttpd.conf")
	writeFile(t, conf, fmt.Sprintf(`server.document-root = %q
server.bind = "127.0.0.1"
server.port = %d
server.errorlog = "/dev/stderr"
index-file.names = ("index.html")
`, dir, port))
	e := start(t, "--listen", addr, "--stop-signal", "SIGINT", "--", lighttpd, "-D", "-f", conf)
	recipe(t, e, addr, swaps)
}

// gunicorn binds its own port (the takeover); SIGTERM is its graceful
// stop, so the default stop signal fits.
func TestGunicorn(t *testing.T) {
	gunicorn := need(t, "gunicorn")
	dir := t.TempDir()
	pythonApp(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := start(t, "--listen", addr, "--", gunicorn, "--chdir", dir, "--bind", addr, "--workers", "2", "app:application")
	recipe(t, e, addr, swaps)
}

// uWSGI takes fd 3 by itself: it sees LISTEN_FDS (systemd socket
// activation) and attaches the socket as one more uwsgi-protocol socket,
// so --protocol http, and no --http-socket (a second socket on the same
// port would speak the uwsgi protocol to HTTP clients). None of its
// signals is a graceful stop by default: SIGTERM reloads, SIGINT and
// SIGQUIT kill. The hook makes SIGTERM a graceful stop, and only the
// master may get it (a worker's SIGTERM is a reload of that worker).
func TestUWSGI(t *testing.T) {
	uwsgi := need(t, "uwsgi")
	dir := t.TempDir()
	pythonApp(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := start(t, "--listen", addr, "--signal-target", "child", "--",
		uwsgi, "--plugin", "python3", "--master", "--processes", "2", "--protocol", "http",
		"--wsgi-file", filepath.Join(dir, "app.py"), "--need-app",
		"--hook-master-start", "unix_signal:15 gracefully_kill_them_all")
	recipe(t, e, addr, swaps)
}

// uvicorn binds its own port (the takeover); SIGTERM is its graceful stop.
func TestUvicorn(t *testing.T) {
	py := need(t, "/usr/bin/python3") // the Debian one, which has python3-uvicorn
	dir := t.TempDir()
	pythonApp(t, dir)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := start(t, "--listen", addr, "--", py, "-m", "uvicorn", "--app-dir", dir, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--lifespan", "off", "--no-access-log", "app:asgi")
	recipeUvicorn(t, e, addr)
}

// recipeUvicorn is recipe for uvicorn, which closes at its stop signal
// every connection that has no request in progress, including one it
// accepted a moment ago whose request it has not read yet. Under the bind
// takeover the old generation gets no new connection once the new one is
// ready (its own socket, steered away from), and its stop signal waits
// until it has accepted what was queued: nothing may fail.
func recipeUvicorn(t *testing.T, e *ep, addr string) {
	t.Helper()
	recipe(t, e, addr, swaps)
}

// uvicorn sends no READY=1. Under --readiness notify it serves while the
// gate waits; entrypoint says so within seconds, naming --readiness and
// its choices, instead of staying silent until the gate's timeout.
func TestNotifyGateSaysWhenNoReady(t *testing.T) {
	py := need(t, "/usr/bin/python3")
	dir := t.TempDir()
	pythonApp(t, dir)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startNoWait(t, "--listen", addr, "--readiness", "notify", "--", py, "-m", "uvicorn", "--app-dir", dir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--lifespan", "off", "--no-access-log", "app:asgi")
	deadline := time.Now().Add(50 * time.Second) // well before the gate's 60 s timeout
	for !strings.Contains(e.log.String(), "no READY=1 yet") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	log := e.log.String()
	if !strings.Contains(log, "no READY=1 yet") || !strings.Contains(log, "set --readiness to auto") || strings.Contains(log, "not ready") {
		t.Fatalf("no early line naming --readiness:\n%s", log)
	}
}
