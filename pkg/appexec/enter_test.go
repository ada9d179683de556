package appexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"github.com/rktng/rkt/pkg/cgroup"
)

// startTarget starts an "app": busybox sleep chrooted into root, in new
// mount, PID, UTS, IPC and network namespaces with /proc mounted both in
// the namespace's root (as nspawn does) and in the app's root, and in a
// cgroup with a memory limit. It returns the app's host PID and its
// cgroup.
func startTarget(t *testing.T, root string) (int, *cgroup.Cgroup) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	podDir := t.TempDir()
	cg, err := cgroup.CreateApp(podDir, fmt.Sprintf("entertest-%d", os.Getpid()), "app", cgroup.Limits{MemoryBytes: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`echo 0 > %s/cgroup.procs 2>/dev/null; for d in %s; do echo $$ > $d/cgroup.procs || exit 9; done
mount -t proc proc /proc && mount -t proc proc %s/proc && hostname entered-test && exec chroot %s /bin/busybox sleep 1000`,
		"/nonexistent", strings.Join(cg.Dirs, " "), root, root)
	cmd := exec.Command("unshare", "--fork", "--kill-child", "--pid", "--mount", "--uts", "--ipc", "--net", "--propagation", "private", "/bin/sh", "-c", script)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = cgroup.RemovePod(podDir)
	})
	// The app is unshare's child once it has chrooted.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if f := strings.Fields(string(data)); len(f) == 1 {
			pid, _ := strconv.Atoi(f[0])
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err == nil && link != "/" {
				return pid, cg
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("target did not start: %s", errb.String())
	return 0, nil
}

func runEnter(t *testing.T, ec EnterConfig) (string, string, int) {
	t.Helper()
	data, _ := json.Marshal(ec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{enterEnv + "=" + string(data)}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return out.String(), errb.String(), 128 + int(ws.Signal())
		}
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestEnter(t *testing.T) {
	needRoot(t)
	needBusybox(t)
	root := busyboxRootfs(t)
	pid, cg := startTarget(t, root)
	targetNS := map[string]string{}
	for _, ns := range []string{"mnt", "pid", "net", "uts", "ipc"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			t.Fatal(err)
		}
		targetNS[ns] = l
	}

	app := Config{
		Name:            "app",
		Exec:            []string{"/bin/sh", "-c", `hostname; echo pid=$$; for n in mnt pid net uts ipc; do echo $n=$(readlink /proc/self/ns/$n); done; cat /proc/self/status; cat /proc/self/cgroup; test -e /etc/marker-in-app-root && echo inroot; mkdir /tmp/d`},
		Env:             []string{"PATH=/bin"},
		Capabilities:    []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
		NoNewPrivileges: true,
		Seccomp:         &seccomp.Filter{Mode: seccomp.Remove, Syscalls: []string{"mkdir", "mkdirat"}, Errno: "EACCES"},
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "marker-in-app-root"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"hostname", "readlink", "test", "mkdir"} {
		_ = os.Symlink("busybox", filepath.Join(root, "bin", l))
	}
	out, errOut, code := runEnter(t, EnterConfig{PID: pid, App: app})
	if code == 252 || code == 254 {
		t.Fatalf("enter failed (%d): %s", code, errOut)
	}
	t.Logf("entered (exit %d):\n%s\n%s", code, out, errOut)
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		t.Fatalf("no output from the entered command (exit %d): %s", code, errOut)
	}
	if lines[0] != "entered-test" {
		t.Errorf("hostname %q: not in the app's UTS namespace", lines[0])
	}
	if !strings.HasPrefix(lines[1], "pid=") || len(lines[1]) > len("pid=99") {
		t.Errorf("%s: not a small PID of the app's PID namespace", lines[1])
	}
	for _, ns := range []string{"mnt", "pid", "net", "uts", "ipc"} {
		if !strings.Contains(out, ns+"="+targetNS[ns]+"\n") {
			t.Errorf("namespace %s is not the app's %s", ns, targetNS[ns])
		}
	}
	if !strings.Contains(out, "inroot\n") {
		t.Error("the command does not see the app's root")
	}
	if got := parseHex(t, statusField(t, out, "CapBnd")); got != parseHex(t, capHex(t, "CAP_KILL", "CAP_NET_BIND_SERVICE")) {
		t.Errorf("CapBnd %x: more than the app", got)
	}
	if got := parseHex(t, statusField(t, out, "CapEff")); got != parseHex(t, capHex(t, "CAP_KILL", "CAP_NET_BIND_SERVICE")) {
		t.Errorf("CapEff %x", got)
	}
	if statusField(t, out, "NoNewPrivs") != "1" || statusField(t, out, "Seccomp") != "2" {
		t.Error("no_new_privs or seccomp missing")
	}
	if !strings.Contains(errOut, "Permission denied") || code == 0 {
		t.Errorf("mkdir was not refused by the app's filter: exit %d, %q", code, errOut)
	}
	memPath := ""
	for _, d := range cg.Dirs {
		if strings.Contains(d, "/memory/") {
			memPath = d[strings.Index(d, "/memory/")+len("/memory"):]
		}
	}
	if memPath != "" && !strings.Contains(out, ":memory:"+memPath+"\n") {
		t.Errorf("not in the app's memory cgroup %s", memPath)
	}
}

func TestEnterRefusesUserNS(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("unshare", "--user", "--map-root-user", "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(100 * time.Millisecond)
	_, errOut, code := runEnter(t, EnterConfig{PID: cmd.Process.Pid, App: Config{Exec: []string{"/bin/true"}}})
	if code != 252 || !strings.Contains(errOut, ErrEnterUserNS.Error()) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// With nsenter (util-linux's, here the host's), a process in a user
// namespace of its own is entered: the command runs in that namespace as
// its root, with the app's capabilities.
func TestEnterUserNSThroughNsenter(t *testing.T) {
	needRoot(t)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("needs nsenter")
	}
	// A user namespace as a pod's: root mapped to an unprivileged range,
	// setgroups allowed; and PID and mount namespaces of its own.
	cmd := exec.Command("sleep", "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GidMappingsEnableSetgroups: true,
	}
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runEnter(t, EnterConfig{PID: pid, Nsenter: []string{nsenter},
		App: Config{Exec: []string{"/bin/sh", "-c", "readlink /proc/self/ns/user; id -u; grep CapBnd /proc/self/status; cat /proc/self/uid_map"},
			Capabilities: []string{"CAP_KILL"}, DisablePaths: true}})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, want+"\n0\n") || !strings.Contains(out, "CapBnd:\t0000000000000020\n") || !strings.Contains(out, " 200000 ") {
		t.Fatalf("want the target's user namespace %s as root with CAP_KILL only, got %q", want, out)
	}
}
