package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// installMain is `entrypoint install DIR`: it copies this binary to
// DIR/entrypoint and links DIR/kill to it. An init container runs it to
// put entrypoint into an emptyDir for an unmodified app image; the
// entrypoint image is FROM scratch and has no cp(1).
func installMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "usage: entrypoint install DIR   (copies the binary to DIR/entrypoint, links DIR/kill)")
		return exitUsage
	}
	if err := install(args[0]); err != nil {
		fmt.Fprintf(stderr, "entrypoint install: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "installed %s and %s\n", filepath.Join(args[0], "entrypoint"), filepath.Join(args[0], "kill"))
	return 0
}

func install(dir string) error {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("open own binary: %w", err)
	}
	defer self.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	// Write beside and rename, so a container starting from DIR never
	// sees half a binary.
	tmp, err := os.CreateTemp(dir, ".entrypoint-*")
	if err != nil {
		return fmt.Errorf("create in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, self); err != nil {
		tmp.Close()
		return fmt.Errorf("copy to %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	target := filepath.Join(dir, "entrypoint")
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("install %s: %w", target, err)
	}
	link := filepath.Join(dir, "kill")
	os.Remove(link)
	if err := os.Symlink("entrypoint", link); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}
