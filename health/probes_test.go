package health

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/status"
	"github.com/entrypoint/entrypoint/status/statustest"
)

func TestProbesFollowAppState(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	_, base, _ := start(t, Options{Controller: f})

	cases := []struct {
		name        string
		set         func(st *status.Status)
		stuck       bool
		live, ready int
		want        string // in the failing probe's body
	}{
		{"starting is live, not ready", func(st *status.Status) {
			st.Apps[0] = status.AppStatus{Name: "web", State: status.StateStarting,
				Others: []status.Generation{{N: 1, Pid: 1001, Phase: status.PhaseStarting}}}
		}, false, 200, 500, "[-]app-web failed: starting"},
		{"running is ready", func(st *status.Status) { st.Apps[0] = statustest.Running("web", 1) }, false, 200, 200, ""},
		{"swapping stays ready", func(st *status.Status) {
			st.Apps[0] = statustest.Running("web", 1)
			st.Apps[0].State = status.StateSwapping
			st.Apps[0].Others = []status.Generation{{N: 2, Pid: 1002, Phase: status.PhaseStarting}}
		}, false, 200, 200, ""},
		{"restarting is not ready", func(st *status.Status) {
			st.Apps[0] = status.AppStatus{Name: "web", State: status.StateRestarting,
				Others: []status.Generation{{N: 1, Pid: 1001, Phase: status.PhaseDraining}}}
		}, false, 200, 500, "[-]app-web failed: restarting"},
		{"shutting down is live, not ready", func(st *status.Status) {
			st.Apps[0] = statustest.Running("web", 1)
			st.Apps[0].State, st.Apps[0].Ready = status.StateStopping, false
			st.ShuttingDown = true
		}, false, 200, 500, "[-]shutdown failed: shutting down"},
		{"crash loop fails liveness", func(st *status.Status) {
			st.ShuttingDown = false
			st.Apps[0] = status.AppStatus{Name: "web", State: status.StateBackoff, CrashLoop: true}
		}, false, 500, 500, "[-]app-web failed: crash loop"},
		{"stuck event loop fails liveness", func(st *status.Status) { st.Apps[0] = statustest.Running("web", 1) },
			true, 500, 200, "[-]supervisor-loop failed: event loop did not answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.Set(tc.set)
			f.Tune(func(k *statustest.Knobs) { k.PingStuck = tc.stuck })
			live := do(t, nil, "GET", base+"/livez", nil)
			ready := do(t, nil, "GET", base+"/readyz", nil)
			health := do(t, nil, "GET", base+"/healthz", nil)
			if live.code != tc.live || ready.code != tc.ready {
				t.Fatalf("livez %d, readyz %d; want %d, %d\nlivez: %s\nreadyz: %s", live.code, ready.code, tc.live, tc.ready, live.body, ready.body)
			}
			wantHealth := 200
			if tc.live != 200 || tc.ready != 200 {
				wantHealth = 500
			}
			if health.code != wantHealth {
				t.Errorf("healthz %d, want %d: %s", health.code, wantHealth, health.body)
			}
			for _, r := range []reply{live, ready, health} {
				if r.code == 200 && r.body != "ok" {
					t.Errorf("passing probe says %q, want ok", r.body)
				}
			}
			if tc.want != "" {
				failing := ready
				if tc.live != 200 {
					failing = live
				}
				if !strings.Contains(failing.body, tc.want) || !strings.Contains(health.body, tc.want) {
					t.Errorf("failing probe and healthz should say %q:\n%s\nhealthz:\n%s", tc.want, failing.body, health.body)
				}
			}
		})
	}
}

