package watch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	const info = `22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
35 22 8:1 /var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/cfg/..2026_11_25_08_00_00.123456789/app.yaml /etc/app.yaml ro,relatime - ext4 /dev/sda1 rw
36 22 0:40 / /etc/my\040config rw - tmpfs tmpfs rw
`
	mounts, err := parseMountinfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 3 || mounts[2].point != "/etc/my config" || !hasTSComponent(mounts[1].root) || hasTSComponent(mounts[2].root) {
		t.Errorf("parsed %+v", mounts)
	}
}

// bind mounts src on dst for the test, or skips where mounting is not
// allowed.
func bind(t *testing.T, src, dst string) {
	t.Helper()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("cannot bind mount here: %v", err)
		}
		t.Fatalf("bind %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
		}
	})
}

func TestSubPathWarnings(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.yaml")
	writeFile(t, plain, "a")
	vol := filepath.Join(dir, "vol")
	mustWrite(t, kube(t, vol), "app.yaml", "a", "sub/x", "y")

	// A normal file, a ConfigMap volume, its visible file, a missing path.
	clean := []string{plain, vol, filepath.Join(vol, "app.yaml"), filepath.Join(dir, "missing")}
	if w := SubPathWarnings(clean); len(w) != 0 {
		t.Errorf("warnings for ordinary paths: %q", w)
	}

	// subPath: app.yaml, as the kubelet binds it: the file of one version.
	fileMount := filepath.Join(dir, "app.yaml")
	writeFile(t, fileMount, "")
	bind(t, filepath.Join(vol, "app.yaml"), fileMount)
	// subPath: sub, a directory inside one version.
	dirMount := filepath.Join(dir, "sub")
	if err := os.Mkdir(dirMount, 0o755); err != nil {
		t.Fatal(err)
	}
	bind(t, filepath.Join(vol, "sub"), dirMount)

	w := SubPathWarnings(append(clean, fileMount, filepath.Join(dirMount, "x")))
	if len(w) != 2 || !strings.Contains(w[0], fileMount) || !strings.Contains(w[1], dirMount) {
		t.Errorf("warnings %q, want one for %s and one for %s", w, fileMount, dirMount)
	}
}

// A bind-mounted file gets no event in its parent directory when its source
// is edited; the watch on the file itself sees it.
func TestBindMountedFileInPlaceEdit(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.yaml")
	dst := filepath.Join(dir, "sub", "dst.yaml")
	writeFile(t, src, "a: 1\n")
	if err := os.Mkdir(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, "")
	bind(t, src, dst)

	h := start(t, 20*time.Millisecond, dst)
	v1 := h.expected()
	f, err := os.OpenFile(src, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("b: 2\n")
	f.Close()
	h.change(h.expected(), v1)
}
