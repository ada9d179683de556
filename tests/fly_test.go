package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const inspectName = "rktng.io/test/inspect"

// flyEnv is a test environment with the inspect image in its store.
func flyEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.Fetch("inspect.aci")
	return e
}

// flyArgs is `run --stage1-path=<fly image>` followed by args.
func flyArgs(args ...string) []string {
	return append([]string{"run", "--stage1-path=" + testImage("stage1-fly.aci")}, args...)
}

// fly runs a pod with the fly stage1 and returns its result.
func (e *env) fly(args ...string) result {
	e.t.Helper()
	return e.Run(flyArgs(args...)...)
}

// startFly starts `rkt run` with the fly stage1 in the background and
// waits until its pod reports ready; it returns the command and the UUID.
func (e *env) startFly(args ...string) (*exec.Cmd, string) {
	e.t.Helper()
	uuidFile := filepath.Join(e.root, "uuid-"+time.Now().Format("150405.000000000"))
	cmd := e.Cmd(flyArgs(append([]string{"--uuid-file-save=" + uuidFile}, args...)...)...)
	e.start(cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
			uuid := strings.TrimSpace(string(b))
			e.MustRun("status", "--wait-ready=20s", uuid)
			return cmd, uuid
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod did not start: %v", cmd.Args)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitCode waits for a background rkt and returns its exit status.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%v did not exit", cmd.Args)
	}
	return cmd.ProcessState.ExitCode()
}

func TestFlyExitCodes(t *testing.T) {
	e := flyEnv(t)
	if r := e.fly(inspectName, "--exec", "/bin/true"); r.Code != 0 {
		t.Fatalf("true: %s", r)
	}
	if r := e.fly(inspectName, "--", "-exit=3"); r.Code != 3 {
		t.Fatalf("want exit 3: %s", r)
	}
	// A failing app's code is its own, not rkt's 254.
	if r := e.fly(inspectName, "--exec", "/bin/false"); r.Code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
}

func TestFlySIGINT(t *testing.T) {
	e := flyEnv(t)
	cmd, uuid := e.startFly(inspectName, "--", "-sleep=60s")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 130 {
		t.Fatalf("rkt run exit %d after SIGINT, want 130", code)
	}
	st := parseInspect(e.MustRun("status", uuid))
	if st["state"] != "exited" || st["app-inspect"] != "130" {
		t.Fatalf("status after SIGINT: %v", st)
	}
}

func TestFlyAppSettings(t *testing.T) {
	e := flyEnv(t)
	envFile := filepath.Join(e.root, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=yes\nSHARED=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := e.Cmd(flyArgs("--set-env=SHARED=pod", "--set-env-file="+envFile, "--inherit-env",
		inspectName, "--user=user1", "--group=group2", "--supplementary-gids=5,6",
		"--working-dir=/etc", "--environment=PER_APP=1", "--environment=INSPECT_IMAGE_ENV=override",
		"--", "-print-user", "-print-cwd", "-print-env")...)
	cmd.Env = append(cmd.Env, "HOST_ONLY_VAR=inherited")
	r := e.RunCmd(cmd)
	if r.Code != 0 {
		t.Fatal(r)
	}
	m := parseInspect(r.Stdout)
	want := map[string]string{
		"uid": "1000", "gid": "1001", "cwd": "/etc",
		"env:PER_APP": "1", "env:INSPECT_IMAGE_ENV": "override", "env:FROM_FILE": "yes",
		"env:SHARED": "pod", "env:HOST_ONLY_VAR": "inherited", "env:AC_APP_NAME": "inspect",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, m[k], v, r.Stdout)
		}
	}
	groups := "," + m["groups"] + ","
	for _, g := range []string{"5", "6"} {
		if !strings.Contains(groups, ","+g+",") {
			t.Errorf("groups=%s lacks %s", m["groups"], g)
		}
	}
	// Without --inherit-env the host's variables stay out.
	r = e.RunCmd(e.Cmd(flyArgs(inspectName, "--", "-print-env=HOME", "-print-env=TERM")...))
	if m := parseInspect(r.Stdout); r.Code != 0 || m["env:TERM"] != "" {
		t.Fatalf("host env leaked: %s", r)
	}
}

