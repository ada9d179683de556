package stage0

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rktng/rkt/pkg/pod"
)

// exitedPod makes an unlocked pod directory in run/ (a pod that exited)
// whose stage1 has no gc entrypoint.
func exitedPod(t *testing.T, dataDir, uuid string) {
	t.Helper()
	dir := pod.Dir(dataDir, pod.Run, uuid)
	if err := os.MkdirAll(filepath.Dir(pod.Stage1ManifestPath(dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	m := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/s1","annotations":[{"name":"coreos.com/rkt/stage1/run","value":"/run"}]}`
	if err := os.WriteFile(pod.Stage1ManifestPath(dir), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range pod.States {
		if err := os.MkdirAll(pod.StateDir(dataDir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// With --grace-period=0 every exited pod goes in one gc, however the
// clock compares with the ctime of the rename that marked it: gc once
// read the clock before marking, so a pod marked after the file system's
// clock had ticked looked younger than zero and stayed (on a busy host,
// most of them).
func TestGCGraceZeroCollectsWhatItMarks(t *testing.T) {
	dataDir := t.TempDir()
	for _, u := range []string{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"} {
		exitedPod(t, dataDir, u)
	}
	// A clock behind the file system's: every rename is "in the future".
	behind := func() time.Time { return time.Now().Add(-time.Hour) }
	if err := GC(t.Context(), GCConfig{DataDir: dataDir, Now: behind}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []pod.State{pod.Run, pod.ExitedGarbage} {
		if left, _ := os.ReadDir(pod.StateDir(dataDir, s)); len(left) > 0 {
			t.Errorf("pods left in %s: %v", s, left)
		}
	}

	// A grace period still keeps a pod marked a moment ago.
	exitedPod(t, dataDir, "33333333-3333-3333-3333-333333333333")
	if err := GC(t.Context(), GCConfig{DataDir: dataDir, GracePeriod: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(pod.StateDir(dataDir, pod.ExitedGarbage)); len(left) != 1 {
		t.Errorf("exited-garbage after a gc with a grace period: %v, want the pod kept", left)
	}
}
