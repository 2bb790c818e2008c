// Command skipcheck reads `go test -json` on stdin, prints what plain
// `go test` would (package ok/FAIL lines, build errors, the output of failed
// tests), and then lists every skipped test. It exits 1 when a test was
// skipped that the allow-list does not name: a runner without root, unshare
// or chromium must fail CI, not turn the PID-1 suites into "ok".
//
//	go test -json ./... | go run ./internal/skipcheck -allow scripts/skip-allowlist.txt
//
// The allow-list has one skip per line: the package (its path inside the
// module, like e2e/k8s), the full test name (subtests as go prints them,
// like TestCompose/docker_compose) and the reason it may skip. '#' starts a
// comment.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	allowPath := flag.String("allow", "", "allow-list file (package, test, reason per line)")
	flag.Parse()
	allow := map[key]string{}
	if *allowPath != "" {
		var err error
		if allow, err = readAllowList(*allowPath); err != nil {
			fmt.Fprintf(os.Stderr, "skipcheck: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(run(os.Stdin, os.Stdout, allow))
}

// key names one test; pkg is the import path as go test reports it.
type key struct{ pkg, test string }

// event is test2json's TestEvent (go doc test2json); build events carry
// ImportPath instead of Package.
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

type skip struct {
	key
	reason  string
	allowed string // the allow-list's reason, "" if not listed
}

// run copies the interesting part of the stream to out and returns the
// exit code: 1 when a skip is not allowed, 0 otherwise. Whether the tests
// passed is go test's exit code, not this one's.
func run(in io.Reader, out io.Writer, allow map[key]string) int {
	w := bufio.NewWriter(out)
	defer w.Flush()
	// Output of a running test is kept until it ends: shown if it fails,
	// scanned for the reason if it skips, dropped if it passes.
	running := map[key]*strings.Builder{}
	var skips []skip
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (go test's own messages); pass it on.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{ev.Package, ev.Test}
		switch {
		case ev.Action == "build-output":
			w.WriteString(ev.Output)
		case ev.Test == "" && ev.Action == "output":
			if ev.Output != "PASS\n" { // plain go test prints only the ok line
				w.WriteString(ev.Output)
			}
		case ev.Test == "" && ev.Action == "fail":
			// A panic or timeout ends the package with tests still
			// running: their output is the story.
			var open []key
			for r := range running {
				if r.pkg == ev.Package {
					open = append(open, r)
				}
			}
			sort.Slice(open, func(i, j int) bool { return open[i].test < open[j].test })
			for _, r := range open {
				w.WriteString(running[r].String())
				delete(running, r)
			}
		case ev.Test == "":
		case ev.Action == "output":
			b := running[k]
			if b == nil {
				b = &strings.Builder{}
				running[k] = b
			}
			b.WriteString(ev.Output)
		case ev.Action == "fail":
			if b := running[k]; b != nil {
				w.WriteString(b.String())
			}
			delete(running, k)
		case ev.Action == "skip":
			s := skip{key: k, reason: skipReason(running[k])}
			s.allowed = allowed(allow, k)
			skips = append(skips, s)
			delete(running, k)
		case ev.Action == "pass":
			delete(running, k)
		}
		w.Flush()
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "skipcheck: read go test -json: %v\n", err)
		return 1
	}
	return report(w, skips)
}

// skipReason is what the test logged, t.Skip's message last: its output
// without go test's "=== RUN" and "--- SKIP" lines.
func skipReason(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	var lines []string
	for l := range strings.SplitSeq(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " ")
}

// allowed returns the allow-list's reason for k: an entry with the same
// test whose package is k's import path or a path suffix of it.
func allowed(allow map[key]string, k key) string {
	for a, reason := range allow {
		if a.test == k.test && (a.pkg == k.pkg || strings.HasSuffix(k.pkg, "/"+a.pkg)) {
			return reason
		}
	}
	return ""
}

func report(w io.Writer, skips []skip) int {
	if len(skips) == 0 {
		fmt.Fprintln(w, "skips: none")
		return 0
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	unexpected := 0
	fmt.Fprintln(w, "\nskipped tests:")
	for _, s := range skips {
		if s.allowed == "" {
			unexpected++
			fmt.Fprintf(w, "  NOT ALLOWED %s %s: %s\n", s.pkg, s.test, s.reason)
			continue
		}
		fmt.Fprintf(w, "  allowed %s %s: %s (allow-list: %s)\n", s.pkg, s.test, s.reason, s.allowed)
	}
	fmt.Fprintf(w, "skips: %d, %d allowed by the allow-list, %d not allowed\n", len(skips), len(skips)-unexpected, unexpected)
	if unexpected > 0 {
		fmt.Fprintln(w, "skipcheck: FAIL: tests were skipped that CI must run; give the runner what they need, or add them with a reason to the allow-list")
		return 1
	}
	return 0
}

// readAllowList reads "package test reason..." lines.
func readAllowList(path string) (map[key]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read allow-list: %w", err)
	}
	allow := map[key]string{}
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.Index(line, "#"); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want \"package test reason\", got %q", path, i+1, strings.TrimSpace(line))
		}
		allow[key{f[0], f[1]}] = strings.Join(f[2:], " ")
	}
	return allow, nil
}