func TestProbeVerboseListsEveryCheck(t *testing.T) {
	f := statustest.New(statustest.Running("web", 3), statustest.Running("api", 1))
	_, base, _ := start(t, Options{Controller: f})

	r := do(t, nil, "GET", base+"/livez?verbose", nil)
	want := "[+]supervisor-loop ok\n[+]app-web ok\n[+]app-api ok\nlivez check passed\n"
	if r.code != 200 || r.body != want {
		t.Errorf("livez?verbose = %d %q, want 200 %q", r.code, r.body, want)
	}
	r = do(t, nil, "GET", base+"/readyz?verbose=1", nil)
	want = "[+]shutdown ok\n[+]app-web ok\n[+]app-api ok\nreadyz check passed\n"
	if r.code != 200 || r.body != want {
		t.Errorf("readyz?verbose = %d %q, want 200 %q", r.code, r.body, want)
	}

	f.Set(func(st *status.Status) {
		st.Apps[1] = status.AppStatus{Name: "api", State: status.StateBackoff, CrashLoop: true}
	})
	r = do(t, nil, "GET", base+"/healthz?verbose", nil)
	want = "[+]supervisor-loop ok\n[+]app-web ok\n[-]app-api failed: crash loop; backoff\n[+]shutdown ok\nhealthz check failed\n"
	if r.code != 500 || r.body != want {
		t.Errorf("healthz?verbose = %d %q, want 500 %q", r.code, r.body, want)
	}
	// kube-apiserver's ?exclude lets an operator ignore a known failure.
	r = do(t, nil, "GET", base+"/livez?exclude=app-api", nil)
	if r.code != 200 {
		t.Errorf("livez?exclude=app-api = %d %q, want 200", r.code, r.body)
	}
}

func TestProbeSingleCheckRoutes(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1), status.AppStatus{Name: "api", State: status.StateStarting})
	_, base, _ := start(t, Options{Controller: f})
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/readyz/app-web", 200, "ok"},
		{"/readyz/app-api", 500, "[-]app-api failed: starting\n"},
		{"/readyz/shutdown", 200, "ok"},
		{"/readyz/nope", 404, "no readyz check named \"nope\"\n"},
		{"/livez/supervisor-loop", 200, "ok"},
		{"/livez/app-api", 200, "ok"},
		{"/livez/shutdown", 404, "no livez check named \"shutdown\"\n"},
		{"/healthz/app-api", 500, "[-]app-api failed: starting\n"},
		{"/readyz/app-web/extra", 404, "404 page not found\n"},
	} {
		r := do(t, nil, "GET", base+tc.path, nil)
		if r.code != tc.code || r.body != tc.body {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, r.code, r.body, tc.code, tc.body)
		}
	}
}

func TestServerRoutesAndHardening(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	s, base, _ := start(t, Options{Controller: f})

	r := do(t, nil, "HEAD", base+"/readyz", nil)
	if r.code != 200 {
		t.Errorf("HEAD /readyz = %d, want 200", r.code)
	}
	r = do(t, nil, "POST", base+"/livez", nil)
	if r.code != 405 {
		t.Errorf("POST /livez = %d, want 405", r.code)
	}
	for _, p := range []string{"/", "/debug/pprof/", "/debug/admin", "/metrics", "/debug/vars"} {
		if r := do(t, nil, "GET", base+p, nil); r.code != 404 {
			t.Errorf("GET %s = %d, want 404 (admin off, no registry, no pprof)", p, r.code)
		}
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", r.header.Get("X-Content-Type-Options"))
	}
	if s.srv.ReadHeaderTimeout == 0 || s.srv.ReadTimeout == 0 || s.srv.WriteTimeout == 0 || s.srv.IdleTimeout == 0 || s.srv.MaxHeaderBytes == 0 {
		t.Errorf("server timeouts and limits must all be set: %+v", s.srv)
	}
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	_, base, logs := start(t, Options{Controller: f})
	f.Tune(func(k *statustest.Knobs) { k.StatusPanics = true })
	r := do(t, nil, "GET", base+"/readyz", nil)
	if r.code != 500 || r.body != "internal error\n" {
		t.Errorf("panicking handler = %d %q, want 500 internal error", r.code, r.body)
	}
	if !strings.Contains(logs.String(), "fake status exploded") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
	f.Tune(func(k *statustest.Knobs) { k.StatusPanics = false })
	if r := do(t, nil, "GET", base+"/readyz", nil); r.code != 200 {
		t.Errorf("server does not answer after a panic: %d %q", r.code, r.body)
	}
}

func TestServeBindErrorNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := New(Options{Listen: l.Addr().String(), Controller: statustest.New()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("Serve on a taken address = %v, want an error naming %s", err, l.Addr())
	}
}

func TestNewRequiresController(t *testing.T) {
	if _, err := New(Options{Listen: "127.0.0.1:0"}); err == nil {
		t.Fatal("New without a Controller succeeded")
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Controller: statustest.New(), TLSCert: "x.pem"}); err == nil {
		t.Fatal("New with a cert and no key succeeded")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true, "127.0.0.53:1": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "10.0.0.1:9090": false, "example.com:80": false, "nonsense": false,
	} {
		if got := config.IsLoopback(addr); got != want {
			t.Errorf("config.IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
