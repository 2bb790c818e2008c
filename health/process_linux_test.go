package health

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/entrypoint/entrypoint/internal/promtext"
)

func TestSoftLimit(t *testing.T) {
	limits := []byte(`Limit                     Soft Limit           Hard Limit           Units
Max open files            1024                 4096                 files
Max address space         unlimited            unlimited            bytes
`)
	if v, err := softLimit(limits, "Max open files"); err != nil || v != 1024 {
		t.Errorf("open files = %v, %v; want the soft limit 1024", v, err)
	}
	if v, err := softLimit(limits, "Max address space"); err != nil || v != unlimited {
		t.Errorf("address space = %v, %v; want unlimited as client_golang reads it", v, err)
	}
	if _, err := softLimit(limits, "Max locked memory"); err == nil {
		t.Error("a missing row read as a limit")
	}
	if _, err := softLimit([]byte("Max open files            lots      4096      files\n"), "Max open files"); err == nil {
		t.Error("a malformed limit read as a number")
	}
}

func TestNetstat(t *testing.T) {
	b := []byte("TcpExt: SyncookiesSent\nTcpExt: 0\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 1234 5678\n")
	in, errI := netstat(b, "IpExt", "InOctets")
	out, errO := netstat(b, "IpExt", "OutOctets")
	if errI != nil || errO != nil || in != 1234 || out != 5678 {
		t.Errorf("InOctets, OutOctets = %v, %v (%v, %v); want 1234, 5678", in, out, errI, errO)
	}
	for _, bad := range []string{
		"",                               // no file content
		"IpExt: InOctets OutOctets\n",    // names without values
		"IpExt: InOctets\nIpExt: many\n", // not a number
		"IpExt: InOctets\nTcpExt: 1\n",   // values of another group
		"TcpExt: InOctets\nTcpExt: 1\n",  // another group only
		"IpExt: InNoRoutes\nIpExt: 0\n",  // no such counter
	} {
		if v, err := netstat([]byte(bad), "IpExt", "InOctets"); err == nil {
			t.Errorf("%q: read %v, want an error", bad, v)
		}
	}
}

// A process that cannot be read (it exited between the pid lookup and the
// read) costs its own series, not the scrape, and is reported once per
// run of failures, not once per scrape.
func TestProcessCollectorReadFails(t *testing.T) {
	fail := true
	var reported []error
	c := &processCollector{
		prefix: "process",
		pid:    func() (int, bool) { return os.Getpid(), true },
		read: func(pid int) (procSample, error) {
			if fail {
				return procSample{}, errors.New("gone")
			}
			return procReader()(pid)
		},
		onError: func(err error) { reported = append(reported, err) },
	}
	r := promtext.NewRegistry()
	r.Register(c)
	r.Register(promtext.CollectorFunc(func(add func(promtext.Family)) {
		add(promtext.Family{Name: "other", Type: promtext.Gauge, Series: []promtext.Series{{Value: 1}}})
	}))
	scrape := func() string {
		var b strings.Builder
		if err := r.Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for range 3 {
		if got := scrape(); got != "# TYPE other gauge\nother 1\n" {
			t.Fatalf("scrape with an unreadable process:\n%s", got)
		}
	}
	if len(reported) != 1 {
		t.Errorf("reported %d times in 3 failed scrapes, want once", len(reported))
	}
	fail = false
	if got := scrape(); !strings.Contains(got, "process_start_time_seconds ") {
		t.Errorf("no process metrics once readable:\n%s", got)
	}
	fail = true
	scrape()
	if len(reported) != 2 {
		t.Errorf("a new failure after a success reported %d times in all, want 2", len(reported))
	}
}
