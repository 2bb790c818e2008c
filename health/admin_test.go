package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status/statustest"
)

const testToken = "s3cret-token-for-tests"

func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func decode(t *testing.T, r reply) actionResponse {
	t.Helper()
	var resp actionResponse
	if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
		t.Fatalf("response is not JSON (%d): %v\n%s", r.code, err, r.body)
	}
	return resp
}

func TestAdminRefusesNetworkWithoutToken(t *testing.T) {
	for _, addr := range []string{":9090", "0.0.0.0:9090", "10.1.2.3:9090", "[::]:9090", "pod.example:9090"} {
		_, err := New(Options{Listen: addr, Admin: true, Controller: statustest.New()})
		if !errors.Is(err, ErrAdminUnprotected) {
			t.Errorf("New(admin on %s, no token) = %v, want ErrAdminUnprotected", addr, err)
			continue
		}
		if !strings.Contains(err.Error(), "ENTRYPOINT_ADMIN_TOKEN") || !strings.Contains(err.Error(), addr) {
			t.Errorf("error does not say how to fix it: %v", err)
		}
	}
	for _, o := range []Options{
		{Listen: "127.0.0.1:9090", Admin: true},
		{Listen: "[::1]:9090", Admin: true},
		{Listen: ":9090", Admin: true, AdminToken: "x"},
		{Listen: ":9090"},
	} {
		o.Controller = statustest.New()
		if _, err := New(o); err != nil {
			t.Errorf("New(%s admin=%v token=%v) = %v, want ok", o.Listen, o.Admin, o.AdminToken != "", err)
		}
	}
}

func TestAdminWithToken(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1), statustest.Running("api", 4))
	_, base, logs := start(t, Options{Controller: f, Admin: true, AdminToken: testToken})
	api := base + "/debug/admin"

	// The page is a shell without secrets; it loads without the token.
	r := do(t, nil, "GET", api, nil)
	if r.code != 200 || !strings.Contains(r.body, "entrypoint admin") {
		t.Fatalf("GET /debug/admin = %d", r.code)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("admin page CSP = %q", csp)
	}
	if strings.Contains(r.body, testToken) {
		t.Error("the admin page contains the token")
	}

	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		code   int
	}{
		{"status needs the token", "GET", "/status", nil, 401},
		{"wrong token", "GET", "/status", bearer("wrong"), 401},
		{"token prefix", "GET", "/status", bearer(testToken[:5]), 401},
		{"basic auth is not bearer", "GET", "/status", map[string]string{"Authorization": "Basic " + testToken}, 401},
		{"reload needs the token", "POST", "/reload?app=web", nil, 401},
		{"shutdown needs the token", "POST", "/shutdown", map[string]string{"X-Entrypoint-Admin": "1"}, 401},
		{"GET on an action", "GET", "/reload?app=web", bearer(testToken), 405},
		{"HEAD on an action", "HEAD", "/restart?app=web", bearer(testToken), 405},
		{"GET on shutdown", "GET", "/shutdown", bearer(testToken), 405},
		{"cross-site with a token", "POST", "/reload?app=web", map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site is not same-origin", "POST", "/reload?app=web", map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "same-site"}, 403},
		{"unknown app", "POST", "/reload?app=nope", bearer(testToken), 404},
	} {
		r := do(t, nil, tc.method, api+tc.path, tc.hdr)
		if r.code != tc.code {
			t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, r.code, r.body, tc.code)
		}
		if tc.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate: Bearer", tc.name)
		}
		if tc.code == 405 && r.header.Get("Allow") != "POST" {
			t.Errorf("%s: 405 with Allow %q, want POST", tc.name, r.header.Get("Allow"))
		}
	}
	if calls := f.Calls(); len(calls) != 0 || len(f.Shutdowns()) != 0 {
		t.Fatalf("refused requests reached the supervisor: %v %v", calls, f.Shutdowns())
	}

	st := decode(t, do(t, nil, "GET", api+"/status", bearer(testToken)))
	if !st.OK || st.Status == nil || len(st.Status.Apps) != 2 || st.Status.Apps[1].Current.N != 4 {
		t.Fatalf("status = %+v", st)
	}
	hdr := map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "same-origin"}
	r = do(t, nil, "POST", api+"/reload?app=web", hdr)
	res := decode(t, r)
	if r.code != 200 || !res.OK || len(res.Results) != 1 || res.Results[0].To != 2 {
		t.Fatalf("reload web = %d %+v", r.code, res)
	}
	r = do(t, nil, "POST", api+"/restart", bearer(testToken))
	if res := decode(t, r); r.code != 200 || len(res.Results) != 2 {
		t.Fatalf("restart all = %d %+v", r.code, res)
	}
	if want := []string{"reload web", "restart "}; !slices.Equal(f.Calls(), want) {
		t.Errorf("supervisor calls = %q, want %q", f.Calls(), want)
	}

	// A rolled-back swap is a conflict that says why; a supervisor error is a 500.
	f.Tune(func(k *statustest.Knobs) { k.Rollback = "readiness gate timed out after 60s" })
	r = do(t, nil, "POST", api+"/reload?app=api", bearer(testToken))
	if res := decode(t, r); r.code != 409 || res.OK || !strings.Contains(res.Error, "readiness gate timed out") {
		t.Errorf("rolled-back reload = %d %+v", r.code, res)
	}
	f.Tune(func(k *statustest.Knobs) { k.Err = errors.New("supervisor is shutting down") })
	r = do(t, nil, "POST", api+"/reload?app=api", bearer(testToken))
	if res := decode(t, r); r.code != 500 || res.OK || res.Error != "supervisor is shutting down" {
		t.Errorf("failed reload = %d %+v", r.code, res)
	}

	r = do(t, nil, "POST", api+"/shutdown", bearer(testToken))
	if r.code != 200 || len(f.Shutdowns()) != 1 {
		t.Errorf("shutdown = %d, supervisor got %v", r.code, f.Shutdowns())
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the token was logged:\n%s", logs)
	}
}

