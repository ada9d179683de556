package tests

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
)

// podsIn lists the pod UUIDs in one state directory.
func (e *env) podsIn(state string) []string {
	ents, _ := os.ReadDir(filepath.Join(e.Dir, "pods", state))
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

// noPodsLeft fails unless no pod is in any state.
func (e *env) noPodsLeft(what string) {
	e.t.Helper()
	for _, s := range []string{"embryo", "prepare", "prepared", "run", "exited-garbage", "garbage"} {
		if p := e.podsIn(s); len(p) > 0 {
			e.t.Errorf("%s left pods in %s: %v", what, s, p)
		}
	}
	if m := mountsUnder(e.root); len(m) > 0 {
		e.t.Errorf("%s left mounts: %v", what, m)
	}
}

func TestPodBadInput(t *testing.T) {
	e := flyEnv(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown image", flyArgs("--pull-policy=never", "rktng.io/test/no-such-image"), "no-such-image"},
		{"stage1 without entrypoints", []string{"--insecure-options=image", "run", "--stage1-path=" + testImage("inspect.aci"), inspectName}, "entrypoint"},
		{"volume with no mount", flyArgs("--volume=lonely,kind=empty", inspectName), "lonely"},
		{"mount of no volume", flyArgs(inspectName, "--mount=volume=ghost,target=/g"), "ghost"},
		{"user the image lacks", flyArgs(inspectName, "--user=nosuchuser"), "nosuchuser"},
		{"group the image lacks", flyArgs(inspectName, "--group=nosuchgroup"), "nosuchgroup"},
		{"exec the image lacks", flyArgs(inspectName, "--exec=/no/such/binary"), "/no/such/binary"},
		{"relative working dir", flyArgs(inspectName, "--working-dir=rel"), "working"},
		{"conflicting stage1 flags", flyArgs("--stage1-name=x", inspectName), "conflicting"},
		{"pod manifest and images", flyArgs("--pod-manifest=/dev/null", inspectName), "conflicting"},
		{"per-app flag before an image", flyArgs("--exec=/bin/true", inspectName), "must follow an image"},
		{"bad volume", flyArgs("--volume=v,kind=nosuch", inspectName), "volume"},
		{"port the apps lack", flyArgs("--port=nosuchport:8080", inspectName), "nosuchport"},
		{"relative host volume", flyArgs("--volume=v,kind=host,source=rel", inspectName, "--mount=volume=v,target=/v"), "absolute"},
	}
	for _, c := range cases {
		r := e.Run(c.args...)
		if r.Code != 254 {
			t.Errorf("%s: exit %d, want 254: %s", c.name, r.Code, r)
			continue
		}
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "rkt: ") || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%s: want one line naming %q, got:\n%s", c.name, c.want, r.Stderr)
		}
		e.noPodsLeft(c.name)
	}
}

func TestPodPrepareRunPrepared(t *testing.T) {
	e := flyEnv(t)
	uuid := strings.TrimSpace(e.MustRun("prepare", "--stage1-path="+testImage("stage1-fly.aci"),
		inspectName, "--name=app1", "--", "-exit=4"))
	if len(uuid) != 36 {
		t.Fatalf("prepare printed %q", uuid)
	}
	if st := parseInspect(e.MustRun("status", uuid)); st["state"] != "prepared" {
		t.Fatalf("status of prepared pod: %v", st)
	}
	// The manifest stage0 wrote is complete: the app section is there,
	// with the command line's overrides.
	var pm schema.PodManifest
	if err := json.Unmarshal([]byte(e.MustRun("cat-manifest", uuid)), &pm); err != nil {
		t.Fatal(err)
	}
	if len(pm.Apps) != 1 || pm.Apps[0].Name != "app1" || pm.Apps[0].App == nil ||
		strings.Join(pm.Apps[0].App.Exec, " ") != "/inspect -exit=4" {
		t.Fatalf("manifest: %+v", pm.Apps)
	}
	for _, f := range []string{"pod", "pod-created", "runtime-config", "stage1TreeStoreID", "stage1/manifest",
		"appsinfo/app1/manifest", "appsinfo/app1/treeStoreID", "overlay-prepared"} {
		if _, err := os.Stat(filepath.Join(e.Dir, "pods", "prepared", uuid, f)); err != nil {
			t.Errorf("prepared pod lacks %s: %v", f, err)
		}
	}
	if r := e.Run("run-prepared", uuid); r.Code != 4 {
		t.Fatalf("run-prepared: %s", r)
	}
	st := parseInspect(e.MustRun("status", uuid))
	if st["state"] != "exited" || st["exited"] != "true" || st["app-app1"] != "4" {
		t.Fatalf("status: %v", st)
	}
	if r := e.Run("run-prepared", uuid); r.Code != 254 || !strings.Contains(r.Stderr, "not prepared") {
		t.Fatalf("second run-prepared: %s", r)
	}
}

