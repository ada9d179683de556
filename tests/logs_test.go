package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsWithoutJournal: rkt logs of a pod whose stage1 keeps no logs (the
// fly stage1 has no logs entrypoint) and of a pod that never started each
// get one line saying so.
func TestLogsWithoutJournal(t *testing.T) {
	e := flyEnv(t)
	uuidFile := filepath.Join(e.root, "fly-uuid")
	if r := e.fly("--uuid-file-save="+uuidFile, inspectName, "--exec=/inspect", "--", "-exit=0"); r.Code != 0 {
		t.Fatalf("fly pod: %s", r)
	}
	b, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	check := func(uuid, want string) {
		t.Helper()
		r := e.Run("logs", uuid)
		t.Logf("rkt logs: %s", strings.TrimSpace(r.Stderr))
		if r.Code != 254 || !strings.Contains(r.Stderr, want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Fatalf("rkt logs %s: want one line with %q and exit 254: %s", uuid, want, r)
		}
	}
	check(strings.TrimSpace(string(b)), "keeps none")

	prepared := strings.TrimSpace(e.MustRun("prepare", "--stage1-path="+testImage("stage1.aci"), inspectName))
	check(prepared, "never started")
}