func TestFlyVolumesAndReadOnlyRootfs(t *testing.T) {
	e := flyEnv(t)
	host := filepath.Join(e.root, "hostvol")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.fly("--volume=data,kind=host,source="+host,
		"--volume=ro,kind=host,source="+host+",readOnly=true",
		"--volume=scratch,kind=empty,mode=0700,uid=1000,gid=1000",
		inspectName, "--mount=volume=data,target=/data", "--mount=volume=ro,target=/ro",
		"--mount=volume=scratch,target=/scratch", "--readonly-rootfs",
		"--", "-read-file=/data/in", "-write-file=/data/out", "-write-file=/ro/x",
		"-write-file=/scratch/s", "-write-file=/rootfile", "-content=hello", "-exit=0")
	if r.Code != 0 {
		t.Fatal(r)
	}
	m := parseInspect(r.Stdout)
	if m["file:/data/in"] != "from-host" {
		t.Errorf("host volume not readable: %s", r.Stdout)
	}
	if m["write:/data/out"] != "ok" {
		t.Errorf("host volume not writable: %s", r.Stdout)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "hello" {
		t.Errorf("write did not reach the host: %q %v", b, err)
	}
	if !strings.Contains(m["write:/ro/x.error"], "read-only") {
		t.Errorf("readOnly volume writable: %s", r.Stdout)
	}
	if m["write:/scratch/s"] != "ok" {
		t.Errorf("empty volume not writable: %s", r.Stdout)
	}
	if !strings.Contains(m["write:/rootfile.error"], "read-only") {
		t.Errorf("--readonly-rootfs root writable: %s", r.Stdout)
	}
	// Without --readonly-rootfs the root is writable, and the write stays
	// in the pod: the image's tree is untouched for the next pod.
	r = e.fly(inspectName, "--", "-write-file=/rootfile", "-content=x")
	if m := parseInspect(r.Stdout); r.Code != 0 || m["write:/rootfile"] != "ok" {
		t.Fatalf("root not writable: %s", r)
	}
	r = e.fly(inspectName, "--", "-read-file=/rootfile", "-exit=0")
	if m := parseInspect(r.Stdout); m["file:/rootfile"] != "" || m["file:/rootfile.error"] == "" {
		t.Fatalf("a pod's write reached the image: %s", r)
	}
}

func TestFlyNoOverlay(t *testing.T) {
	e := flyEnv(t)
	r := e.fly("--no-overlay", inspectName, "--", "-write-file=/f", "-content=c", "-read-file=/f", "-print-mounts")
	m := parseInspect(r.Stdout)
	if r.Code != 0 || m["file:/f"] != "c" {
		t.Fatalf("--no-overlay: %s", r)
	}
	if strings.HasPrefix(m["mount:/"], "overlay") {
		t.Errorf("--no-overlay root is an overlay: %s", m["mount:/"])
	}
}

func TestFlyEnterAndStop(t *testing.T) {
	e := flyEnv(t)
	cmd, uuid := e.startFly(inspectName, "--environment=ENTER_VAR=app", "--", "-sleep=60s")
	out := e.MustRun("enter", uuid, "/inspect", "-print-env=ENTER_VAR", "-print-cwd", "-read-file=/etc/hostname", "-exit=0")
	if m := parseInspect(out); m["env:ENTER_VAR"] != "app" || m["cwd"] != "/" {
		t.Errorf("enter: %s", out)
	}
	if r := e.Run("enter", "--app=nosuch", uuid, "/bin/true"); r.Code != 254 || !strings.Contains(r.Stderr, "no app") {
		t.Errorf("enter --app=nosuch: %s", r)
	}
	// The prefix of a UUID is enough.
	if out := e.MustRun("stop", uuid[:8]); strings.TrimSpace(out) != uuid {
		t.Errorf("stop printed %q", out)
	}
	if code := exitCode(t, cmd); code != 143 {
		t.Fatalf("stopped pod exit %d, want 143 (SIGTERM)", code)
	}
	if r := e.Run("stop", uuid); r.Code != 254 || !strings.Contains(r.Stderr, "not running") {
		t.Errorf("stop of an exited pod: %s", r)
	}

	cmd, uuid = e.startFly(inspectName, "--", "-ignore-term", "-sleep=60s")
	e.MustRun("stop", "--force", uuid)
	if code := exitCode(t, cmd); code != 137 {
		t.Fatalf("force-stopped pod exit %d, want 137 (SIGKILL)", code)
	}
}

// A pod whose stage0 (by then the fly supervisor) was SIGKILLed: the app
// dies with it, the pod shows as exited and gc collects it.
func TestFlyGCAfterSIGKILL(t *testing.T) {
	e := flyEnv(t)
	cmd, uuid := e.startFly(inspectName, "--", "-sleep=60s")
	pid := parseInspect(e.MustRun("status", uuid))["pid"]
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = exitCode(t, cmd)
	deadline := time.Now().Add(10 * time.Second)
	for processExists(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("app (pid %s) outlived its supervisor", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "exited" {
		t.Fatalf("status after SIGKILL: %v", st)
	}
	e.MustRun("gc", "--grace-period=0s")
	if r := e.Run("status", uuid); r.Code == 0 {
		t.Fatalf("pod still there after gc: %s", r)
	}
	if m := mountsUnder(e.root); len(m) > 0 {
		t.Fatalf("mounts left: %v", m)
	}
}

func processExists(pid string) bool {
	_, err := os.Stat("/proc/" + pid)
	return err == nil
}

// mountLines returns the host's mountinfo lines that mention path.
func mountLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.Contains(s.Text(), path) {
			lines = append(lines, s.Text())
		}
	}
	return lines
}

func TestFlyHostMountTableUnchanged(t *testing.T) {
	e := flyEnv(t)
	before := mountLines(t, e.root)
	for i := 0; i < 20; i++ {
		if r := e.fly(inspectName, "--exec", "/bin/true"); r.Code != 0 {
			t.Fatalf("run %d: %s", i, r)
		}
		if m := mountLines(t, e.root); len(m) != len(before) {
			t.Fatalf("run %d left mounts on the host: %v", i, m)
		}
	}
	e.MustRun("gc", "--grace-period=0s")
	if after := mountLines(t, e.root); len(after) != len(before) {
		t.Fatalf("mount table changed: %v", after)
	}
	for _, s := range []string{"run", "exited-garbage", "garbage"} {
		if ents, _ := os.ReadDir(filepath.Join(e.Dir, "pods", s)); len(ents) > 0 {
			t.Errorf("pods left in %s after gc: %d", s, len(ents))
		}
	}
}

// The fly applies an app's os/linux isolators (image's, overridden by the
// flags) through pkg/appexec; an app without any keeps root's full set.
func TestFlyIsolators(t *testing.T) {
	e := flyEnv(t)
	e.Fetch("inspect-isolators.aci")
	img := "rktng.io/test/inspect-isolators"
	r := e.fly(img, "--exec=/inspect", "--", "-print-caps", "-print-nnp")
	m := parseInspect(r.Stdout)
	if r.Code != 0 || m["cap.eff.names"] != "CAP_CHOWN,CAP_NET_BIND_SERVICE" || m["no_new_privs"] != "1" {
		t.Fatalf("image isolators: %s", r)
	}
	r = e.fly(img, "--caps-retain=CAP_KILL", "--exec=/inspect", "--", "-print-caps")
	if m := parseInspect(r.Stdout); r.Code != 0 || m["cap.bnd.names"] != "CAP_KILL" {
		t.Fatalf("--caps-retain over the image's set: %s", r)
	}
	r = e.Run(append([]string{"--insecure-options=capabilities"}, flyArgs(img, "--exec=/inspect", "--", "-print-caps")...)...)
	if m := parseInspect(r.Stdout); r.Code != 0 || !strings.Contains(m["cap.bnd.names"], "CAP_SYS_ADMIN") {
		t.Fatalf("--insecure-options=capabilities: %s", r)
	}
	r = e.fly(inspectName, "--", "-print-caps", "-print-nnp")
	if m := parseInspect(r.Stdout); r.Code != 0 || !strings.Contains(m["cap.eff.names"], "CAP_SYS_ADMIN") || m["no_new_privs"] != "0" {
		t.Fatalf("app without isolators: %s", r)
	}
}

// --mds-register: stage0 registers the pod with a running metadata
// service and the app finds it at AC_METADATA_URL.
func TestFlyMetadataService(t *testing.T) {
	e := flyEnv(t)
	sock := filepath.Join(e.root, "mds.sock")
	svc := e.Cmd("metadata-service", "--socket="+sock, "--listen-port=0", "--state-dir="+filepath.Join(e.root, "mds"))
	var logs strings.Builder
	svc.Stderr = &logs
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Process.Kill(); _ = svc.Wait() })
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 500 {
			t.Fatalf("metadata service did not start: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.fly("--mds-register", "--mds-socket="+sock, "--uuid-file-save="+uuidFile, inspectName, "--exec=/bin/sh", "--",
		"-c", `wget -qO- "$AC_METADATA_URL/acMetadata/v1/pod/uuid"`)
	uuid, _ := os.ReadFile(uuidFile)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != string(uuid) {
		t.Fatalf("pod uuid from the metadata service: %s (want %s)", r, uuid)
	}
	// Without a service, --mds-register is refused with one line.
	r = e.fly("--mds-register", "--mds-socket="+filepath.Join(e.root, "none.sock"), inspectName, "--exec=/bin/true")
	if r.Code != 254 || !strings.Contains(r.Stderr, "metadata service") {
		t.Fatalf("--mds-register without a service: %s", r)
	}
}

