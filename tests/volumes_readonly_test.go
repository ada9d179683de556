package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A read-only recursive host volume is read-only all the way down: a
// mount below the volume's source on the host (here a tmpfs) must not
// stay writable inside the pod, under either stage1. Without recursion
// the submount is not in the pod at all.
func TestVolumeRecursiveReadOnly(t *testing.T) {
	e := flyEnv(t)
	src := filepath.Join(e.root, "rvol")
	sub := filepath.Join(src, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	// Registered after newEnv's, so it runs first: the harness's check
	// for mounts left under the test's directory sees none of ours.
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("inner"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(args ...string) result
	}{{"fly", e.fly}, {"nspawn", e.nspawn}} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run("--volume=r,kind=host,source="+src+",recursive=true,readOnly=true",
				"--volume=n,kind=host,source="+src+",recursive=false",
				inspectName, "--mount=volume=r,target=/r", "--mount=volume=n,target=/n",
				"--", "-read-file=/r/sub/f", "-write-file=/r/sub/w", "-write-file=/r/w",
				"-read-file=/n/sub/f", "-content=x", "-exit=0")
			if r.Code != 0 {
				t.Fatal(r)
			}
			m := parseInspect(r.Stdout)
			if m["file:/r/sub/f"] != "inner" {
				t.Errorf("recursive volume lacks the host's submount: %s", r.Stdout)
			}
			for _, w := range []string{"write:/r/sub/w.error", "write:/r/w.error"} {
				if !strings.Contains(m[w], "read-only") {
					t.Errorf("%s: want a read-only error: %s", w, r.Stdout)
				}
			}
			if m["file:/n/sub/f"] != "" || m["file:/n/sub/f.error"] == "" {
				t.Errorf("non-recursive volume shows the submount: %s", r.Stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(sub, "w")); err == nil {
		t.Error("a pod wrote through a read-only volume")
	}
}
