//go:build amd64

package execshim_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrypoint/entrypoint/internal/execshim"
	"github.com/entrypoint/entrypoint/takeover"
)

const roleEnv = "EXECSHIM_TEST_ROLE"

// report is what the app the shim executed saw of itself.
type report struct {
	Pid       int
	ListenPID string
	Argv      []string
	Env       []string
	Fds       []int // without FD_CLOEXEC: what exec handed over
	// With the role "bind": the app's bind() of $BIND_PORT on 127.0.0.1
	// (owned by the test), whether that socket came back listening
	// (the owned one, not the app's own), and a bind the init does not own.
	BindErr, OtherErr string
	Listening         bool
	// With the role "nest": the answer of a shim started under this one.
	Refusal string
}

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "report", "bind", "nest":
		var r report
		switch os.Getenv(roleEnv) {
		case "bind":
			r.BindErr, r.Listening, r.OtherErr = bindTwice()
		case "nest":
			r.Refusal = nest()
		}
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

func bindTwice() (bindErr string, listening bool, otherErr string) {
	port, _ := strconv.Atoi(os.Getenv("BIND_PORT"))
	loopback := [4]byte{127, 0, 0, 1}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: loopback})
	}
	// What a server does next: listen (answered by the init), half-close
	// (SHUT_WR, never trapped) and, as a broken server might, stop
	// reading (SHUT_RD, suppressed: it would stop the owned listener).
	for _, call := range []func() error{
		func() error { return unix.Listen(fd, 5) },
		func() error { return unix.Shutdown(fd, unix.SHUT_WR) },
		func() error { return unix.Shutdown(fd, unix.SHUT_RD) },
	} {
		if err == nil {
			err = call()
		}
	}
	if err != nil {
		bindErr = err.Error()
	}
	acc, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	other, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Bind(other, &unix.SockaddrInet4{Addr: loopback})
	}
	if err != nil {
		otherErr = err.Error()
	}
	return bindErr, acc == 1, otherErr
}

// nest starts a native shim with a takeover channel under the filter of
// the shim that started this process: the kernel allows one listener per
// process tree, so it must refuse, and the shim must say so and go on.
func nest() string {
	img, err := execshim.Open()
	if err != nil {
		return "Open: " + err.Error()
	}
	ch, err := takeover.NewChannel()
	if err != nil {
		return err.Error()
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	pid, err := syscall.ForkExec("/proc/self/fd/4", []string{"3:5", "/bin/true", "true"}, &syscall.ProcAttr{
		Env: []string{execshim.PIDSlot}, Files: []uintptr{null.Fd(), null.Fd(), 2, null.Fd(), img.Fd(), ch.Child().Fd()},
	})
	if err != nil {
		return "ForkExec: " + err.Error()
	}
	_, err = ch.Receive(10 * time.Second)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
	if err == nil {
		err = errors.New("the nested shim got a listener")
	}
	return fmt.Sprintf("%v; exit %d", err, ws.ExitStatus())
}

// shimRun is one shim started by start.
type shimRun struct {
	pid        int
	outR, errR *os.File
}

// start executes the shim the way graceful.Spawn does: errfd 3, the image
// at 4, and extra (a takeover channel's end) from 5 on.
func start(t *testing.T, argv, env []string, extra ...*os.File) *shimRun {
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
	t.Cleanup(func() { outR.Close() })
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { errR.Close() })
	// As graceful.Spawn does: what the test process inherited (from go
	// test, from a shell) must not count as the shim's leak.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	files := []uintptr{0, outW.Fd(), 2, errW.Fd(), img.Fd()}
	for _, f := range extra {
		files = append(files, f.Fd())
	}
	pid, err := syscall.ForkExec("/proc/self/fd/4", argv, &syscall.ProcAttr{Env: env, Files: files})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("ForkExec of the shim: %v", err)
	}
	return &shimRun{pid: pid, outR: outR, errR: errR}
}

