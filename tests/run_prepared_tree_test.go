package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tree changed between prepare and run-prepared is refused as rkt run
// refuses it, the pod stays prepared, and --insecure-options=ondisk runs
// it as it is.
func TestRunPreparedChecksTrees(t *testing.T) {
	e := flyEnv(t)
	s1 := "--stage1-path=" + testImage("stage1-fly.aci")
	uuid := strings.TrimSpace(e.MustRun("prepare", s1, inspectName, "--exec", "/bin/cat", "--", "/planted"))
	tree := e.flyTreeOf(t, inspectName)
	planted := filepath.Join(e.Dir, "cas", "tree", tree, "rootfs", "planted")
	if err := os.WriteFile(planted, []byte("planted after prepare\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stOneLine(t, e.Run("run-prepared", uuid), tree, "corrupt")
	if p := e.podsIn("prepared"); len(p) != 1 || p[0] != uuid {
		t.Fatalf("the pod did not stay prepared after the refusal: %v", p)
	}
	r := e.Run("--insecure-options=ondisk", "run-prepared", uuid)
	if r.Code != 0 || !strings.Contains(r.Stdout, "planted after prepare") {
		t.Fatalf("run-prepared with ondisk on the changed tree: %s", r)
	}
}
