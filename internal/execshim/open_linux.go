package execshim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open puts the image in a sealed memfd, close-on-exec, so that it needs no
// writable or exec-allowed file system: execute it as /proc/self/fd/N in
// the child. It fails where there is no image, and where the kernel or a
// seccomp profile refuses memfds; the caller then uses the Go shim.
func Open() (*os.File, error) {
	img := Image()
	if img == nil {
		return nil, errors.New("no native exec shim for this architecture")
	}
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	// Since Linux 6.3 a memfd is executable only if asked for (with
	// vm.memfd_noexec=1 the default is no); older kernels do not know the
	// flag and refuse it with EINVAL.
	fd, err := unix.MemfdCreate("entrypoint-exec-shim", flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("entrypoint-exec-shim", flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "entrypoint-exec-shim")
	if _, err := f.Write(img); err != nil {
		f.Close()
		return nil, fmt.Errorf("write the exec shim: %w", err)
	}
	// Sealed, nothing (not even a process that inherits it by mistake) can
	// change what every later generation runs first.
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal the exec shim: %w", err)
	}
	return f, nil
}
