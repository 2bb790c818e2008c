package watch

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// tsDir matches the kubelet's timestamped data directories
// (..2026_11_25_08_00_00.123456789): a mount whose source lies inside one
// was bound to one version of a ConfigMap or Secret.
// It is compiled where it is used, not in a package init that every
// start-up would pay for (issue 13).
const tsDir = `^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$`

// SubPathWarnings returns one message for each path that can never see an
// update because it is a subPath mount: a file bind-mounted on its own, or
// anything mounted from inside one version of a ConfigMap or Secret volume.
// Paths that do not exist or cannot be told apart are not reported.
// It reads /proc/self/mountinfo.
func SubPathWarnings(paths []string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil
	}
	return subPathWarnings(paths, mounts)
}

type mount struct {
	root, point string
}

func subPathWarnings(paths []string, mounts []mount) []string {
	var warnings []string
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		fi, err := os.Stat(real)
		if err != nil {
			continue
		}
		// The mount that holds real: the last one listed with the longest
		// matching mount point (later mounts hide earlier ones).
		var m *mount
		for i := range mounts {
			mp := mounts[i].point
			if real == mp || mp == "/" || strings.HasPrefix(real, mp+"/") {
				if m == nil || len(mp) >= len(m.point) {
					m = &mounts[i]
				}
			}
		}
		switch {
		case m == nil:
		case m.point == real && !fi.IsDir():
			warnings = append(warnings, fmt.Sprintf(
				"watched file %s is mounted on its own (a subPath mount?): it never receives updates; mount the whole volume as a directory and watch that", p))
		case hasTSComponent(m.root):
			warnings = append(warnings, fmt.Sprintf(
				"watched path %s is mounted from one version of a ConfigMap or Secret volume (%s, a subPath mount): it never receives updates; mount the whole volume as a directory and watch that", p, m.root))
		}
	}
	return warnings
}

func hasTSComponent(p string) bool {
	re := regexp.MustCompile(tsDir)
	for _, c := range strings.Split(p, "/") {
		if re.MatchString(c) {
			return true
		}
	}
	return false
}

// parseMountinfo reads the root (field 4) and mount point (field 5) of
// each line of proc_pid_mountinfo(5).
func parseMountinfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mounts = append(mounts, mount{root: unescape(fields[3]), point: unescape(fields[4])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// unescape undoes the kernel's octal escapes of space, tab, newline and
// backslash in mountinfo paths (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
