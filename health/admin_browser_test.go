package health

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/entrypoint/entrypoint/status/statustest"
)

const chromiumPath = "/usr/bin/chromium"

// TestAdminPageInBrowser drives the admin page in headless Chromium: the
// inline script must run under the page's CSP, send the token it was given
// and show the generation the reload produced.
func TestAdminPageInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no %s (apt-get install -y chromium): %v", chromiumPath, err)
	}
	f := statustest.New(statustest.Running("web", 1), statustest.Running("api", 3))
	_, base, _ := start(t, Options{Controller: f, Admin: true, AdminToken: testToken})

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root in a container has no usable sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// Listen's callback must not block or call back into chromedp: collect.
	var mu sync.Mutex
	var thrown []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			thrown = append(thrown, ev.ExceptionDetails.Text)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range thrown {
			t.Errorf("page script threw: %s", e)
		}
	}()

	gen := chromedp.CSS(`tr[data-app="web"] td.gen`)
	waitFor := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	step("open the admin page", chromedp.Navigate(base+"/debug/admin"))
	// Without the token the page says what it needs, and shows nothing.
	step("wait for the token prompt", waitFor(`document.getElementById('summary').textContent.includes('admin token')`))
	summary := text("#summary")
	step("type the token", chromedp.SendKeys(chromedp.CSS("#token"), testToken))
	step("use the token", chromedp.Click(chromedp.CSS("#usetoken")))
	step("see generation 1", waitFor(`(document.querySelector('tr[data-app="web"] td.gen') || {}).textContent === '1'`))
	step("click Reload", chromedp.Click(chromedp.CSS(`tr[data-app="web"] button.reload`)))
	step("see generation 2", waitFor(`(document.querySelector('tr[data-app="web"] td.gen') || {}).textContent === '2'`))
	genText := text(gen)
	step("see the result", waitFor(`document.getElementById('msg').textContent.includes('reload ok')`))
	msg := text("#msg")
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('entrypoint-admin-token')`))
	if err != nil {
		t.Fatalf("read sessionStorage: %v", err)
	}
	if !strings.Contains(summary, "enter the admin token") {
		t.Errorf("before the token the page says %q", summary)
	}
	if genText != "2" || !strings.Contains(msg, "web: generation 1 → 2") {
		t.Errorf("after Reload: generation %q, message %q", genText, msg)
	}
	if stored != testToken {
		t.Errorf("sessionStorage holds %q, want the token", stored)
	}
	if calls := f.Calls(); !slices.Equal(calls, []string{"reload web"}) {
		t.Errorf("supervisor calls = %q, want one reload of web", calls)
	}
}
