package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The default stage1 (systemd-nspawn booting systemd): stage1Env is a test
// environment with the inspect images in its store; nspawnArgs is `run`
// with that stage1 named explicitly and the host's network, so that these
// tests do not depend on CNI.

func stage1Env(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.Fetch("inspect.aci")
	return e
}

func nspawnArgs(args ...string) []string {
	return append([]string{"run", "--stage1-path=" + testImage("stage1.aci"), "--net=host"}, args...)
}

func (e *env) nspawn(args ...string) result {
	e.t.Helper()
	return e.Run(nspawnArgs(args...)...)
}

// startNspawn starts a pod in the background and waits until it is ready.
func (e *env) startNspawn(args ...string) (*exec.Cmd, string) {
	e.t.Helper()
	uuidFile := filepath.Join(e.root, "uuid-"+time.Now().Format("150405.000000000"))
	cmd := e.Cmd(nspawnArgs(append([]string{"--uuid-file-save=" + uuidFile}, args...)...)...)
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

// waitFor polls fn until it is true or 20 seconds passed.
func waitFor(t *testing.T, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStage1ExitCodes(t *testing.T) {
	e := stage1Env(t)
	if r := e.nspawn(inspectName, "--exec", "/bin/true"); r.Code != 0 {
		t.Fatalf("true: %s", r)
	}
	// Several apps: rkt run returns the first app's code; status shows
	// each app's, whichever exits last.
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.nspawn("--uuid-file-save="+uuidFile,
		inspectName, "--name=first", "--", "-sleep=300ms", "-exit=3",
		"---", inspectName, "--name=second", "--", "-exit=7",
		"---", inspectName, "--name=third", "--exec=/bin/false")
	if r.Code != 3 {
		t.Fatalf("want exit 3 (first app): %s", r)
	}
	uuid, _ := os.ReadFile(uuidFile)
	st := parseInspect(e.MustRun("status", strings.TrimSpace(string(uuid))))
	want := map[string]string{"state": "exited", "app-first": "3", "app-second": "7", "app-third": "1"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("status %s=%q, want %q: %v", k, st[k], v, st)
		}
	}
	// An app that cannot start is rkt's failure, not a hang.
	if r := e.nspawn(inspectName, "--exec=/nonexistent"); r.Code == 0 {
		t.Fatalf("missing exec succeeded: %s", r)
	}
}

func TestStage1AppSettings(t *testing.T) {
	e := stage1Env(t)
	r := e.nspawn("--hostname=podhost", "--dns=10.1.2.3", "--dns-search=example.test", "--dns-opt=ndots:2",
		"--hosts-entry=10.9.9.9=extra.test",
		inspectName, "--user=user1", "--group=group2", "--supplementary-gids=5",
		"--working-dir=/etc", "--environment=PER_APP=1",
		"--", "-print-user", "-print-cwd", "-print-env", "-print-hostname",
		"-read-file=/etc/resolv.conf", "-read-file=/etc/hosts", "-print-caps", "-print-seccomp")
	if r.Code != 0 {
		t.Fatal(r)
	}
	m := parseInspect(r.Stdout)
	want := map[string]string{
		"uid": "1000", "gid": "1001", "cwd": "/etc", "hostname": "podhost",
		"env:PER_APP": "1", "env:INSPECT_IMAGE_ENV": "from-image", "env:AC_APP_NAME": "inspect",
		"seccomp": "2",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s=%q, want %q\n%s", k, m[k], v, r.Stdout)
		}
	}
	if !strings.Contains(","+m["groups"]+",", ",5,") {
		t.Errorf("groups=%s lacks 5", m["groups"])
	}
	resolv := m["file:/etc/resolv.conf"]
	for _, s := range []string{"nameserver 10.1.2.3", "search example.test", "options ndots:2"} {
		if !strings.Contains(resolv, s) {
			t.Errorf("resolv.conf lacks %q:\n%s", s, resolv)
		}
	}
	if h := m["file:/etc/hosts"]; !strings.Contains(h, "10.9.9.9\textra.test") || !strings.Contains(h, "podhost") {
		t.Errorf("hosts:\n%s", h)
	}
	// The app keeps the default capability set, not the pod's.
	if m["cap.bnd"] == "" || m["cap.bnd"] == "000001ffffffffff" {
		t.Errorf("bounding set not restricted: %q", m["cap.bnd"])
	}
}

