package appexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"golang.org/x/sys/unix"
)

// The tests run Exec in a child: the test binary re-executes itself with
// the config in this variable, and TestMain hands it to Exec.
const (
	childEnv = "APPEXEC_TEST_CONFIG"
	enterEnv = "APPEXEC_TEST_ENTER"
	// mainEnv names a config file for Main, in a mount namespace of
	// the child's own.
	mainEnv = "APPEXEC_TEST_MAIN"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		var c Config
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			os.Stderr.WriteString("bad test config: " + err.Error() + "\n")
			os.Exit(250)
		}
		err := Exec(&c)
		os.Stderr.WriteString("EXECFAIL: " + err.Error() + "\n")
		os.Exit(251)
	}
	if path := os.Getenv(mainEnv); path != "" {
		// The first launcher (not the one its namespace's init starts)
		// keeps its mounts from the host's mount namespace.
		if os.Getenv(pidInnerEnv) == "" {
			if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
				os.Stderr.WriteString("private mounts: " + err.Error() + "\n")
				os.Exit(250)
			}
		}
		os.Exit(Main([]string{path}, os.Stderr))
	}
	if cfg := os.Getenv(enterEnv); cfg != "" {
		var ec EnterConfig
		if err := json.Unmarshal([]byte(cfg), &ec); err != nil {
			os.Stderr.WriteString("bad test config: " + err.Error() + "\n")
			os.Exit(250)
		}
		code, err := Enter(ec)
		if err != nil {
			os.Stderr.WriteString("ENTERFAIL: " + err.Error() + "\n")
			os.Exit(252)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

const busybox = "/bin/busybox"

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("needs a static busybox at " + busybox)
	}
}

// runChild execs c in a child process and returns its output and status.
func runChild(t *testing.T, c Config) (string, string, int) {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + string(data)}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// status returns a field of /proc/self/status as the child saw it.
func statusField(t *testing.T, status, name string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status:\n%s", name, status)
	return ""
}

func capHex(t *testing.T, names ...string) string {
	s, err := caps.ParseSet(names)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(uint64(s), 16)
}

