package tests

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// foreignStage1 writes a stage1 ACI as a third party would write one for
// rkt: shell-script entrypoints named by the coreos.com/rkt/stage1
// annotations, interface version 1. Its run entrypoint records what the
// implementors guide promises it (arguments, working directory, the fd
// named by RKT_LOCK_FD), writes pid and exits 7; its gc appends its
// arguments to gcLog, and fails while the file gcLog+".fail" exists.
func foreignStage1(t *testing.T, dir, gcLog string) string {
	t.Helper()
	manifest := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/foreign-stage1",
"labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"}],
"annotations":[{"name":"coreos.com/rkt/stage1/run","value":"/run.sh"},
{"name":"coreos.com/rkt/stage1/gc","value":"/gc.sh"},
{"name":"coreos.com/rkt/stage1/interface-version","value":"1"}]}`
	files := []struct{ name, body string }{
		{"rootfs/run.sh", "#!/bin/sh\n{ echo \"args=$*\"; echo \"cwd=$(pwd -P)\"; echo \"lock=$(readlink /proc/$$/fd/$RKT_LOCK_FD)\"; } > foreign.out\necho $$ > pid\nexit 7\n"},
		{"rootfs/gc.sh", "#!/bin/sh\necho \"gc $*\" >> " + gcLog + "\nif [ -e " + gcLog + ".fail ]; then echo 'cannot release the network' >&2; exit 1; fi\n"},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1500000000, 0)
	_ = tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), ModTime: now})
	_, _ = tw.Write([]byte(manifest))
	_ = tw.WriteHeader(&tar.Header{Name: "rootfs", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), ModTime: now})
		_, _ = tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "foreign-stage1.aci")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A stage1 written for rkt runs under this stage0: it is exec'd in the pod
// directory with the lock fd and only the arguments its interface version
// knows (v1: no --hostname), its exit code is rkt run's, and gc calls its
// gc entrypoint with the pod's UUID.
func TestStage1Foreign(t *testing.T) {
	e := flyEnv(t)
	gcLog := filepath.Join(e.root, "gc.log")
	s1 := foreignStage1(t, e.root, gcLog)
	uuidFile := filepath.Join(e.root, "uuid")
	r := e.Run("run", "--insecure-options=image", "--stage1-path="+s1, "--hostname=h",
		"--uuid-file-save="+uuidFile, inspectName)
	if r.Code != 7 {
		t.Fatalf("want the stage1's exit code 7: %s", r)
	}
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	uuid := strings.TrimSpace(string(b))
	podDir := filepath.Join(e.Dir, "pods", "run", uuid)
	out, err := os.ReadFile(filepath.Join(podDir, "foreign.out"))
	if err != nil {
		t.Fatalf("run entrypoint left no record: %v", err)
	}
	got := parseInspect(string(out))
	realPod, _ := filepath.EvalSymlinks(podDir)
	if got["cwd"] != realPod {
		t.Errorf("run entrypoint's cwd %q, want the pod directory %q", got["cwd"], realPod)
	}
	if got["lock"] != realPod {
		t.Errorf("RKT_LOCK_FD names %q, want the pod directory %q", got["lock"], realPod)
	}
	args := got["args"]
	if !strings.HasSuffix(args, " "+uuid) || !strings.Contains(args, "--net=") || !strings.Contains(args, "--local-config=") {
		t.Errorf("run arguments: %q", args)
	}
	if strings.Contains(args, "--hostname") || strings.Contains(args, "--disable-") || strings.Contains(args, "--dns-conf-mode") {
		t.Errorf("interface version 1 got a newer argument: %q", args)
	}
	if st := e.MustRun("status", uuid); !strings.Contains(st, "state=exited") {
		t.Errorf("status: %s", st)
	}
	e.MustRun("gc", "--grace-period=0s")
	if b, err := os.ReadFile(gcLog); err != nil || !strings.Contains(string(b), uuid) {
		t.Errorf("gc entrypoint not called with the UUID: %q %v", b, err)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory left after gc: %v", err)
	}
}

// A pod whose stage1 gc fails is not removed: its directory is the only
// record of what the stage1 must still release (leases, the network
// namespace, cgroups). gc says so in one line, exits non-zero, and tries
// again on the next run; after three failed runs it removes the pod anyway
// so that a broken stage1 cannot pin it forever.
func TestStage1GCFailureKeepsPod(t *testing.T) {
	e := flyEnv(t)
	gcLog := filepath.Join(e.root, "gc.log")
	s1 := foreignStage1(t, e.root, gcLog)
	if err := os.WriteFile(gcLog+".fail", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	newPod := func() string {
		uuidFile := filepath.Join(e.root, "uuid")
		if r := e.Run("run", "--insecure-options=image", "--stage1-path="+s1, "--uuid-file-save="+uuidFile, inspectName); r.Code != 7 {
			t.Fatalf("want the stage1's exit code 7: %s", r)
		}
		b, err := os.ReadFile(uuidFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	gcCalls := func(uuid string) int {
		b, _ := os.ReadFile(gcLog)
		return strings.Count(string(b), uuid)
	}
	garbageDir := func(uuid string) string { return filepath.Join(e.Dir, "pods", "exited-garbage", uuid) }

	// A failure that clears: kept, then collected by the next gc.
	uuid := newPod()
	r := e.Run("gc", "--grace-period=0s")
	if r.Code == 0 || !strings.Contains(r.Stderr, uuid) || !strings.Contains(r.Stderr, "stage1 gc failed") ||
		!strings.Contains(r.Stderr, "cannot release the network") ||
		!strings.Contains(r.Stderr, "kept for the next gc, failure 1 of 3") {
		t.Fatalf("gc with a failing stage1 gc: want a non-zero exit and the pod named as kept, with the stage1's reason: %s", r)
	}
	if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n != 0 {
		t.Errorf("want one line on stderr, got %d more: %q", n, r.Stderr)
	}
	if _, err := os.Stat(garbageDir(uuid)); err != nil {
		t.Fatalf("pod removed although its stage1 gc failed: %v", err)
	}
	if n := gcCalls(uuid); n != 2 {
		t.Errorf("stage1 gc called %d times by one gc, want 2 (one retry)", n)
	}
	if err := os.Remove(gcLog + ".fail"); err != nil {
		t.Fatal(err)
	}
	e.MustRun("gc", "--grace-period=0s")
	if _, err := os.Stat(garbageDir(uuid)); !os.IsNotExist(err) {
		t.Errorf("pod left after its stage1 gc succeeded: %v", err)
	}

	// A failure that never clears: removed by the third gc, with a warning.
	if err := os.WriteFile(gcLog+".fail", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	uuid = newPod()
	for i := 1; i <= 2; i++ {
		if r := e.Run("gc", "--grace-period=0s"); r.Code == 0 || !strings.Contains(r.Stderr, fmt.Sprintf("failure %d of 3", i)) {
			t.Fatalf("gc run %d: %s", i, r)
		}
	}
	r = e.Run("gc", "--grace-period=0s")
	if r.Code != 0 || !strings.Contains(r.Stderr, "removing it anyway") {
		t.Errorf("third gc: want the pod removed with a warning: %s", r)
	}
	if _, err := os.Stat(garbageDir(uuid)); !os.IsNotExist(err) {
		t.Errorf("pod left after three failed gc runs: %v", err)
	}
}