// flyTreeOf returns the ID of the rendered tree whose image is named name.
func (e *env) flyTreeOf(t *testing.T, name string) string {
	t.Helper()
	for _, id := range e.imTrees() {
		var m struct {
			Name string `json:"name"`
		}
		b, err := os.ReadFile(filepath.Join(e.Dir, "cas", "tree", id, "manifest"))
		if err == nil && json.Unmarshal(b, &m) == nil && m.Name == name {
			return id
		}
	}
	t.Fatalf("no tree of %s in %v", name, e.imTrees())
	return ""
}

// A tree changed since it was rendered is refused when a pod would use
// it, and used as it is with --insecure-options=ondisk.
func TestFlyTreeCheckedBeforeUse(t *testing.T) {
	e := flyEnv(t)
	e.MustRun(flyArgs(inspectName, "--exec", "/bin/true")...)
	tree := e.flyTreeOf(t, inspectName)
	rootfs := filepath.Join(e.Dir, "cas", "tree", tree, "rootfs")
	before, err := os.Stat(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(rootfs, "planted")
	if err := os.WriteFile(planted, []byte("planted after render\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat := []string{inspectName, "--exec", "/bin/cat", "--", "/planted"}
	stOneLine(t, e.fly(cat...), tree, "corrupt", "--insecure-options=ondisk")
	r := e.Run(append([]string{"--insecure-options=ondisk"}, flyArgs(cat...)...)...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "planted after render") {
		t.Fatalf("run with ondisk on the changed tree: %s", r)
	}
	// Back as rendered (the directory's mtime too, which the tree's hash
	// covers): the fingerprint still differs (ctimes moved), and the full
	// check that follows passes.
	os.Remove(planted)
	os.Chtimes(rootfs, before.ModTime(), before.ModTime())
	if r := e.fly(inspectName, "--exec", "/bin/true"); r.Code != 0 {
		t.Fatalf("run after the tree is as rendered again: %s", r)
	}
	if out := e.MustRun("image", "verify"); strings.Contains(out, "corrupt") {
		t.Errorf("image verify after restore:\n%s", out)
	}
}