func parseHex(t *testing.T, v string) uint64 {
	n, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDefaultsAsRoot(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	out, errOut, code := runChild(t, Config{Exec: []string{busybox, "cat", "/proc/self/status"}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := parseHex(t, capHex(t, caps.Default()...))
	for _, f := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if got := parseHex(t, statusField(t, out, f)); got != want {
			t.Errorf("%s = %x, want the default set %x", f, got, want)
		}
	}
	if got := parseHex(t, statusField(t, out, "CapInh")); got&^want != 0 {
		t.Errorf("CapInh %x exceeds the default set", got)
	}
	if got := statusField(t, out, "Seccomp"); got != "2" {
		t.Errorf("Seccomp = %s, want 2 (filter)", got)
	}
	if got := statusField(t, out, "NoNewPrivs"); got != "0" {
		t.Errorf("NoNewPrivs = %s, want 0", got)
	}
}

func TestNonRootRetainAmbientNNP(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	c := Config{
		Exec:                []string{busybox, "cat", "/proc/self/status"},
		UID:                 1234,
		GID:                 2345,
		SupplementaryGIDs:   []int{7, 8},
		Capabilities:        []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		AmbientCapabilities: []string{"CAP_NET_BIND_SERVICE"},
		NoNewPrivileges:     true,
		Seccomp:             &seccomp.Filter{Mode: seccomp.Remove, Syscalls: []string{"mount"}, Errno: "EPERM"},
	}
	out, errOut, code := runChild(t, c)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := statusField(t, out, "Uid"); strings.Fields(got)[0] != "1234" || strings.Fields(got)[2] != "1234" {
		t.Errorf("Uid %s", got)
	}
	if got := statusField(t, out, "Gid"); strings.Fields(got)[0] != "2345" {
		t.Errorf("Gid %s", got)
	}
	if got := statusField(t, out, "Groups"); got != "7 8" {
		t.Errorf("Groups %q", got)
	}
	if got := parseHex(t, statusField(t, out, "CapBnd")); got != parseHex(t, capHex(t, "CAP_NET_BIND_SERVICE", "CAP_KILL")) {
		t.Errorf("CapBnd %x", got)
	}
	nbs := parseHex(t, capHex(t, "CAP_NET_BIND_SERVICE"))
	for _, f := range []string{"CapEff", "CapPrm", "CapAmb"} {
		if got := parseHex(t, statusField(t, out, f)); got != nbs {
			t.Errorf("%s = %x, want only CAP_NET_BIND_SERVICE", f, got)
		}
	}
	if got := statusField(t, out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s", got)
	}
}

func TestNonRootWithoutNNPGetsFilterAndNoCaps(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	out, errOut, code := runChild(t, Config{Exec: []string{busybox, "cat", "/proc/self/status"}, UID: 99, GID: 99})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"CapEff", "CapPrm", "CapAmb"} {
		if got := parseHex(t, statusField(t, out, f)); got != 0 {
			t.Errorf("%s = %x, want none for a non-root app", f, got)
		}
	}
	if got := statusField(t, out, "Seccomp"); got != "2" {
		t.Errorf("Seccomp = %s, want 2 (installed before setuid)", got)
	}
}

func TestDisableRestrictions(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	before := caps.Bounding()
	out, errOut, code := runChild(t, Config{Exec: []string{busybox, "cat", "/proc/self/status"},
		DisableCapabilities: true, DisableSeccomp: true, Capabilities: []string{"CAP_KILL"}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := parseHex(t, statusField(t, out, "CapBnd")); got != uint64(before) {
		t.Errorf("CapBnd %x, want the parent's %x", got, uint64(before))
	}
	if got := statusField(t, out, "Seccomp"); got != "0" {
		t.Errorf("Seccomp = %s, want 0", got)
	}
}

// A rootfs with a static busybox, /etc files and a working directory.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "work", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(busybox)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(root, "bin", "busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	for _, l := range []string{"sh", "pwd", "cat", "touch"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestChrootCwdEnvPathLookup(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	root := busyboxRootfs(t)
	out, errOut, code := runChild(t, Config{
		Rootfs: root, Exec: []string{"sh", "-c", `pwd; echo "$FOO"; cat /etc/marker; exit 3`},
		Env: []string{"PATH=/bin", "FOO=bar baz"}, WorkingDir: "/work",
	})
	if code != 0 && code != 3 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if !strings.HasPrefix(out, "/work\nbar baz\n") {
		t.Fatalf("output %q", out)
	}
	if !strings.Contains(errOut, "/etc/marker") {
		t.Fatalf("expected cat of a missing file to fail inside the chroot: %q", errOut)
	}
}

func TestReadOnlyRootfs(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	root := busyboxRootfs(t)
	// Mounts must stay out of the test's mount namespace: run the child
	// in its own with unshare(1)'s help.
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	c := Config{Rootfs: root, Exec: []string{"/bin/touch", "/tmp/x"}, ReadOnlyRootfs: true}
	data, _ := json.Marshal(c)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^$")
	cmd.Env = []string{childEnv + "=" + string(data)}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("touch in a read-only rootfs succeeded: %s", out)
	}
	if !strings.Contains(string(out), "Read-only file system") {
		t.Fatalf("want EROFS, got %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "x")); err == nil {
		t.Fatal("file created")
	}
}

func TestErrors(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	_, errOut, code := runChild(t, Config{Rootfs: root, Exec: []string{"/bin/missing"}})
	if code != 251 || !strings.Contains(errOut, "executable not found: /bin/missing") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := (&Config{Exec: []string{"/x"}, Capabilities: []string{"CAP_BOGUS"}}).Validate(); !errors.Is(err, caps.ErrUnknownCapability) || !errors.Is(err, ErrBadConfig) {
		t.Fatalf("unknown cap: %v", err)
	}
	if err := (&Config{Exec: []string{"/x"}, AmbientCapabilities: []string{"CAP_SYS_ADMIN"}}).Validate(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("ambient outside set: %v", err)
	}
	if err := (&Config{}).Validate(); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("empty exec: %v", err)
	}
}

func TestOOMScoreAdj(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	v := 500
	out, errOut, code := runChild(t, Config{Exec: []string{busybox, "cat", "/proc/self/oom_score_adj"}, OOMScoreAdj: &v})
	if code != 0 || strings.TrimSpace(out) != "500" {
		t.Fatalf("exit %d out %q: %s", code, out, errOut)
	}
	neg := -500
	_, errOut, code = runChild(t, Config{Exec: []string{busybox, "true"}, OOMScoreAdj: &neg})
	if code == 0 {
		t.Skip("this machine lets root lower oom_score_adj (has CAP_SYS_RESOURCE)")
	}
	if !strings.Contains(errOut, ErrOOMScoreAdj.Error()) || !strings.Contains(errOut, "CAP_SYS_RESOURCE") {
		t.Fatalf("negative oom_score_adj: exit %d: %s", code, errOut)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	adj := 10
	c := &Config{Name: "a", Rootfs: "/r", Exec: []string{"/bin/x", "y"}, Env: []string{"A=1"}, UID: 1, GID: 2,
		SupplementaryGIDs: []int{3}, Capabilities: []string{"CAP_KILL"}, OOMScoreAdj: &adj,
		Seccomp: seccomp.Default(), DisablePaths: true}
	p := filepath.Join(t.TempDir(), "app.json")
	if err := WriteConfig(p, c); err != nil {
		t.Fatal(err)
	}
	got, err := ReadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip:\n%s\n%s", a, b)
	}
	if err := os.WriteFile(p, []byte(`{"exec":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfig(p); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("want ErrBadConfig, got %v", err)
	}
}

// The filter goes in after the identity change: a retain set without the
// set*id calls still starts a non-root app without no_new_privs.
func TestFilterAfterIdentity(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	var allowed []string
	for _, n := range []string{"read", "write", "openat", "open", "close", "fstat", "newfstatat", "lseek", "mmap", "munmap",
		"brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl", "getpid", "getuid", "geteuid", "exit", "exit_group",
		"arch_prctl", "set_tid_address", "prctl", "capset", "capget", "chdir", "execve", "sendfile", "readlink", "uname",
		"getgid", "getegid", "getppid", "futex", "mprotect", "prlimit64", "poll", "fcntl", "dup2", "stat", "lstat"} {
		if seccomp.Known(n) {
			allowed = append(allowed, n)
		}
	}
	out, errOut, code := runChild(t, Config{
		Exec: []string{busybox, "cat", "/proc/self/status"}, UID: 4321, GID: 4321,
		Seccomp: &seccomp.Filter{Mode: seccomp.Retain, Syscalls: allowed, Errno: "EPERM"},
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := statusField(t, out, "Uid"); strings.Fields(got)[0] != "4321" || statusField(t, out, "Seccomp") != "2" {
		t.Fatalf("Uid %s Seccomp %s", got, statusField(t, out, "Seccomp"))
	}
	if got := parseHex(t, statusField(t, out, "CapEff")); got != 0 {
		t.Fatalf("CapEff %x: CAP_SYS_ADMIN raised for the install was not dropped", got)
	}
}

// A profile replaces the default filter (mount is allowed by it, refused
// by the default) and its includes see the app's capabilities, not the
// launcher's: uname is refused to an app without CAP_SYS_ADMIN.
func TestSeccompProfile(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	p, err := seccomp.ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Exec: []string{busybox, "sh", "-c", "uname -s; grep ^Seccomp: /proc/self/status"}, SeccompProfile: p}
	// busybox's uname prints an empty name when the call fails.
	out, errOut, code := runChild(t, c)
	if code != 0 || strings.Contains(out, "Linux") || statusField(t, out, "Seccomp") != "2" {
		t.Fatalf("uname without CAP_SYS_ADMIN under the profile: exit %d: %q %q", code, out, errOut)
	}
	c.Capabilities = append(caps.Default(), "CAP_SYS_ADMIN")
	out, errOut, code = runChild(t, c)
	if code != 0 || !strings.Contains(out, "Linux\n") || statusField(t, out, "Seccomp") != "2" {
		t.Fatalf("uname with CAP_SYS_ADMIN under the profile: exit %d: %q %q", code, out, errOut)
	}
	// The default filter would refuse mount; this profile lets it reach
	// the kernel (which refuses a bad fstype with ENODEV, not EPERM).
	c.Exec = []string{busybox, "mount", "-t", "no-such-fs", "none", t.TempDir()}
	_, errOut, _ = runChild(t, c)
	if strings.Contains(errOut, "ermission denied") || !strings.Contains(errOut, "No such device") {
		t.Fatalf("mount under a profile that allows it: %q", errOut)
	}
}

// An app with a PID namespace of its own: it is not PID 1 there, sees a
// /proc of its namespace only, and its exit status comes back up.
func TestPrivatePIDNamespace(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	root := busyboxRootfs(t)
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"ls"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "app.json")
	c := &Config{Name: "alone", Rootfs: root, PrivatePIDNamespace: true, DisablePaths: true,
		Exec: []string{"/bin/sh", "-c", "echo pid=$$; ls /proc; exit 5"}, Env: []string{"PATH=/bin"}}
	if err := WriteConfig(cfgPath, c); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{mainEnv + "=" + cfgPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("want exit 5: %v %s", err, errb.String())
	}
	var pids []string
	for _, f := range strings.Fields(out.String()) {
		if _, err := strconv.Atoi(f); err == nil {
			pids = append(pids, f)
		}
	}
	// Its init, itself and ls.
	self := strings.TrimPrefix(strings.SplitN(out.String(), "\n", 2)[0], "pid=")
	seen := map[string]bool{}
	for _, p := range pids {
		seen[p] = true
	}
	if self == "1" || len(pids) != 3 || !seen["1"] || !seen[self] {
		t.Fatalf("want the app beside its namespace's init, and nothing else: %q", out.String())
	}
}
