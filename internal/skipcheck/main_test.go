package main

import (
	"strings"
	"testing"
)

// A stream as go test -json (Go 1.26) writes it for a package with a
// passing, a failing, a skipped test and a skipped subtest.
const stream = `{"Action":"start","Package":"example.com/m/p"}
{"Action":"run","Package":"example.com/m/p","Test":"TestPass"}
{"Action":"output","Package":"example.com/m/p","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestPass","Output":"    a_test.go:3: quiet\n"}
{"Action":"pass","Package":"example.com/m/p","Test":"TestPass"}
{"Action":"output","Package":"example.com/m/p","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestSkip","Output":"    a_test.go:4: no widget here\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/p","Test":"TestSkip"}
{"Action":"output","Package":"example.com/m/p","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestFail","Output":"    a_test.go:5: boom\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"example.com/m/p","Test":"TestFail"}
{"Action":"output","Package":"example.com/m/p","Test":"TestSub/a_b","Output":"    a_test.go:6: sub 1\n"}
{"Action":"output","Package":"example.com/m/p","Test":"TestSub/a_b","Output":"--- SKIP: TestSub/a_b (0.00s)\n"}
{"Action":"skip","Package":"example.com/m/p","Test":"TestSub/a_b"}
{"Action":"output","Package":"example.com/m/p","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/p","Output":"FAIL\texample.com/m/p\t0.08s\n"}
{"Action":"fail","Package":"example.com/m/p"}
{"ImportPath":"example.com/m/q","Action":"build-output","Output":"q/x.go:1:1: expected 'package'\n"}
{"ImportPath":"example.com/m/q","Action":"build-fail"}
not json at all
`

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow map[key]string
		code  int
		want  []string
	}{
		{"nothing allowed", nil, 1, []string{
			"NOT ALLOWED example.com/m/p TestSkip: a_test.go:4: no widget here",
			"NOT ALLOWED example.com/m/p TestSub/a_b: a_test.go:6: sub 1",
			"skips: 2, 0 allowed by the allow-list, 2 not allowed",
		}},
		{"all allowed", map[key]string{{"p", "TestSkip"}: "why", {"m/p", "TestSub/a_b"}: "because"}, 0, []string{
			"allowed example.com/m/p TestSkip: a_test.go:4: no widget here (allow-list: why)",
			"skips: 2, 2 allowed by the allow-list, 0 not allowed",
		}},
		{"the parent does not allow a subtest", map[key]string{{"p", "TestSkip"}: "why", {"p", "TestSub"}: "no"}, 1, []string{
			"NOT ALLOWED example.com/m/p TestSub/a_b",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			if code := run(strings.NewReader(stream), &out, tc.allow); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			got := out.String()
			for _, w := range append(tc.want,
				"    a_test.go:5: boom\n--- FAIL: TestFail (0.00s)\n",
				"FAIL\texample.com/m/p\t0.08s\n",
				"q/x.go:1:1: expected 'package'\n",
				"not json at all\n",
			) {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "quiet") {
				t.Errorf("a passing test's log was shown:\n%s", got)
			}
		})
	}
}