func TestStage1VolumesAndReadOnlyRootfs(t *testing.T) {
	e := stage1Env(t)
	host := filepath.Join(e.root, "hostvol")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.nspawn("--volume=data,kind=host,source="+host,
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
	if m["file:/data/in"] != "from-host" || m["write:/data/out"] != "ok" {
		t.Errorf("host volume: %s", r.Stdout)
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
	// Two apps share an empty volume: what one writes the other reads.
	r = e.nspawn("--volume=shared,kind=empty",
		inspectName, "--name=writer", "--mount=volume=shared,target=/shared", "--", "-write-file=/shared/f", "-content=w",
		"---", inspectName, "--name=reader", "--mount=volume=shared,target=/shared", "--exec=/bin/sh", "--",
		"-c", "while [ ! -s /shared/f ]; do sleep 0.05; done; cat /shared/f")
	if r.Code != 0 || !strings.Contains(r.Stdout, "[reader] w") {
		t.Fatalf("shared volume: %s", r)
	}
}

func TestStage1EventHandlers(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("inspect-mounts.aci")
	data := filepath.Join(e.root, "data")
	conf := filepath.Join(e.root, "conf")
	for _, d := range []string{data, conf} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := e.nspawn("--volume=data,kind=host,source="+data, "--volume=config,kind=host,source="+conf,
		"rktng.io/test/inspect-mounts")
	if r.Code != 0 {
		t.Fatal(r)
	}
	// The app saw the pre-start handler's line; the post-stop handler ran
	// after it.
	if m := parseInspect(r.Stdout); m["file:/data/events"] != "pre-start\n" {
		t.Errorf("app saw events %q", m["file:/data/events"])
	}
	b, err := os.ReadFile(filepath.Join(data, "events"))
	if err != nil || string(b) != "pre-start\npost-stop\n" {
		t.Errorf("events %q (%v), want pre-start then post-stop", b, err)
	}
}

func TestStage1Logs(t *testing.T) {
	e := stage1Env(t)
	// One app: stdout and stderr byte for byte, no timestamps, prefixes
	// or CRLF, and a last line without newline kept as it is.
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.nspawn("--uuid-file-save="+uuidFile, inspectName, "--exec=/bin/sh", "--", "-c",
		`printf 'line one\n\ttabbed \033[1mbold\033[0m\r\nno newline'; printf 'to stderr\n' >&2`)
	if r.Code != 0 {
		t.Fatal(r)
	}
	if want := "line one\n\ttabbed \033[1mbold\033[0m\r\nno newline"; r.Stdout != want {
		t.Errorf("stdout %q, want %q", r.Stdout, want)
	}
	if r.Stderr != "to stderr\n" {
		t.Errorf("stderr %q", r.Stderr)
	}
	uuid := strings.TrimSpace(readFile(t, uuidFile))
	if out := e.MustRun("logs", uuid); !strings.Contains(out, "line one\n") || !strings.Contains(out, "to stderr\n") {
		t.Errorf("rkt logs: %q", out)
	}
	// The journal tells the streams apart by priority: 3 for stderr, 6
	// for stdout (rkt-cri's container logs rely on it).
	priorities := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(e.MustRun("logs", "--output=json", uuid)), "\n") {
		var rec struct{ MESSAGE, PRIORITY string }
		if json.Unmarshal([]byte(line), &rec) == nil {
			priorities[rec.MESSAGE] = rec.PRIORITY
		}
	}
	if priorities["to stderr"] != "3" || priorities["line one"] != "6" {
		t.Errorf("journal priorities %v, want 3 for the stderr line and 6 for stdout", priorities)
	}

	// Several apps: each line prefixed with its app's name.
	r = e.nspawn("--uuid-file-save="+uuidFile, inspectName, "--name=alpha", "--exec=/bin/sh", "--", "-c", "echo a1; echo a2",
		"---", inspectName, "--name=beta", "--exec=/bin/sh", "--", "-c", "echo b1 >&2")
	if r.Code != 0 {
		t.Fatal(r)
	}
	if r.Stdout != "[alpha] a1\n[alpha] a2\n" || r.Stderr != "[beta] b1\n" {
		t.Errorf("prefixed output: %s", r)
	}
	uuid = strings.TrimSpace(readFile(t, uuidFile))
	if out := e.MustRun("logs", "--app=beta", uuid); out != "b1\n" {
		t.Errorf("rkt logs --app=beta: %q", out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStage1EnterStopAndForce(t *testing.T) {
	e := stage1Env(t)
	cmd, uuid := e.startNspawn(inspectName, "--environment=ENTER_VAR=app", "--", "-sleep=60s")
	waitFor(t, "app pid", func() bool {
		r := e.Run("enter", uuid, "/bin/true")
		return r.Code == 0
	})
	out := e.MustRun("enter", uuid, "/inspect", "-print-env=ENTER_VAR", "-print-caps", "-print-seccomp", "-exit=0")
	m := parseInspect(out)
	if m["env:ENTER_VAR"] != "app" || m["seccomp"] != "2" {
		t.Errorf("enter: %s", out)
	}
	if m["cap.bnd"] == "000001ffffffffff" {
		t.Errorf("entered command has every capability: %s", out)
	}
	e.MustRun("stop", uuid)
	if code := exitCode(t, cmd); code != 143 {
		t.Fatalf("stopped pod exit %d, want 143 (SIGTERM)", code)
	}
	if st := parseInspect(e.MustRun("status", uuid)); st["app-inspect"] != "143" {
		t.Errorf("status after stop: %v", st)
	}

	cmd, uuid = e.startNspawn(inspectName, "--", "-ignore-term", "-sleep=60s")
	e.MustRun("stop", "--force", uuid)
	if code := exitCode(t, cmd); code != 137 {
		t.Fatalf("force-stopped pod exit %d, want 137 (SIGKILL)", code)
	}
}

// After gc, nothing of the pod remains: no mount (newEnv's cleanup checks
// the host's mount table), no cgroup in any hierarchy.
func TestStage1GCLeavesNothing(t *testing.T) {
	e := stage1Env(t)
	uuidFile := filepath.Join(e.root, "uuid")
	if r := e.nspawn("--uuid-file-save="+uuidFile, inspectName, "--exec=/bin/true"); r.Code != 0 {
		t.Fatal(r)
	}
	uuid := strings.TrimSpace(readFile(t, uuidFile))
	cgroups := func() []string {
		found, _ := filepath.Glob("/sys/fs/cgroup/*/rkt-" + uuid)
		more, _ := filepath.Glob("/sys/fs/cgroup/rkt-" + uuid)
		deeper, _ := filepath.Glob("/sys/fs/cgroup/*/*/rkt-" + uuid)
		return append(append(found, more...), deeper...)
	}
	if len(cgroups()) == 0 {
		t.Fatalf("pod made no cgroup (the test would prove nothing)")
	}
	e.MustRun("gc", "--grace-period=0s")
	if left := cgroups(); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
	if m := mountsUnder(e.root); len(m) > 0 {
		t.Errorf("mounts left after gc: %v", m)
	}
}

// --private-users: the pod's root is an unprivileged user on the host;
// its host and empty volumes are idmapped: the host's root's files are
// its root's, and what it writes there stays the host's root's.
func TestStage1PrivateUsers(t *testing.T) {
	e := stage1Env(t)
	vol := filepath.Join(e.root, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	r := e.nspawn("--private-users", "--volume=data,kind=host,source="+vol, "--volume=scratch,kind=empty,uid=1000,gid=1000",
		inspectName, "--mount=volume=data,target=/data", "--mount=volume=scratch,target=/scratch",
		"--", "-print-user", "-read-file=/proc/self/uid_map",
		"-write-file=/written", "-write-file=/data/from-pod", "-write-file=/scratch/from-pod", "-content=x")
	if r.Code != 0 {
		t.Fatal(r)
	}
	m := parseInspect(r.Stdout)
	f := strings.Fields(m["file:/proc/self/uid_map"])
	if m["uid"] != "0" || len(f) != 3 || f[0] != "0" || f[1] == "0" {
		t.Fatalf("not in a shifted user namespace: %s", r.Stdout)
	}
	if m["write:/written"] != "ok" || m["write:/data/from-pod"] != "ok" || m["write:/scratch/from-pod"] != "ok" {
		t.Errorf("pod root cannot write its own root or its volumes: %s", r.Stdout)
	}
	if st, err := os.Stat(filepath.Join(vol, "from-pod")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("a file the pod's root wrote in a host volume: %v %v, want the host's root's", st, err)
	}
}

// --interactive: the app gets the terminal (here one made by script(1)),
// reads from it and writes to it.
func TestStage1Interactive(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) for a terminal")
	}
	e := stage1Env(t)
	args := append(e.globalArgs(), nspawnArgs("--interactive", inspectName, "--exec=/bin/sh", "--",
		"-c", "read x; echo got:$x; tty; exit 4")...)
	quoted := []string{rktBin()}
	for _, a := range args {
		quoted = append(quoted, "'"+a+"'")
	}
	cmd := exec.Command("script", "-qec", strings.Join(quoted, " "), "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// Type once the app reads, as a person would.
		time.Sleep(2 * time.Second)
		_, _ = stdin.Write([]byte("typed\n"))
	}()
	r := e.RunCmd(cmd)
	if r.Code != 4 || !strings.Contains(r.Stdout, "got:typed") || !strings.Contains(r.Stdout, "/dev/pts/") {
		t.Fatalf("interactive pod: %s", r)
	}
}

// A pod whose rkt run (by then stage1's run entrypoint, nspawn's parent)
// is SIGKILLed does not live on without it: its apps are stopped, and gc
// collects it.
func TestStage1KilledRunEndsPod(t *testing.T) {
	e := stage1Env(t)
	cmd, uuid := e.startNspawn(inspectName, "--", "-sleep=60s")
	pidb, err := os.ReadFile(filepath.Join(e.Dir, "pods", "run", uuid, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid1 := strings.TrimSpace(string(pidb))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the pod's PID 1 to end", func() bool {
		_, err := os.Stat("/proc/" + pid1)
		return err != nil
	})
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "exited" || st["app-inspect"] != "143" {
		t.Errorf("status after the run entrypoint was killed: %v", st)
	}
	e.MustRun("gc", "--grace-period=0s")
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/rkt-" + uuid); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
}

// --ipc=parent (rkt's name; host, Docker's and Podman's, is the same): the
// pod's apps share the host's IPC namespace (System V IPC, POSIX message
// queues); by default (auto) and with --ipc=private, the pod has its own.
// Any other value is refused, and so is --ipc with a stage1 older than
// interface version 6.
func TestStage1HostIPC(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	host, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	ipcOf := func(flags ...string) string {
		t.Helper()
		r := e.nspawn(append(flags, busyboxName, "--exec=/bin/readlink", "--", "/proc/self/ns/ipc")...)
		if r.Code != 0 {
			t.Fatalf("%v: %s", flags, r)
		}
		return strings.TrimSpace(r.Stdout)
	}
	for _, flag := range []string{"--ipc=parent", "--ipc=host"} {
		if got := ipcOf(flag); got != host {
			t.Errorf("%s: the app's IPC namespace is %s, the host's %s", flag, got, host)
		}
	}
	for _, flags := range [][]string{nil, {"--ipc=auto"}, {"--ipc=private"}} {
		if got := ipcOf(flags...); got == host || !strings.HasPrefix(got, "ipc:[") {
			t.Errorf("%v: the app's IPC namespace is %q, want its own", flags, got)
		}
	}
	r := e.nspawn("--ipc=shared", busyboxName)
	if r.Code != 254 || !strings.Contains(r.Stderr, "--ipc=shared: want auto, private or parent") {
		t.Errorf("--ipc=shared: %s", r)
	}
	// The fly (interface version 5) cannot be asked for either.
	r = e.Run("run", "--stage1-path="+testImage("stage1-fly.aci"), "--ipc=private", busyboxName)
	if r.Code != 254 || !strings.Contains(r.Stderr, "--ipc=private: stage1") || !strings.Contains(r.Stderr, "interface version 5") {
		t.Errorf("--ipc=private under the fly: %s", r)
	}
}

// A line longer than the pod journal's LineMax (48 KiB) is kept in pieces;
// rkt logs prints it whole, as the app wrote it.
func TestStage1LogsLongLine(t *testing.T) {
	e := stage1Env(t)
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.nspawn("--uuid-file-save="+uuidFile, inspectName, "--exec=/bin/sh", "--", "-c",
		`head -c 120000 /dev/zero | tr '\0' x; echo; echo end`)
	if r.Code != 0 {
		t.Fatal(r)
	}
	want := strings.Repeat("x", 120000) + "\nend\n"
	if out := e.MustRun("logs", strings.TrimSpace(readFile(t, uuidFile))); out != want {
		t.Errorf("rkt logs: %d bytes, want %d (%.40q...)", len(out), len(want), out)
	}
}
