package tests

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// procArgs is the shell command that prints the command lines of the
// processes /proc shows, one per line.
const procArgs = `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done`

// --pid-namespace=private: the app runs in a PID namespace of its own and
// sees only its processes (a /proc of its namespace), while an app in the
// pod's sees them too; the app is not its namespace's PID 1, so SIGTERM
// without a handler ends it; its exit status, rkt enter and stop work as
// for any app. The fly refuses it.
func TestStage1PrivatePIDNamespace(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	uuidFile := filepath.Join(e.root, "uuid")
	// The two apps meet through a shared volume, not through timing:
	// "shared" starts its marker process and says so; "alone" then lists
	// what it sees, with a marker of its own running until "shared" has
	// seen that one.
	r := e.nspawn("--uuid-file-save="+uuidFile, "--volume=sync,kind=empty",
		busyboxName, "--name=alone", "--pid-namespace=private", "--mount=volume=sync,target=/sync", "--exec=/bin/sh", "--", "-c",
		`echo pid=$$; sleep 30 & until [ -e /sync/ready ]; do sleep 0.05; done; `+procArgs+
			`; until [ -e /sync/seen ]; do sleep 0.05; done; kill $!; exit 7`,
		"---", busyboxName, "--name=shared", "--mount=volume=sync,target=/sync", "--exec=/bin/sh", "--", "-c",
		`sleep 29 & touch /sync/ready; for i in $(seq 400); do (`+procArgs+`) > /tmp/seen; grep -q "sleep 30" /tmp/seen && break; sleep 0.05; done; `+
			`cat /tmp/seen; touch /sync/seen; kill $!`)
	if r.Code != 7 {
		t.Fatalf("want the first app's exit status 7: %s", r)
	}
	var alone, shared string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "[alone] "); ok {
			alone += v + "\n"
		}
		if v, ok := strings.CutPrefix(l, "[shared] "); ok {
			shared += v + "\n"
		}
	}
	if !strings.Contains(alone, "sleep 30") || strings.Contains(alone, "sleep 29") || strings.Contains(alone, "systemd") {
		t.Errorf("the private app sees the pod's processes:\n%s", alone)
	}
	if !strings.Contains(shared, "sleep 30") || !strings.Contains(shared, "sleep 29") || !strings.Contains(shared, "systemd") {
		t.Errorf("an app of the pod's namespace does not see the private app's processes:\n%s", shared)
	}
	if !regexp.MustCompile(`(?m)^pid=\d+$`).MatchString(alone) || strings.Contains(alone, "pid=1\n") {
		t.Errorf("the private app is its namespace's PID 1:\n%s", alone)
	}
	uuid := strings.TrimSpace(readFile(t, uuidFile))
	if st := e.MustRun("status", uuid); !strings.Contains(st, "app-alone=7") {
		t.Errorf("status: %s", st)
	}

	// A running one: rkt enter joins its namespace, stop's SIGTERM ends
	// it (it has no handler: as PID 1 it would ignore it).
	cmd, uuid := e.startNspawn(busyboxName, "--pid-namespace=private", "--exec=/bin/sleep", "--", "600")
	r = e.enter(uuid, "/bin/sh", "-c", procArgs)
	if r.Code != 0 || !strings.Contains(r.Stdout, "sleep 600") || strings.Contains(r.Stdout, "systemd") {
		t.Errorf("rkt enter into the private namespace: %s", r)
	}
	e.MustRun("stop", uuid)
	if code := exitCode(t, cmd); code != 143 {
		t.Errorf("stopped app: exit %d, want 143 (SIGTERM)", code)
	}

	r = e.Run("run", "--stage1-path="+testImage("stage1-fly.aci"), busyboxName, "--pid-namespace=private")
	if r.Code == 0 || !strings.Contains(r.Stderr, "needs the default stage1") {
		t.Errorf("the fly with --pid-namespace=private: %s", r)
	}
	r = e.nspawn(busyboxName, "--pid-namespace=own")
	if r.Code != 254 || !strings.Contains(r.Stderr, "--pid-namespace=own") {
		t.Errorf("--pid-namespace=own: %s", r)
	}
}

// The kubelet's default for a container is a PID namespace of its own
// (CONTAINER); shareProcessNamespace asks for the pod's (POD).
func TestCRIContainerPIDNamespaces(t *testing.T) {
	netNeedStage1(t)
	rt, img, ctx := criWithBusybox(t)
	sb, cfg := nodeSandbox(t, rt, ctx, "pids", false)
	start := func(name, seconds string, mode runtimeapi.NamespaceMode) string {
		t.Helper()
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: img,
				Args: []string{"-c", "exec sleep " + seconds},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode}}}}})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", name, err)
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		return cc.ContainerId
	}
	own := start("own", "601", runtimeapi.NamespaceMode_CONTAINER)
	pod := start("pod", "602", runtimeapi.NamespaceMode_POD)
	sees := func(id string) string {
		t.Helper()
		r, err := execWhenRunning(t, rt, ctx, id, "/bin/sh", "-c", procArgs)
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("ExecSync: %v %v", r, err)
		}
		return string(r.Stdout)
	}
	if s := sees(own); !strings.Contains(s, "sleep 601") || strings.Contains(s, "sleep 602") {
		t.Errorf("a container of its own PID namespace sees:\n%s", s)
	}
	if s := sees(pod); !strings.Contains(s, "sleep 601") || !strings.Contains(s, "sleep 602") {
		t.Errorf("a container of the pod's PID namespace sees:\n%s", s)
	}
}
