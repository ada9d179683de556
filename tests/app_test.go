package tests

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Mutable pods (rkt app ...) under the default stage1.

// startSandbox starts `rkt app sandbox` in the background and waits until
// the pod is ready; at cleanup a pod still running is killed.
func (e *env) startSandbox(args ...string) (*exec.Cmd, string) {
	e.t.Helper()
	uuidFile := filepath.Join(e.root, "uuid-"+time.Now().Format("150405.000000000"))
	full := append([]string{"app", "sandbox", "--stage1-path=" + testImage("stage1.aci"), "--uuid-file-save=" + uuidFile}, args...)
	cmd := e.Cmd(full...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = e.RunCmd(e.Cmd("stop", "--force", strings.TrimSpace(readFileOr(uuidFile))))
			done := make(chan struct{})
			go func() { _, _ = cmd.Process.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(uuidFile); err == nil && len(b) > 0 {
			uuid := strings.TrimSpace(string(b))
			e.MustRun("status", "--wait-ready=30s", uuid)
			return cmd, uuid
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			e.t.Fatalf("sandbox did not start: %v\n%s", cmd.Args, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readFileOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// appStatus is `rkt app status --format=json`.
type appStatus struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	ImageID    string `json:"image_id"`
	CreatedAt  *int64 `json:"created_at"`
	StartedAt  *int64 `json:"started_at"`
	FinishedAt *int64 `json:"finished_at"`
	ExitCode   *int   `json:"exit_code"`
}

func (e *env) appStatus(uuid, app string) appStatus {
	e.t.Helper()
	var s appStatus
	out := e.MustRun("app", "status", uuid, "--app="+app, "--format=json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		e.t.Fatalf("app status: %v: %q", err, out)
	}
	return s
}

// waitAppState polls until app is in state (apps start and exit
// asynchronously to the commands that ask for it).
func (e *env) waitAppState(uuid, app, state string) appStatus {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := e.appStatus(uuid, app)
		if s.State == state {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("app %s stays %s, want %s", app, s.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// podMounts lists the mount points in the mount namespace of pid.
func podMounts(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostMountPoints is the set of mount points of the test's own (the
// host's) mount namespace.
func hostMountPoints() map[string]bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	m := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			m[f[4]] = true
		}
	}
	return m
}

// oneLine checks a refusal: exit 254 and a single "rkt: ..." line
// mentioning want.
func oneLine(t *testing.T, r result, want string) {
	t.Helper()
	msg := strings.TrimRight(r.Stderr, "\n")
	if r.Code != 254 || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "rkt: ") || !strings.Contains(msg, want) {
		t.Errorf("want exit 254 and one line about %q, got %s", want, r)
	}
}

func TestAppLifecycle(t *testing.T) {
	e := stage1Env(t)
	before := hostMountPoints()
	sandbox, uuid := e.startSandbox("--net=host")
	if out := e.MustRun("app", "list", uuid, "--no-legend"); strings.TrimSpace(out) != "" {
		t.Fatalf("a new sandbox has apps: %q", out)
	}
	port := strconv.Itoa(freePort(t))
	e.MustRun("app", "add", uuid, inspectName, "--name=web", "--environment=GREETING=hi", "--", "-serve-http=127.0.0.1:"+port, "-print-env=GREETING")
	if s := e.appStatus(uuid, "web"); s.State != "created" || s.StartedAt != nil || s.CreatedAt == nil {
		t.Fatalf("added app: %+v, want created and not started", s)
	}
	e.MustRun("app", "start", uuid, "--app=web")
	if got := netHTTPGet(t, "http://127.0.0.1:"+port+"/"); !strings.Contains(got, "rkt-"+uuid) {
		t.Errorf("the app answered %q, want the pod's hostname", got)
	}
	running := e.waitAppState(uuid, "web", "running")
	if running.StartedAt == nil || running.ExitCode != nil {
		t.Errorf("running app: %+v", running)
	}
	// Starting a running app changes nothing.
	e.MustRun("app", "start", uuid, "--app=web")
	if again := e.appStatus(uuid, "web"); again.State != "running" || *again.StartedAt != *running.StartedAt {
		t.Errorf("start of a running app: %+v, was %+v", again, running)
	}
	if table := e.MustRun("app", "list", uuid); !strings.Contains(table, "NAME") || !strings.Contains(table, "web\trunning") {
		t.Errorf("app list:\n%s", table)
	}
	// The app's root is mounted in the pod only, never on the host.
	pid := strings.TrimSpace(readFileOr(filepath.Join(e.Dir, "pods", "run", uuid, "pid")))
	if !strings.Contains(podMounts(t, pid), "/opt/stage2/web/rootfs") {
		t.Errorf("the app's root is not mounted in the pod")
	}
	for m := range hostMountPoints() {
		if !before[m] && (strings.Contains(m, uuid) || strings.Contains(m, "stage2")) {
			t.Errorf("pod mount on the host: %s", m)
		}
	}

	e.MustRun("app", "stop", uuid, "--app=web")
	st := e.appStatus(uuid, "web")
	if st.State != "exited" || st.ExitCode == nil || *st.ExitCode != 143 || st.FinishedAt == nil {
		t.Errorf("stopped app: %+v, want exited with 143 (SIGTERM)", st)
	}
	if kv := parseInspect(e.MustRun("app", "status", uuid, "--app=web")); kv["state"] != "exited" || kv["exit_code"] != "143" {
		t.Errorf("app status: %v", kv)
	}
	// Its output is in the pod's journal.
	if logs := e.MustRun("logs", "--app=web", uuid); !strings.Contains(logs, "GREETING=hi") {
		t.Errorf("rkt logs --app=web: %q", logs)
	}
	// Restarted, it runs again; rm stops it first.
	e.MustRun("app", "start", uuid, "--app=web")
	if s := e.waitAppState(uuid, "web", "running"); s.ExitCode != nil {
		t.Errorf("restarted app keeps its old exit code: %+v", s)
	}
	netHTTPGet(t, "http://127.0.0.1:"+port+"/")
	e.MustRun("app", "rm", uuid, "--app=web")
	if out := e.MustRun("app", "list", uuid, "--no-legend"); strings.TrimSpace(out) != "" {
		t.Errorf("app list after rm: %q", out)
	}
	if out := strings.TrimSpace(e.MustRun("app", "list", uuid, "--format=json")); out != "[]" {
		t.Errorf("app list --format=json after rm: %q", out)
	}
	if strings.Contains(podMounts(t, pid), "/opt/stage2/web/rootfs") {
		t.Errorf("the removed app's root is still mounted in the pod")
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "pods", "run", uuid, "appsinfo", "web")); err == nil {
		t.Errorf("appsinfo/web left after rm")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("the removed app still serves")
	}
	// A name freed by rm can be used again.
	e.MustRun("app", "add", uuid, inspectName, "--name=web", "--", "-exit=0")

	// The pod stays up without running apps until stopped.
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "running" {
		t.Fatalf("sandbox: %v", st)
	}
	e.MustRun("stop", uuid)
	if code := exitCode(t, sandbox); code != 0 {
		t.Errorf("sandbox exited %d, want 0", code)
	}
	e.MustRun("gc", "--grace-period=0s")
	if m := mountsUnder(e.root); len(m) > 0 {
		t.Errorf("mounts left after gc: %v", m)
	}
	after := hostMountPoints()
	for m := range after {
		if !before[m] && (strings.Contains(m, e.root) || strings.Contains(m, uuid)) {
			t.Errorf("new host mount after the pod: %s", m)
		}
	}
}

func TestAppTwoIndependent(t *testing.T) {
	e := stage1Env(t)
	_, uuid := e.startSandbox("--net=host")
	pa, pb := strconv.Itoa(freePort(t)), strconv.Itoa(freePort(t))
	// Added at the same time: the pod's app lock serializes them, and
	// the manifest gets both.
	results := make(chan result, 2)
	for _, a := range [][2]string{{"a", pa}, {"b", pb}} {
		cmd := e.Cmd("app", "add", uuid, inspectName, "--name="+a[0], "--", "-serve-http=127.0.0.1:"+a[1])
		go func() { results <- e.RunCmd(cmd) }()
	}
	for i := 0; i < 2; i++ {
		if r := <-results; r.Code != 0 {
			t.Fatalf("concurrent app add: %s", r)
		}
	}
	if m := e.MustRun("cat-manifest", uuid); !strings.Contains(m, `"name": "a"`) || !strings.Contains(m, `"name": "b"`) {
		t.Fatalf("manifest after concurrent adds:\n%s", m)
	}
	e.MustRun("app", "start", uuid, "--app=a")
	netHTTPGet(t, "http://127.0.0.1:"+pa+"/")
	if s := e.appStatus(uuid, "b"); s.State != "created" {
		t.Errorf("b started with a: %+v", s)
	}
	e.MustRun("app", "start", uuid, "--app=b")
	netHTTPGet(t, "http://127.0.0.1:"+pb+"/")
	e.MustRun("app", "stop", uuid, "--app=a")
	if s := e.appStatus(uuid, "a"); s.State != "exited" {
		t.Errorf("a after its stop: %+v", s)
	}
	if s := e.appStatus(uuid, "b"); s.State != "running" {
		t.Errorf("b after a's stop: %+v", s)
	}
	netHTTPGet(t, "http://127.0.0.1:"+pb+"/")
	e.MustRun("app", "stop", uuid, "--app=b")
	if s := e.appStatus(uuid, "b"); s.State != "exited" || s.ExitCode == nil || *s.ExitCode != 143 {
		t.Errorf("b after its stop: %+v", s)
	}
	var list []appStatus
	if err := json.Unmarshal([]byte(e.MustRun("app", "list", uuid, "--format=json")), &list); err != nil || len(list) != 2 || list[0].State != "exited" || list[1].State != "exited" {
		t.Errorf("app list --format=json: %+v (%v)", list, err)
	}
	// Every app exited; the pod runs on.
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "running" {
		t.Errorf("sandbox after its apps exited: %v", st)
	}
	e.MustRun("stop", uuid)
}

func TestAppExitCodeOfItsOwn(t *testing.T) {
	e := stage1Env(t)
	_, uuid := e.startSandbox("--net=none")
	e.MustRun("app", "add", uuid, inspectName, "--name=three", "--", "-print-msg=bye", "-exit=3")
	e.MustRun("app", "start", uuid, "--app=three")
	s := e.waitAppState(uuid, "three", "exited")
	if s.ExitCode == nil || *s.ExitCode != 3 || s.StartedAt == nil || s.FinishedAt == nil || *s.FinishedAt < *s.StartedAt {
		t.Errorf("app that exited 3: %+v", s)
	}
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "running" {
		t.Errorf("the pod ended with its only app: %v", st)
	}
	if logs := e.MustRun("logs", "--app=three", uuid); !strings.Contains(logs, "bye") {
		t.Errorf("logs: %q", logs)
	}
	e.MustRun("stop", uuid)
}

func TestAppRefusals(t *testing.T) {
	e := stage1Env(t)
	_, uuid := e.startSandbox("--net=none")
	podDir := filepath.Join(e.Dir, "pods", "run", uuid)
	pid := strings.TrimSpace(readFileOr(filepath.Join(podDir, "pid")))
	e.MustRun("app", "add", uuid, inspectName, "--name=one", "--", "-sleep=60s")
	manifest := readFileOr(filepath.Join(podDir, "pod"))
	mounts := strings.Count(podMounts(t, pid), "\n")

	oneLine(t, e.Run("app", "add", uuid, inspectName, "--name=one"), `already has an app named "one"`)
	oneLine(t, e.Run("app", "add", uuid, filepath.Join(e.root, "nothing.aci"), "--name=two"), "nothing.aci")
	oneLine(t, e.Run("app", "add", uuid, inspectName, "--name=two", "--exec=/not/there"), "/not/there")
	oneLine(t, e.Run("app", "add", uuid, inspectName, "--name=two", "--user=nosuchuser"), "nosuchuser")
	oneLine(t, e.Run("app", "add", uuid, inspectName, "--name=two", "--mount=volume=nope,target=/x"), "nope")
	oneLine(t, e.Run("app", "add", "00000000-0000-0000-0000-000000000000", inspectName), "00000000")
	for _, op := range []string{"start", "stop", "rm", "status"} {
		oneLine(t, e.Run("app", op, uuid, "--app=ghost"), `no app "ghost"`)
	}
	// Nothing half-done: the manifest, appsinfo and the pod's mounts are
	// as before.
	if got := readFileOr(filepath.Join(podDir, "pod")); got != manifest {
		t.Errorf("pod manifest changed by refused adds:\n%s\nwas\n%s", got, manifest)
	}
	if ents, _ := os.ReadDir(filepath.Join(podDir, "appsinfo")); len(ents) != 1 {
		t.Errorf("appsinfo after refused adds: %v", ents)
	}
	if n := strings.Count(podMounts(t, pid), "\n"); n != mounts {
		t.Errorf("pod mounts: %d, was %d", n, mounts)
	}
	e.MustRun("stop", uuid)

	// A pod that is not mutable, and a pod that is not running.
	cmd, plain := e.startNspawn(inspectName, "--", "-sleep=60s")
	oneLine(t, e.Run("app", "add", plain, inspectName, "--name=two"), "not mutable")
	oneLine(t, e.Run("app", "stop", plain, "--app=inspect"), "not mutable")
	e.MustRun("stop", plain)
	exitCode(t, cmd)
	e.MustRun("status", "--wait=30s", uuid)
	oneLine(t, e.Run("app", "add", uuid, inspectName, "--name=two"), "not running")
}

// An added app gets its isolators as an app of `rkt run` would: its
// capability set and its memory limit, and rm leaves no mount of its
// cgroups in the pod.
func TestAppIsolators(t *testing.T) {
	e := stage1Env(t)
	_, uuid := e.startSandbox("--net=none")
	e.MustRun("app", "add", uuid, inspectName, "--name=iso", "--memory=96Mi", "--caps-retain=CAP_KILL,CAP_CHOWN",
		"--", "-print-cgroup-memory", "-print-caps", "-sleep=60s")
	e.MustRun("app", "start", uuid, "--app=iso")
	e.waitAppState(uuid, "iso", "running")
	var m map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m = parseInspect(e.MustRun("logs", "--app=iso", uuid)); m["memory.limit"] != "" {
			break
		}
	}
	if m["memory.limit"] != "100663296" || m["cap.bnd.names"] != "CAP_CHOWN,CAP_KILL" {
		t.Errorf("added app's limits: memory %q, capabilities %q", m["memory.limit"], m["cap.bnd.names"])
	}
	// Capabilities beyond nspawn's default set, asked for by an app
	// added later, and the default set for an app that asks for none.
	e.MustRun("app", "add", uuid, inspectName, "--name=net", "--caps-retain=CAP_NET_ADMIN,CAP_SYS_TIME", "--", "-print-caps")
	e.MustRun("app", "add", uuid, inspectName, "--name=plain", "--", "-print-caps")
	for _, a := range []string{"net", "plain"} {
		e.MustRun("app", "start", uuid, "--app="+a)
		if s := e.waitAppState(uuid, a, "exited"); s.ExitCode == nil || *s.ExitCode != 0 {
			t.Errorf("app %s: %+v", a, s)
		}
	}
	if m := parseInspect(e.MustRun("logs", "--app=net", uuid)); m["cap.bnd.names"] != "CAP_NET_ADMIN,CAP_SYS_TIME" {
		t.Errorf("app asking for CAP_NET_ADMIN,CAP_SYS_TIME got %q", m["cap.bnd.names"])
	}
	if m := parseInspect(e.MustRun("logs", "--app=plain", uuid)); m["cap.bnd.names"] == "" || strings.Contains(m["cap.bnd.names"], "CAP_SYS_ADMIN") || strings.Contains(m["cap.bnd.names"], "CAP_NET_ADMIN") {
		t.Errorf("app without isolators got %q, want the default set", m["cap.bnd.names"])
	}
	pid := strings.TrimSpace(readFileOr(filepath.Join(e.Dir, "pods", "run", uuid, "pid")))
	e.MustRun("app", "rm", uuid, "--app=iso")
	if mi := podMounts(t, pid); strings.Contains(mi, "/rkt/cgroup/iso") || strings.Contains(mi, "/opt/stage2/iso") {
		t.Errorf("mounts of the removed app left in the pod:\n%s", mi)
	}
	e.MustRun("stop", uuid)
}

// The sandbox's pod flags reach apps added later: network and forwarded
// port, hostname, DNS and hosts entries, pod annotations.
func TestAppSandboxPodFlags(t *testing.T) {
	netNeedStage1(t)
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	port := strconv.Itoa(freePort(t))
	_, uuid := e.startSandbox("--net=default", "--port=http:tcp:8080:"+port, "--hostname=sandbox1",
		"--dns=10.1.2.3", "--hosts-entry=10.9.8.7=db.pods.test", "--annotation=example.com/owner=tests")
	e.MustRun("app", "add", uuid, inspectName, "--name=web", "--", "-serve-http=:8080")
	e.MustRun("app", "start", uuid, "--app=web")
	if got := netHTTPGet(t, "http://127.0.0.1:"+port+"/"); strings.TrimSpace(got) != "sandbox1" {
		t.Errorf("through the forwarded port: %q, want the pod's hostname", got)
	}
	e.MustRun("--insecure-options=image", "app", "add", uuid, testImage("busybox.aci"), "--name=sh", "--exec=/bin/sh", "--", "-c", "cat /etc/resolv.conf /etc/hosts")
	e.MustRun("app", "start", uuid, "--app=sh")
	e.waitAppState(uuid, "sh", "exited")
	logs := e.MustRun("logs", "--app=sh", uuid)
	for _, want := range []string{"nameserver 10.1.2.3", "10.9.8.7\tdb.pods.test", "sandbox1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("added app's resolv.conf/hosts lack %q:\n%s", want, logs)
		}
	}
	if m := e.MustRun("cat-manifest", uuid); !strings.Contains(m, "example.com/owner") || !strings.Contains(m, `"name": "sh"`) {
		t.Errorf("pod manifest:\n%s", m)
	}
	e.MustRun("stop", uuid)
}

// An added app gets host volumes of its own, with rkt's --mnt-volume:
// bound into the running pod only (never in the host's mount table), a
// directory or a single file, read-only when asked, a target that climbs
// with .. staying inside the app's root, and unmounted in the pod when
// the app is removed. A missing source is refused in one line, and
// nothing is added.
func TestAppHostVolume(t *testing.T) {
	e := stage1Env(t)
	before := hostMountPoints()
	_, uuid := e.startSandbox("--net=host")
	host := filepath.Join(e.root, "shared")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(e.root, "single.conf")
	if err := os.WriteFile(conf, []byte("one-file"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.MustRun("app", "add", uuid, inspectName, "--name=vol",
		"--mnt-volume=name=data,kind=host,source="+host+",target=/data",
		"--mnt-volume=name=ro,kind=host,source="+host+",target=/../../../ro,readOnly=true",
		"--mnt-volume=name=conf,kind=host,source="+conf+",target=/etc/single.conf",
		"--", "-read-file=/data/in", "-write-file=/data/out", "-write-file=/ro/x", "-read-file=/ro/in",
		"-read-file=/etc/single.conf", "-content=hello", "-sleep=60s")
	pid := strings.TrimSpace(readFileOr(filepath.Join(e.Dir, "pods", "run", uuid, "pid")))
	for _, v := range []string{"data", "ro", "conf"} {
		if !strings.Contains(podMounts(t, pid), "/rkt/volumes/"+v+" ") {
			t.Errorf("volume %s is not bound in the pod", v)
		}
	}
	e.MustRun("app", "start", uuid, "--app=vol")
	e.waitAppState(uuid, "vol", "running")
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if logs = e.MustRun("logs", "--app=vol", uuid); strings.Contains(logs, "single.conf") {
			break
		}
	}
	for _, want := range []string{"file:/data/in=from-host", "write:/data/out=ok", "file:/ro/in=from-host", "file:/etc/single.conf=one-file"} {
		if !strings.Contains(logs, want) {
			t.Errorf("app output lacks %q:\n%s", want, logs)
		}
	}
	if !strings.Contains(logs, "write:/ro/x.error=") || !strings.Contains(logs, "read-only") {
		t.Errorf("the readOnly volume was writable:\n%s", logs)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "hello" {
		t.Errorf("the app's write did not reach the host: %q %v", b, err)
	}
	for m := range hostMountPoints() {
		if !before[m] && (strings.Contains(m, "volumes") || strings.Contains(m, uuid)) {
			t.Errorf("pod mount on the host: %s", m)
		}
	}
	// Refused: a source that does not exist; a name already used.
	r := e.Run("app", "add", uuid, inspectName, "--name=nosrc", "--mnt-volume=name=gone,kind=host,source="+filepath.Join(e.root, "absent")+",target=/x")
	oneLine(t, r, "absent")
	r = e.Run("app", "add", uuid, inspectName, "--name=dup", "--mnt-volume=name=data,kind=host,source="+host+",target=/x")
	oneLine(t, r, `volume "data"`)
	r = e.Run("app", "add", uuid, inspectName, "--name=bad", "--mnt-volume=name=x,kind=host,source="+host)
	oneLine(t, r, "target")
	if out := e.MustRun("app", "list", uuid, "--no-legend"); strings.Contains(out, "nosrc") || strings.Contains(out, "dup") || strings.Contains(out, "bad") {
		t.Errorf("a refused app was added:\n%s", out)
	}
	e.MustRun("app", "rm", uuid, "--app=vol")
	for _, v := range []string{"data", "ro", "conf"} {
		if strings.Contains(podMounts(t, pid), "/rkt/volumes/"+v+" ") {
			t.Errorf("volume %s is still bound in the pod after app rm", v)
		}
	}
	// The names are free again.
	e.MustRun("app", "add", uuid, inspectName, "--name=again", "--mnt-volume=name=data,kind=host,source="+host+",target=/data", "--", "-exit=0")
}

// A mutable pod in a user namespace of its own (--private-users): an added
// app's files are its root's there (an idmapped view of the store's tree,
// nothing copied), what it writes is stored as the pod's host user, its
// host volume is idmapped too, and the pod's systemd starts, stops and
// removes it; rkt enter reaches it.
func TestAppPrivateUsers(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startSandbox("--net=none", "--private-users")
	// A host volume, as the kubelet's are: the host's root's, idmapped.
	data := filepath.Join(e.root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "from-host"), []byte("h"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.MustRun("app", "add", uuid, busyboxName, "--name=sh", "--mnt-volume=name=data,kind=host,source="+data+",target=/data",
		"--exec=/bin/sh", "--", "-c",
		`id -u; cat /proc/self/uid_map; echo x > /written && echo x > /data/from-app && echo wrote; ls -ln /bin/busybox /written /data/from-host`)
	e.MustRun("app", "start", uuid, "--app=sh")
	if s := e.waitAppState(uuid, "sh", "exited"); s.ExitCode == nil || *s.ExitCode != 0 {
		t.Fatalf("app: %+v: %s", s, e.MustRun("logs", "--app=sh", uuid))
	}
	logs := strings.Fields(e.MustRun("logs", "--app=sh", uuid))
	// id -u; the uid map (0 BASE 65536); wrote; two ls -ln lines.
	if len(logs) < 8 || logs[0] != "0" || logs[1] != "0" || logs[2] == "0" || logs[4] != "wrote" {
		t.Fatalf("the app as the pod's root: %q", logs)
	}
	for _, l := range strings.Split(e.MustRun("logs", "--app=sh", uuid), "\n") {
		if f := strings.Fields(l); len(f) > 3 && strings.HasPrefix(f[0], "-") && (f[2] != "0" || f[3] != "0") {
			t.Errorf("a file of the app's root is not its root's: %q", l)
		}
	}
	// What the pod's root wrote in the volume is the host's root's.
	if st, err := os.Stat(filepath.Join(data, "from-app")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("a file the app wrote in its host volume: %v %v, want the host's root's", st, err)
	}
	e.MustRun("app", "rm", uuid, "--app=sh")
	e.MustRun("app", "add", uuid, busyboxName, "--name=long", "--exec=/bin/sleep", "--", "600")
	e.MustRun("app", "start", uuid, "--app=long")
	if r := e.enter(uuid, "/bin/cat", "/proc/self/uid_map"); r.Code != 0 || len(strings.Fields(r.Stdout)) != 3 || strings.Fields(r.Stdout)[1] != logs[2] {
		t.Errorf("rkt enter into the added app: %s", r)
	}
	e.MustRun("app", "rm", uuid, "--app=long")
	e.MustRun("stop", uuid)
}
