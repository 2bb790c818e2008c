//go:build amd64

package execshim_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/internal/execshim"
)

const roleEnv = "EXECSHIM_TEST_ROLE"

// report is what the app the shim executed saw of itself.
type report struct {
	Pid       int
	ListenPID string
	Argv      []string
	Env       []string
	Fds       []int // without FD_CLOEXEC: what exec handed over
}

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "report" {
		var r report
		r.Pid, r.ListenPID, r.Argv, r.Env = os.Getpid(), os.Getenv("LISTEN_PID"), os.Args, os.Environ()
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			// What exec handed over has no FD_CLOEXEC; the runtime's
			// own descriptors (and ReadDir's) have it.
			fd, _ := strconv.Atoi(e.Name())
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
				r.Fds = append(r.Fds, fd)
			}
		}
		sort.Ints(r.Fds)
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run executes the shim the way graceful.Spawn does: errfd 3, the image
// at 4, and returns what the app printed, what the pipe said and how the
// process ended.
func run(t *testing.T, argv, env []string) (out []byte, pipeSaid string, pid int, ws syscall.WaitStatus) {
	t.Helper()
	img, err := execshim.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer img.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	// As graceful.Spawn does: what the test process inherited (from go
	// test, from a shell) must not count as the shim's leak.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	pid, err = syscall.ForkExec("/proc/self/fd/4", argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, outW.Fd(), 2, errW.Fd(), img.Fd()},
	})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("ForkExec of the shim: %v", err)
	}
	out, _ = io.ReadAll(outR)
	said, _ := io.ReadAll(errR)
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return out, string(said), pid, ws
}

func self(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShimSetsItsPidAndBecomesTheApp(t *testing.T) {
	argv := []string{"3", self(t), "my-app", "--flag", "two words", ""}
	env := []string{execshim.PIDSlot, roleEnv + "=report", "KEEP=me"}
	out, said, pid, ws := run(t, argv, env)
	if ws.ExitStatus() != 0 || said != "" {
		t.Fatalf("exit %v, pipe said %q, output %q", ws, said, out)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if r.Pid != pid || r.ListenPID != strconv.Itoa(pid) {
		t.Errorf("app pid %d LISTEN_PID %q, ForkExec returned %d: the shim must exec in place with its own pid", r.Pid, r.ListenPID, pid)
	}
	if want := argv[2:]; !reflect.DeepEqual(r.Argv, want) {
		t.Errorf("argv = %q, want %q", r.Argv, want)
	}
	wantEnv := []string{"LISTEN_PID=" + strconv.Itoa(pid), roleEnv + "=report", "KEEP=me"}
	if !reflect.DeepEqual(r.Env, wantEnv) {
		t.Errorf("env = %q, want %q", r.Env, wantEnv)
	}
	// The exec-error pipe and the image itself must not reach the app.
	if !reflect.DeepEqual(r.Fds, []int{0, 1, 2}) {
		t.Errorf("fds reaching the app = %v, want [0 1 2]", r.Fds)
	}
}

func TestShimReportsTheExecErrno(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(data, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("\x00\x01not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path  string
		errno syscall.Errno
		code  int
	}{
		{filepath.Join(dir, "nope"), syscall.ENOENT, 127},
		{filepath.Join(data, "sub"), syscall.ENOTDIR, 127},
		{data, syscall.EACCES, 126},
		{garbage, syscall.ENOEXEC, 126},
		{dir, syscall.EACCES, 126},
	} {
		out, said, _, ws := run(t, []string{"3", c.path, "app"}, []string{execshim.PIDSlot})
		if said != strconv.Itoa(int(c.errno)) || ws.ExitStatus() != c.code || len(out) != 0 {
			t.Errorf("%s: pipe said %q, exit %v, want %q (%v) and exit %d", c.path, said, ws, strconv.Itoa(int(c.errno)), c.errno, c.code)
		}
	}
}

func TestShimWithoutItsArgumentsExits126(t *testing.T) {
	for _, argv := range [][]string{{"3"}, {"3", "/bin/true"}} {
		out, said, _, ws := run(t, argv, []string{execshim.PIDSlot})
		if ws.ExitStatus() != 126 || said != "" || len(out) != 0 {
			t.Errorf("argv %q: exit %v, pipe said %q, output %q; want 126 and nothing else", argv, ws, said, out)
		}
	}
}

// A pid of any width fits the slot, and the app never sees the spare
// zeros: the shim writes its pid and a NUL over them.
func TestShimPidIsExactlyThePid(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh to run: %v", err)
	}
	for range 3 {
		out, said, pid, ws := run(t, []string{"3", sh, "sh", "-c", `printf '%s %s' "$LISTEN_PID" "$$"`}, []string{execshim.PIDSlot})
		if ws.ExitStatus() != 0 || said != "" {
			t.Fatalf("exit %v, pipe said %q", ws, said)
		}
		if want := fmt.Sprintf("%d %d", pid, pid); string(out) != want {
			t.Errorf("sh printed %q, want %q", out, want)
		}
	}
}

func TestImageIsAStaticELFForThisMachine(t *testing.T) {
	img := execshim.Image()
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the image is not ELF: %v", err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64}[runtime.GOARCH]
	if f.Machine != want || f.Type != elf.ET_EXEC || f.Class != elf.ELFCLASS64 {
		t.Errorf("machine %v type %v class %v, want %v ET_EXEC ELFCLASS64", f.Machine, f.Type, f.Class, want)
	}
	var load, stack int
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			load++
			if p.Flags != elf.PF_R|elf.PF_X || p.Off != 0 || p.Filesz != uint64(len(img)) {
				t.Errorf("PT_LOAD %+v: want the whole file, read and execute only", p.ProgHeader)
			}
			if f.Entry < p.Vaddr || f.Entry >= p.Vaddr+p.Memsz {
				t.Errorf("entry %#x outside the loaded %#x+%d", f.Entry, p.Vaddr, p.Memsz)
			}
		case elf.PT_GNU_STACK:
			stack++
			if p.Flags&elf.PF_X != 0 {
				t.Errorf("executable stack: %+v", p.ProgHeader)
			}
		case elf.PT_INTERP, elf.PT_DYNAMIC:
			t.Errorf("%v: the shim must be static", p.Type)
		}
	}
	if load != 1 || stack != 1 {
		t.Errorf("%d PT_LOAD and %d PT_GNU_STACK, want one each", load, stack)
	}
}

// The bytes in code_<arch>.go are the assembly in testdata, as GNU as
// assembles it: the source is what a reviewer reads.
func TestCodeIsTheSource(t *testing.T) {
	src := filepath.Join("testdata", "shim_"+runtime.GOARCH+".s")
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "shim.o"), filepath.Join(dir, "shim.bin")
	for _, argv := range [][]string{
		{"as", "-o", obj, src},
		{"objcopy", "-O", "binary", "-j", ".text", obj, bin},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s (binutils; scripts/test.sh installs it): %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img := execshim.Image()
	if got := img[len(img)-len(want):]; !bytes.Equal(got, want) || len(img) != 64+2*56+len(want) {
		t.Errorf("the image's code (%d bytes) is not %s assembled (%d bytes): regenerate code_%s.go", len(img)-64-2*56, src, len(want), runtime.GOARCH)
	}
}
