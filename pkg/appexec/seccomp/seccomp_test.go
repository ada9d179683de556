package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The filter tests are real: the test binary re-executes itself, installs
// the filter given in this variable on its main thread with no_new_privs
// (so no privilege is needed) and execs busybox with the rest of argv.
const childEnv = "SECCOMP_TEST_FILTER"

func TestMain(m *testing.M) {
	spec, profile := os.Getenv(childEnv), os.Getenv(childProfileEnv)
	if spec != "" || profile != "" {
		runtime.LockOSThread()
		install := func() error {
			p, err := ParseProfile([]byte(profile))
			if err != nil {
				return err
			}
			return p.Install(strings.Fields(os.Getenv(childCapsEnv)))
		}
		if spec != "" {
			var f Filter
			if err := json.Unmarshal([]byte(spec), &f); err != nil {
				os.Exit(250)
			}
			install = f.Install
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			os.Exit(250)
		}
		if err := install(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(250)
		}
		args := os.Args[2:]
		err := unix.Exec(args[0], args, []string{"PATH=/bin"})
		os.Stderr.WriteString("exec: " + err.Error() + "\n")
		os.Exit(251)
	}
	os.Exit(m.Run())
}

const busybox = "/bin/busybox"

// filtered runs busybox ARGS under f and returns output and status; a
// signal death is 128+signal.
func filtered(t *testing.T, f Filter, args ...string) (string, int) {
	t.Helper()
	spec, _ := json.Marshal(f)
	return runFiltered(t, []string{childEnv + "=" + string(spec)}, args...)
}

// runFiltered runs busybox ARGS in the child TestMain makes of this test
// binary, with env saying what to install.
func runFiltered(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("needs " + busybox)
	}
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", busybox}, args...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return out.String(), 128 + int(ws.Signal())
		}
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func TestRemoveSetWithErrno(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	f := Filter{Mode: Remove, Syscalls: []string{"mkdir", "mkdirat"}, Errno: "EROFS"}
	out, code := filtered(t, f, "mkdir", dir)
	if code == 0 {
		t.Fatalf("mkdir succeeded under a filter removing it: %s", out)
	}
	if !strings.Contains(out, "Read-only file system") {
		t.Fatalf("want the filter's EROFS, got %q", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("directory was created")
	}
	// Everything else still works.
	if out, code := filtered(t, f, "echo", "hello"); code != 0 || out != "hello\n" {
		t.Fatalf("echo under the filter: %d %q", code, out)
	}
}

func TestRemoveSetKills(t *testing.T) {
	f := Filter{Mode: Remove, Syscalls: []string{"uname"}}
	out, code := filtered(t, f, "uname", "-s")
	if code != 128+int(syscall.SIGSYS) {
		t.Fatalf("want death by SIGSYS, got %d: %q", code, out)
	}
}

func TestRetainSet(t *testing.T) {
	// The default whitelist lets a shell run but not mount.
	f := Filter{Mode: Retain, Syscalls: []string{GroupRktDefaultWhitelist}, Errno: "ENOSYS"}
	if out, code := filtered(t, f, "sh", "-c", "echo ok"); code != 0 || out != "ok\n" {
		t.Fatalf("shell under the default whitelist: %d %q", code, out)
	}
	out, code := filtered(t, f, "mount", "-t", "tmpfs", "none", t.TempDir())
	if code == 0 || !strings.Contains(out, "Function not implemented") {
		t.Fatalf("mount under the default whitelist: %d %q", code, out)
	}
	// A retain set without write: echo cannot print, but exec worked.
	small := Filter{Mode: Retain, Errno: "EPERM", Syscalls: allBut(t, "write", "writev")}
	out, code = filtered(t, small, "echo", "hidden")
	if out != "" {
		t.Fatalf("write went through a retain set without it: %q (exit %d)", out, code)
	}
	if code == 251 {
		t.Fatal("exec was refused in retain mode")
	}
}

func allBut(t *testing.T, drop ...string) []string {
	t.Helper()
	skip := map[string]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	var out []string
	for n := range syscallNumbers {
		if !skip[n] {
			out = append(out, n)
		}
	}
	return out
}

func TestDefaultFilter(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"mount": false, "umount2": false, "kexec_load": false,
		"init_module": false, "ptrace": false, "keyctl": false, "unshare": false,
		"read": true, "clone": true, "execve": true, "socket": true, "chroot": true} {
		got, err := d.Allows(name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("default filter allows %s = %v, want %v", name, got, want)
		}
	}
	out, code := filtered(t, *d, "mount", "-t", "tmpfs", "none", t.TempDir())
	if code == 0 || !strings.Contains(out, "permission denied") {
		t.Fatalf("mount under the default filter: %d %q", code, out)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		f    Filter
		want error
	}{
		{Filter{Mode: "keep", Syscalls: []string{"read"}}, ErrBadMode},
		{Filter{Mode: Remove, Syscalls: []string{"nosuchcall"}}, ErrUnknownSyscall},
		{Filter{Mode: Remove, Syscalls: []string{"@rkt/nosuchgroup"}}, ErrUnknownGroup},
		{Filter{Mode: Remove, Syscalls: []string{"read"}, Errno: "EWHATEVER"}, ErrUnknownErrno},
	} {
		if err := c.f.Validate(); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v, want %v", c.f, err, c.want)
		}
	}
	if e, err := ParseErrno("enotsup"); err != nil || e != unix.ENOTSUP {
		t.Fatalf("ParseErrno: %v %v", e, err)
	}
	if !Known("openat") || Known("nosuchcall") {
		t.Fatal("Known")
	}
}

func TestProgramShape(t *testing.T) {
	f := Filter{Mode: Retain, Syscalls: []string{GroupAll}}
	prog, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	// Every jump stays within reach, and the program ends in a return.
	for i, ins := range prog {
		if ins.Code&0x07 != unix.BPF_JMP {
			continue
		}
		if int(ins.Jt)+i+1 >= len(prog) || int(ins.Jf)+i+1 >= len(prog) {
			t.Fatalf("instruction %d jumps past the end", i)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		t.Fatalf("program does not end in a return: %+v", last)
	}
}
