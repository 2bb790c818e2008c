package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unicode/utf8"
)

// MaxFileSize bounds the config file: a config is a few KiB, and reading
// /dev/zero or a runaway file must end with an error, not with the init's
// memory.
const MaxFileSize = 1 << 20

// errNotRegular is a config path that names a FIFO, a device or a
// directory: reading it could block forever or never end.
var errNotRegular = errors.New("not a regular file")

// readFile reads a config file of at most MaxFileSize bytes. It opens
// without blocking (a FIFO with no writer would block open(2) itself) and
// refuses anything but a regular file.
func readFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", errNotRegular, fileKind(fi.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("larger than %d KiB; a config file is a few KiB, check the path", MaxFileSize>>10)
	}
	return b, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// maxEcho bounds how much of one problem line repeats the user's input: a
// 50 MB scalar must not become a 50 MB log line. The head and the tail are
// kept, so the field and the fix hint at the end survive.
const maxEcho = 512

func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	head, tail := maxEcho*2/3, maxEcho/4
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	t := len(s) - tail
	for t < len(s) && !utf8.RuneStart(s[t]) {
		t++
	}
	return fmt.Sprintf("%s…[%d bytes cut]…%s", s[:head], t-head, s[t:])
}
