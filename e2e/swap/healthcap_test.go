package swap

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Issue 11 item 4: hundreds of idle kept-alive connections to the health
// listener of an init with a low descriptor limit. Without a cap they took
// every descriptor: /livez timed out (a kubelet restart) and the control
// socket could not accept. With it, the init closes idle connections when
// it is full, probes and the CLI keep answering, and its descriptors stay
// under the limit.
func TestHealthSurvivesIdleConnectionFlood(t *testing.T) {
	health := freeAddr(t)
	e := startEPWrapped(t, []string{"prlimit", "--nofile=64:64", "--"},
		"--health-listen", health, "--readiness", "none", "--", "sleep", "1000")
	e.waitReady()

	const flood = 400
	var wg sync.WaitGroup
	conns := make(chan net.Conn, flood)
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", health, 10*time.Second)
			if err != nil {
				return
			}
			conns <- c
			c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "GET /livez HTTP/1.1\r\nHost: flood\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close() // and keep the connection open, idle
			}
		}()
	}
	t.Cleanup(func() {
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	wg.Wait()

	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 20; i++ {
		resp, err := c.Get("http://" + health + "/livez")
		if err != nil {
			t.Fatalf("/livez with %d idle connections around: %v", flood, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/livez: %d", resp.StatusCode)
		}
	}
	if st := e.status(); len(st.Apps) != 1 {
		t.Fatalf("status: %+v", st)
	}
	if n := countFDs(t, e.cmd.Process.Pid); n >= 64 {
		t.Fatalf("the init holds %d descriptors, at its limit of 64", n)
	}
}
