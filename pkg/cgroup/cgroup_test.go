package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A child of the test binary joins the cgroup directories in this
// variable and then touches the number of MiB in allocEnv.
const (
	joinEnv  = "CGROUP_TEST_JOIN"
	allocEnv = "CGROUP_TEST_ALLOC_MB"
)

func TestMain(m *testing.M) {
	if dirs := os.Getenv(joinEnv); dirs != "" {
		if err := JoinDirs(strings.Split(dirs, ":"), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(250)
		}
		mb, _ := strconv.Atoi(os.Getenv(allocEnv))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, bad := range []Limits{{MemoryBytes: -1}, {MemoryBytes: 1000}, {CPUMilli: 5}, {CPUShares: 1}, {CPUShares: 300000}} {
		if err := bad.Validate(); !errors.Is(err, ErrBadLimit) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := (Limits{MemoryBytes: 64 << 20, CPUMilli: 500, CPUShares: 512}).Validate(); err != nil {
		t.Fatal(err)
	}
	if w := SharesToWeight(1024); w < 39 || w > 40 {
		t.Errorf("SharesToWeight(1024) = %d", w)
	}
	if SharesToWeight(2) != 1 || SharesToWeight(262144) != 10000 {
		t.Error("SharesToWeight bounds")
	}
}

func readLimit(t *testing.T, cg *Cgroup, v1file, v2file string) string {
	t.Helper()
	for _, d := range cg.Dirs {
		name := v1file
		if cg.Version == V2 {
			name = v2file
		}
		if data, err := os.ReadFile(filepath.Join(d, name)); err == nil {
			return strings.TrimSpace(string(data))
		}
	}
	t.Fatalf("no %s/%s in %v", v1file, v2file, cg.Dirs)
	return ""
}

func TestCreateEnforceRemove(t *testing.T) {
	needRoot(t)
	podDir := t.TempDir()
	uuid := fmt.Sprintf("test-%d", os.Getpid())
	cg, err := CreateApp(podDir, uuid, "app", Limits{MemoryBytes: 32 << 20, CPUMilli: 250, CPUShares: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemovePod(podDir) })
	if got := readLimit(t, cg, "memory.limit_in_bytes", "memory.max"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory limit %s", got)
	}
	if got := readLimit(t, cg, "cpu.cfs_quota_us", "cpu.max"); got != "25000" && got != "25000 100000" {
		t.Errorf("cpu quota %s", got)
	}
	if cg.Version == V1 {
		if got := readLimit(t, cg, "cpu.shares", ""); got != "512" {
			t.Errorf("cpu.shares %s", got)
		}
	}

	// Within the limit: fine. Beyond it: the kernel's OOM killer.
	run := func(mb int) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = []string{joinEnv + "=" + strings.Join(cg.Dirs, ":"), allocEnv + "=" + strconv.Itoa(mb), "GOGC=off"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(4); err != nil {
		t.Fatalf("4 MiB under a 32 MiB limit: %v: %s", err, out)
	}
	out, err := run(128)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("128 MiB under a 32 MiB limit: not killed (%v): %s", err, out)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("want SIGKILL by the OOM killer, got %v: %s", err, out)
	}

	if err := RemovePod(podDir); err != nil {
		t.Fatal(err)
	}
	for _, d := range cg.Dirs {
		if _, err := os.Stat(filepath.Dir(d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after RemovePod", filepath.Dir(d))
		}
	}
}

func TestProcessDirs(t *testing.T) {
	dirs, err := ProcessDirs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestSystemdProperties(t *testing.T) {
	p := Limits{MemoryBytes: 64 << 20, CPUMilli: 250, CPUShares: 1024}.SystemdProperties()
	want := []string{"MemoryMax=67108864", "MemorySwapMax=0", "CPUQuota=25%", "CPUWeight=39"}
	if strings.Join(p, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", p, want)
	}
}

// BindInto, then joining through the bound path, puts a process under
// the limit: run in a private mount namespace so no mount is left.
func TestBindIntoAndJoin(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	if os.Getenv("CGROUP_TEST_BIND") == "" {
		cmd := exec.Command("unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^TestBindIntoAndJoin$", "-test.v")
		cmd.Env = append(os.Environ(), "CGROUP_TEST_BIND=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("%v: %s", err, out)
		}
		return
	}
	podDir, root := t.TempDir(), t.TempDir()
	cg, err := CreateApp(podDir, fmt.Sprintf("bindtest-%d", os.Getpid()), "app", Limits{MemoryBytes: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = RemovePod(podDir) }()
	inPod, err := BindInto(cg.Dirs, root, "app")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, p := range inPod {
		dirs = append(dirs, filepath.Join(root, p))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{joinEnv + "=" + strings.Join(dirs, ":"), allocEnv + "=128", "GOGC=off"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("128 MiB through the bound cgroup of 32 MiB: %v: %s", err, out)
	}
	for _, d := range dirs {
		_ = unix.Unmount(d, unix.MNT_DETACH)
	}
}

// CreateAppAt records the pod's cgroup (the first element of the path),
// never the caller's own, and RemovePod refuses anything else.
func TestCreateAppAtRecordsPodCgroup(t *testing.T) {
	needRoot(t)
	podDir := t.TempDir()
	uuid := fmt.Sprintf("at-%d", os.Getpid())
	cg, err := CreateAppAt(podDir, filepath.Join(PodName(uuid), "stage1", "app"), Limits{MemoryBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := readState(podDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(cg.Dirs) {
		t.Fatalf("recorded %v for %v", dirs, cg.Dirs)
	}
	for _, d := range dirs {
		if filepath.Base(d) != PodName(uuid) {
			t.Fatalf("recorded %s, want the pod's cgroup", d)
		}
	}
	if err := RemovePod(podDir); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left", d)
		}
	}
	if err := record(podDir, []string{"/sys/fs/cgroup/memory"}); err == nil {
		t.Fatal("recorded a hierarchy root as a pod cgroup")
	}
	if err := os.WriteFile(filepath.Join(podDir, StateFile), []byte(`["/sys/fs/cgroup/memory"]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemovePod(podDir); err == nil || !strings.Contains(err.Error(), "not a pod cgroup") {
		t.Fatalf("RemovePod of a non-pod cgroup: %v", err)
	}
}

// RemoveDirs never empties a hierarchy's root or the caller's cgroup.
func TestRemoveRefusesRootAndSelf(t *testing.T) {
	needRoot(t)
	mnt, err := v1Dir("memory")
	if err != nil {
		if dirs, err2 := ProcessDirs(os.Getpid()); err2 == nil && len(dirs) > 0 {
			mnt = Root
		} else {
			t.Skip(err)
		}
	}
	if err := RemoveDirs([]string{mnt}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("RemoveDirs(%s): %v", mnt, err)
	}
	if err := RemoveDirs([]string{"/tmp"}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("RemoveDirs(/tmp): %v", err)
	}
	// A cgroup holding the test process is not emptied by killing.
	cg, err := Create(fmt.Sprintf("rkt-selftest-%d/app", os.Getpid()), Limits{MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	own, _ := ProcessDirs(os.Getpid())
	if err := cg.Join(0); err != nil {
		t.Fatal(err)
	}
	err = cg.Remove()
	_ = JoinDirs(own, 0)
	if err == nil || !strings.Contains(err.Error(), "holds this process") {
		t.Fatalf("Remove of our own cgroup: %v", err)
	}
	if err := cg.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range cg.Dirs {
		_ = os.Remove(filepath.Dir(d))
	}
}

// TestUpdateApp: a running app's limits change in its own cgroup, not in
// the pod's levels above it, even for an app named like one of them; a
// kind of limit the app was started without is refused.
func TestUpdateApp(t *testing.T) {
	needRoot(t)
	podDir := t.TempDir()
	uuid := fmt.Sprintf("upd-%d", os.Getpid())
	t.Cleanup(func() { _ = RemovePod(podDir) })
	cg, err := CreateAppAt(podDir, filepath.Join(PodName(uuid), "stage1", "web"), Limits{MemoryBytes: 32 << 20, CPUShares: 256})
	if err != nil {
		t.Fatal(err)
	}
	// An app called "stage1" beside it, with only a CPU weight.
	if _, err := CreateAppAt(podDir, filepath.Join(PodName(uuid), "stage1", "stage1"), Limits{CPUShares: 512}); err != nil {
		t.Fatal(err)
	}
	read := func(dir, file string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	v, _ := Detect()
	memFile, cpuFile := "memory.limit_in_bytes", "cpu.shares"
	want := map[string]string{memFile: strconv.Itoa(96 << 20), cpuFile: "768"}
	if v == V2 {
		memFile, cpuFile = "memory.max", "cpu.weight"
		want = map[string]string{memFile: strconv.Itoa(96 << 20), cpuFile: strconv.FormatUint(SharesToWeight(768), 10)}
	}
	if err := UpdateApp(podDir, "web", Limits{MemoryBytes: 96 << 20, CPUShares: 768, CPUMilli: 500}); err != nil {
		t.Fatal(err)
	}
	for _, d := range cg.Dirs {
		for file, value := range want {
			if _, err := os.Stat(filepath.Join(d, file)); err == nil {
				if got := read(d, file); got != value {
					t.Errorf("%s/%s = %s, want %s", d, file, got, value)
				}
			}
		}
		if v != V2 {
			if _, err := os.Stat(filepath.Join(d, "cpu.cfs_quota_us")); err == nil && read(d, "cpu.cfs_quota_us") != "50000" {
				t.Errorf("%s: cpu.cfs_quota_us = %s, want 50000", d, read(d, "cpu.cfs_quota_us"))
			}
		}
	}
	got, err := AppLimits(podDir, "web")
	if err != nil || got.MemoryBytes != 96<<20 || got.CPUMilli != 500 || (v != V2 && got.CPUShares != 768) {
		t.Errorf("AppLimits after the update: %+v, %v", got, err)
	}
	// Lowering the memory limit again (memory+swap follows in order).
	if err := UpdateApp(podDir, "web", Limits{MemoryBytes: 24 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := UpdateApp(podDir, "stage1", Limits{CPUShares: 100}); err != nil {
		t.Fatal(err)
	}
	// The pod's own "stage1" level kept the kernel's default.
	dirs, _ := readState(podDir)
	for _, d := range dirs {
		level := filepath.Join(d, "stage1")
		if _, err := os.Stat(filepath.Join(level, cpuFile)); err == nil && v != V2 && read(level, cpuFile) != "1024" {
			t.Errorf("the pod's level %s got cpu.shares %s", level, read(level, cpuFile))
		}
	}
	if err := UpdateApp(podDir, "stage1", Limits{MemoryBytes: 64 << 20}); !errors.Is(err, ErrNotLimited) {
		t.Fatalf("a memory limit for an app started without one: %v", err)
	}
}

// JoinProcess moves the caller into another process's cgroups, and
// writes nothing when it is in them already.
func TestJoinProcess(t *testing.T) {
	needRoot(t)
	cg, err := Create("rkt-test-join-"+strconv.Itoa(os.Getpid()), Limits{MemoryBytes: 64 << 20})
	if err != nil {
		t.Skipf("no cgroup to create here: %v", err)
	}
	defer cg.Remove()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := cg.Join(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// The test itself moves in a child, as `rkt enter` does.
	helper := exec.Command(os.Args[0], "-test.run=^TestJoinProcessHelper$")
	helper.Env = append(os.Environ(), "JOIN_PROCESS_PID="+strconv.Itoa(cmd.Process.Pid))
	out, err := helper.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "joined") {
		t.Fatalf("helper: %s", out)
	}
}

func TestJoinProcessHelper(t *testing.T) {
	pid, err := strconv.Atoi(os.Getenv("JOIN_PROCESS_PID"))
	if err != nil {
		t.Skip("helper for TestJoinProcess")
	}
	if err := JoinProcess(pid); err != nil {
		t.Fatal(err)
	}
	want, _ := ProcessDirs(pid)
	got, _ := ProcessDirs(os.Getpid())
	if strings.Join(want, ",") != strings.Join(got, ",") {
		t.Fatalf("in %v, want %v", got, want)
	}
	// Already there: nothing to write, still no error.
	if err := JoinProcess(pid); err != nil {
		t.Fatal(err)
	}
	fmt.Println("joined")
}