// wait returns what the app printed, what the pipe said and how the
// process ended.
func (r *shimRun) wait(t *testing.T) (out []byte, pipeSaid string, ws syscall.WaitStatus) {
	t.Helper()
	out, _ = io.ReadAll(r.outR)
	said, _ := io.ReadAll(r.errR)
	if _, err := syscall.Wait4(r.pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	return out, string(said), ws
}

// run starts the shim and waits for it.
func run(t *testing.T, argv, env []string) (out []byte, pipeSaid string, pid int, ws syscall.WaitStatus) {
	t.Helper()
	r := start(t, argv, env)
	out, pipeSaid, ws = r.wait(t)
	return out, pipeSaid, r.pid, ws
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

// With a takeover fd the shim installs the filter and hands its
// notification fd over: the app's bind() of an owned address gets the
// owned listener, any other bind runs as asked, and neither the channel
// nor the notification fd reaches the app.
func TestShimTakesOverTheAppsBind(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	owned, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer owned.Close()
	ch, err := takeover.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r := start(t, []string{"3:5", self(t), "app"}, []string{execshim.PIDSlot, roleEnv + "=bind", "BIND_PORT=" + port}, ch.Child())
	nfd, err := ch.Receive(10 * time.Second)
	if err != nil {
		r.wait(t)
		t.Fatalf("the shim's answer: %v", err)
	}
	var mu sync.Mutex
	var calls []string
	sess, err := takeover.Serve(nfd, takeover.Options{
		Listeners: []takeover.Listener{{Addr: ln.Addr().String(), File: owned}},
		Logger:    slog.New(slog.DiscardHandler),
		Count: func(call, result string) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call+" "+result)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, said, ws := r.wait(t)
	var rep report
	if err := json.Unmarshal(out, &rep); err != nil || ws.ExitStatus() != 0 || said != "" {
		t.Fatalf("exit %v, pipe said %q, output %q (%v)", ws, said, out, err)
	}
	if rep.BindErr != "" || !rep.Listening {
		t.Errorf("bind, listen, shutdown(SHUT_WR), shutdown(SHUT_RD) of the owned 127.0.0.1:%s: err %q, listening %v; want the owned listener, still listening", port, rep.BindErr, rep.Listening)
	}
	// Exactly what the filter traps reached the init: the two binds, the
	// listen and SHUT_RD; SHUT_WR ran in the kernel.
	mu.Lock()
	got := slices.Clone(calls)
	mu.Unlock()
	slices.Sort(got)
	if want := []string{"bind passed", "bind taken", "listen answered", "shutdown suppressed"}; !slices.Equal(got, want) {
		t.Errorf("calls the init answered: %q, want %q", got, want)
	}
	if rep.OtherErr != "" {
		t.Errorf("bind of 127.0.0.1:0, not owned: %s; want it to run as asked", rep.OtherErr)
	}
	if rep.ListenPID != strconv.Itoa(r.pid) {
		t.Errorf("LISTEN_PID %q, want %d", rep.ListenPID, r.pid)
	}
	if !reflect.DeepEqual(rep.Fds, []int{0, 1, 2}) {
		t.Errorf("fds reaching the app = %v, want [0 1 2]", rep.Fds)
	}
}

// With an empty path the shim is the takeover's start-up probe: it answers
// and exits 0, executing nothing.
func TestShimAsTheProbeAnswersAndExits0(t *testing.T) {
	ch, err := takeover.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, []string{"3:5", "", "probe"}, []string{execshim.PIDSlot}, ch.Child())
	nfd, err := ch.Receive(10 * time.Second)
	if err != nil {
		r.wait(t)
		t.Fatalf("the probe's answer: %v", err)
	}
	unix.Close(nfd)
	if out, said, ws := r.wait(t); ws.ExitStatus() != 0 || said != "" || len(out) != 0 {
		t.Errorf("exit %v, pipe said %q, output %q; want 0 and nothing else", ws, said, out)
	}
}

// Where the filter cannot be installed, the shim says which call failed
// and why, as the Go shim does, and the app runs anyway.
func TestShimReportsATakeoverRefusalAndGoesOn(t *testing.T) {
	ch, err := takeover.NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, []string{"3:5", self(t), "app"}, []string{execshim.PIDSlot, roleEnv + "=nest"}, ch.Child())
	nfd, err := ch.Receive(10 * time.Second)
	if err != nil {
		r.wait(t)
		t.Fatalf("the outer shim's answer: %v", err)
	}
	defer unix.Close(nfd)
	out, said, ws := r.wait(t)
	var rep report
	if err := json.Unmarshal(out, &rep); err != nil || ws.ExitStatus() != 0 || said != "" {
		t.Fatalf("exit %v, pipe said %q, output %q (%v)", ws, said, out, err)
	}
	want := (&takeover.Refused{Step: "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)", Errno: syscall.EBUSY}).Error() + "; exit 0"
	if rep.Refusal != want {
		t.Errorf("the nested shim: %q, want %q", rep.Refusal, want)
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

// A shim started against its contract exits 126 before it touches any fd:
// too few arguments, an errfd that is not a number of 3 or more, no pid
// slot in the environment.
func TestShimWithoutItsArgumentsExits126(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh to run: %v", err)
	}
	echo := []string{sh, "sh", "-c", "echo ran"}
	for _, c := range []struct {
		argv, env []string
	}{
		{[]string{"3"}, []string{execshim.PIDSlot}},
		{[]string{"3", "/bin/true"}, []string{execshim.PIDSlot}},
		{append([]string{"x"}, echo...), []string{execshim.PIDSlot}},
		{append([]string{"1"}, echo...), []string{execshim.PIDSlot}},
		{append([]string{"3"}, echo...), nil},
	} {
		out, said, _, ws := run(t, c.argv, c.env)
		if ws.ExitStatus() != 126 || said != "" || len(out) != 0 {
			t.Errorf("argv %q env %q: exit %v, pipe said %q, output %q; want 126 and nothing else", c.argv, c.env, ws, said, out)
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