func TestPodStatusWaitAndList(t *testing.T) {
	e := flyEnv(t)
	cmd, uuid := e.startFly(inspectName, "--user-annotation=who=test", "--", "-sleep=1s", "-exit=7")
	st := parseInspect(e.MustRun("status", uuid))
	if st["state"] != "running" || st["exited"] != "false" || st["pid"] == "" || st["pid"] == "-1" {
		t.Fatalf("running status: %v", st)
	}
	rows := e.MustRun("list", "--no-legend")
	if !strings.Contains(rows, uuid[:8]) || !strings.Contains(rows, "running") {
		t.Fatalf("list: %s", rows)
	}
	st = parseInspect(e.MustRun("status", "--wait=30s", uuid))
	if st["state"] != "exited" || st["app-inspect"] != "7" {
		t.Fatalf("status --wait: %v", st)
	}
	if code := exitCode(t, cmd); code != 7 {
		t.Fatalf("rkt run exit %d", code)
	}
	var pods []struct {
		Name     string   `json:"name"`
		State    string   `json:"state"`
		AppNames []string `json:"app_names"`
		Apps     []struct {
			ExitCode *int `json:"exit_code"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(e.MustRun("list", "--format=json")), &pods); err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].Name != uuid || pods[0].State != "exited" || len(pods[0].Apps) != 1 ||
		pods[0].Apps[0].ExitCode == nil || *pods[0].Apps[0].ExitCode != 7 {
		t.Fatalf("list --format=json: %+v", pods)
	}
	legend := strings.SplitN(e.MustRun("list", "--full"), "\n", 2)[0]
	for _, col := range []string{"UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE", "CREATED", "STARTED", "NETWORKS"} {
		if !strings.Contains(legend, col) {
			t.Errorf("list --full legend lacks %s: %q", col, legend)
		}
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(e.MustRun("status", "--format=json", uuid)), &js); err != nil || js["state"] != "exited" {
		t.Fatalf("status --format=json: %v %v", js, err)
	}
	// A short wait on a running pod times out with a clear error.
	cmd, uuid = e.startFly(inspectName, "--", "-sleep=60s")
	if r := e.Run("status", "--wait=100ms", uuid); r.Code != 254 {
		t.Fatalf("status --wait=100ms on a running pod: %s", r)
	}
	e.MustRun("stop", "--force", uuid)
	_ = exitCode(t, cmd)
}

func TestPodRmExportAndUUIDFile(t *testing.T) {
	e := flyEnv(t)
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.fly("--uuid-file-save="+uuidFile, inspectName, "--exec=/bin/sh", "--", "-c", "echo exported > /made-in-pod")
	if r.Code != 0 {
		t.Fatal(r)
	}
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	uuid := string(b)
	out := filepath.Join(e.root, "out.aci")
	e.MustRun("export", uuid, out)
	if got := aciFile(t, out, "rootfs/made-in-pod"); got != "exported\n" {
		t.Fatalf("exported file: %q", got)
	}
	if got := aciFile(t, out, "rootfs/inspect"); got == "" {
		t.Fatal("exported image lacks the image's own files")
	}
	if r := e.Run("export", uuid, out); r.Code != 254 || !strings.Contains(r.Stderr, "--overwrite") {
		t.Fatalf("export over an existing file: %s", r)
	}
	if got := strings.TrimSpace(e.MustRun("rm", "--uuid-file="+uuidFile)); got != uuid {
		t.Fatalf("rm printed %q", got)
	}
	if r := e.Run("status", uuid); r.Code != 254 {
		t.Fatalf("status after rm: %s", r)
	}
	e.noPodsLeft("rm")
}

// aciFile returns the content of name in the ACI at path ("" if absent).
func aciFile(t *testing.T, path, name string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}

func TestPodGCGraceAndMarkOnly(t *testing.T) {
	e := flyEnv(t)
	if r := e.fly(inspectName, "--exec=/bin/true"); r.Code != 0 {
		t.Fatal(r)
	}
	e.MustRun("gc", "--mark-only")
	if len(e.podsIn("exited-garbage")) != 1 || len(e.podsIn("run")) != 0 {
		t.Fatalf("--mark-only: run=%v exited-garbage=%v", e.podsIn("run"), e.podsIn("exited-garbage"))
	}
	// Within the grace period the pod stays.
	e.MustRun("gc", "--grace-period=1h")
	if len(e.podsIn("exited-garbage")) != 1 {
		t.Fatal("pod removed within its grace period")
	}
	// A prepared pod survives gc until it expires.
	e.MustRun("prepare", "--stage1-path="+testImage("stage1-fly.aci"), inspectName)
	e.MustRun("gc", "--grace-period=0s")
	if len(e.podsIn("prepared")) != 1 || len(e.podsIn("exited-garbage")) != 0 {
		t.Fatalf("gc: prepared=%v exited-garbage=%v", e.podsIn("prepared"), e.podsIn("exited-garbage"))
	}
	time.Sleep(10 * time.Millisecond)
	e.MustRun("gc", "--expire-prepared=1ms", "--grace-period=0s")
	e.noPodsLeft("gc")
}

func TestPodStage1Selection(t *testing.T) {
	e := flyEnv(t)
	// By path first: that imports the stage1 into the store.
	if r := e.fly(inspectName, "--exec=/bin/true"); r.Code != 0 {
		t.Fatal(r)
	}
	for _, sel := range []string{"--stage1-name=rktng.io/rkt/stage1-fly", "--stage1-from-dir=stage1-fly.aci",
		"--stage1-url=file://" + testImage("stage1-fly.aci")} {
		r := e.Run("run", sel, inspectName, "--", "-exit=5")
		if r.Code != 5 {
			t.Errorf("%s: %s", sel, r)
		}
	}
	// By hash, full and as rkt's short form (the first 32 hex digits).
	var imgs []struct{ ID, Name string }
	if err := json.Unmarshal([]byte(e.MustRun("image", "list", "--format=json")), &imgs); err != nil {
		t.Fatal(err)
	}
	byHash := 0
	for _, im := range imgs {
		if strings.HasPrefix(im.Name, "rktng.io/rkt/stage1-fly") {
			byHash++
			for _, h := range []string{im.ID, im.ID[:len("sha512-")+32]} {
				if r := e.Run("run", "--stage1-hash="+h, inspectName, "--", "-exit=5"); r.Code != 5 {
					t.Errorf("--stage1-hash=%s: %s", h, r)
				}
			}
		}
	}
	if byHash != 1 {
		t.Errorf("image list shows %d fly stage1 images, want 1: %v", byHash, imgs)
	}
	if r := e.Run("run", "--stage1-hash=sha512-0000", inspectName); r.Code != 254 || !strings.Contains(r.Stderr, "stage1") {
		t.Errorf("unknown --stage1-hash: %s", r)
	}
	e.noPodsLeftIn("embryo", "prepare")
}

// noPodsLeftIn fails if any pod sits in the given states.
func (e *env) noPodsLeftIn(states ...string) {
	e.t.Helper()
	for _, s := range states {
		if p := e.podsIn(s); len(p) > 0 {
			e.t.Errorf("pods left in %s: %v", s, p)
		}
	}
}

// --pod-manifest: apps come from the file; one without an app section
// gets its image's, and the manifest the pod keeps is complete.
func TestPodManifestFlag(t *testing.T) {
	e := flyEnv(t)
	pmFile := filepath.Join(e.root, "pod.json")
	write := func(s string) {
		if err := os.WriteFile(pmFile, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"fromfile",
		"image":{"name":"rktng.io/test/inspect","labels":[{"name":"version","value":"1.0.0"}]},
		"app":{"exec":["/inspect","-print-env=PM","-exit=6"],"user":"0","group":"0",
		"environment":[{"name":"PM","value":"yes"}]}}]}`)
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.fly("--uuid-file-save="+uuidFile, "--pod-manifest="+pmFile)
	if r.Code != 6 || parseInspect(r.Stdout)["env:PM"] != "yes" {
		t.Fatalf("--pod-manifest: %s", r)
	}
	st := parseInspect(e.MustRun("status", "--uuid-file="+uuidFile))
	if st["app-fromfile"] != "6" {
		t.Fatalf("status: %v", st)
	}
	write(`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"noapp","image":{"name":"rktng.io/test/inspect"}}]}`)
	r = e.fly("--uuid-file-save="+uuidFile, "--pod-manifest="+pmFile)
	if r.Code != 0 || parseInspect(r.Stdout)["env:INSPECT_IMAGE_ENV"] != "from-image" {
		t.Fatalf("--pod-manifest without app: %s", r)
	}
	var pm schema.PodManifest
	if err := json.Unmarshal([]byte(e.MustRun("cat-manifest", "--uuid-file="+uuidFile)), &pm); err != nil {
		t.Fatal(err)
	}
	if pm.Apps[0].App == nil || pm.Apps[0].App.Exec[0] != "/inspect" || pm.Apps[0].Image.ID.Empty() {
		t.Fatalf("stored manifest incomplete: %+v", pm.Apps[0])
	}
}