func TestAdminOnLoopbackWithoutToken(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	_, base, _ := start(t, Options{Controller: f, Admin: true})
	api := base + "/debug/admin"
	custom := map[string]string{"X-Entrypoint-Admin": "1"}

	// A plain cross-site form post carries no custom header.
	if r := do(t, nil, "POST", api+"/reload?app=web", nil); r.code != 403 {
		t.Errorf("POST without %s = %d, want 403", adminHeader, r.code)
	}
	if r := do(t, nil, "POST", api+"/reload?app=web", map[string]string{"X-Entrypoint-Admin": "1", "Sec-Fetch-Site": "cross-site"}); r.code != 403 {
		t.Errorf("cross-site POST = %d, want 403", r.code)
	}
	// DNS rebinding: the browser thinks it talks to evil.example.
	if r := do(t, nil, "POST", api+"/reload?app=web", map[string]string{"X-Entrypoint-Admin": "1", "Host": "evil.example"}); r.code != 403 {
		t.Errorf("POST with a foreign Host = %d, want 403", r.code)
	}
	if len(f.Calls()) != 0 {
		t.Fatalf("refused requests reached the supervisor: %v", f.Calls())
	}
	r := do(t, nil, "POST", api+"/reload?app=web", map[string]string{"X-Entrypoint-Admin": "1", "Sec-Fetch-Site": "same-origin"})
	if res := decode(t, r); r.code != 200 || !res.OK {
		t.Errorf("same-origin POST = %d %+v", r.code, res)
	}
	if r := do(t, nil, "GET", api+"/status", custom); r.code != 200 {
		t.Errorf("status = %d", r.code)
	}
}

// Issue 11 item 16: an admin caller that leaves during a swap is logged as
// such, not as a failed swap ("ok=false error=context canceled").
func TestAdminCallerLeavingIsNotAFailure(t *testing.T) {
	f := statustest.New(statustest.Running("web", 1))
	began := make(chan string, 1)
	f.Tune(func(k *statustest.Knobs) { k.Block, k.BlockBegins, k.Began = true, true, began })
	_, base, logs := start(t, Options{Controller: f, Admin: true})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/debug/admin/reload?app=web", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Entrypoint-Admin", "1")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-began // the swap started
	cancel()
	<-errc
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "admin caller left") {
		if time.Now().After(deadline) {
			t.Fatalf("no log that the caller left:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l := logs.String(); strings.Contains(l, "ok=false") || !strings.Contains(l, "started=web") {
		t.Errorf("log:\n%s\nwant the caller's leaving with started=web, not ok=false", l)
	}
}
