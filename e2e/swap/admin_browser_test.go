package swap

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The admin page of the real binary in a real headless Chromium: the page
// takes the token, Reload hot-swaps the real app, and the page shows the
// new generation, which new connections then reach.
func TestAdminPageReloadsRealApp(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no %s (apt-get install chromium; scripts/test.sh does): %v", chromium, err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "s3cret-token\n")
	health := freeAddr(t)
	e := startEP(t, "--health-listen", health, "--admin", "--admin-token-file", tokenFile,
		"--listen", "127.0.0.1:0", "--", exampleBin)
	pid1 := e.app("app").Current.Pid

	// Without the token every admin API route refuses.
	resp, err := http.Post("http://"+health+"/debug/admin/reload?app=app", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST reload without token = %d, want 401", resp.StatusCode)
	}

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
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
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	wait := func(js string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(30*time.Second))
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("open the admin page", chromedp.Navigate("http://"+health+"/debug/admin"))
	step("wait for the token prompt", wait(`document.getElementById('summary').textContent.includes('admin token')`))
	step("type the token", chromedp.SendKeys(chromedp.CSS("#token"), "s3cret-token"))
	step("use the token", chromedp.Click(chromedp.CSS("#usetoken")))
	step("see generation 1", wait(`(document.querySelector('tr[data-app="app"] td.gen') || {}).textContent === '1'`))
	step("click Reload", chromedp.Click(chromedp.CSS(`tr[data-app="app"] button.reload`)))
	step("see generation 2", wait(`(document.querySelector('tr[data-app="app"] td.gen') || {}).textContent === '2'`))
	msg, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#msg")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "reload ok") {
		t.Fatalf("page message after Reload: %q", msg)
	}
	a := e.app("app")
	if a.Current.N != 2 || a.Current.Pid == pid1 {
		t.Fatalf("status after the page's Reload: %+v", a.Current)
	}
	eventually(t, fresh(5*time.Second), e.addr("app"), "/", func(b string) bool {
		return field(b, "pid") != "" && field(b, "pid") != itoa(pid1)
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
