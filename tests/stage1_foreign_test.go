package tests

import (
	"archive/tar"
	"bytes"
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
// arguments to gcLog.
func foreignStage1(t *testing.T, dir, gcLog string) string {
	t.Helper()
	manifest := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/foreign-stage1",
"labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"}],
"annotations":[{"name":"coreos.com/rkt/stage1/run","value":"/run.sh"},
{"name":"coreos.com/rkt/stage1/gc","value":"/gc.sh"},
{"name":"coreos.com/rkt/stage1/interface-version","value":"1"}]}`
	files := []struct{ name, body string }{
		{"rootfs/run.sh", "#!/bin/sh\n{ echo \"args=$*\"; echo \"cwd=$(pwd -P)\"; echo \"lock=$(readlink /proc/$$/fd/$RKT_LOCK_FD)\"; } > foreign.out\necho $$ > pid\nexit 7\n"},
		{"rootfs/gc.sh", "#!/bin/sh\necho \"gc $*\" >> " + gcLog + "\n"},
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
