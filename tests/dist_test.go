package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistUnitsVerify checks every systemd unit that dist/ ships with
// systemd's own parser, pointed at the rkt under test, so that a typo in a
// directive or a unit that names a missing one fails here and not on a
// packager's machine.
func TestDistUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	units, _ := filepath.Glob("../dist/systemd/*")
	examples, _ := filepath.Glob("../dist/examples/*.service")
	units = append(units, examples...)
	if len(units) == 0 {
		t.Fatal("no units in dist/")
	}
	dir := t.TempDir()
	var names []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/bin/rkt", rktBin())
		name := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, names...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}
}
