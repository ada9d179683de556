package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A volume mounted where the image has the other kind of file (a host
// file over the image's /etc, a directory over its /inspect binary) is
// refused in one line before any app starts. Under the nspawn stage1,
// systemd used to fail the bind while setting up the app's namespace,
// where nothing reported it, and the pod waited forever.
func TestVolumeTypeMismatchRefused(t *testing.T) {
	e := flyEnv(t)
	file := filepath.Join(e.root, "hostfile")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func(args ...string) result
	}{{"fly", e.fly}, {"nspawn", e.nspawn}} {
		for _, c := range []struct{ source, target string }{{file, "/etc"}, {e.root, "/inspect"}} {
			r := tc.run("--volume=v,kind=host,source="+c.source, inspectName, "--mount=volume=v,target="+c.target)
			if r.Code != 254 || !strings.Contains(r.Stderr, c.target) ||
				strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
				t.Errorf("%s: volume %s at %s: want exit 254 and one line naming the target: %s",
					tc.name, c.source, c.target, r)
			}
		}
	}
	e.noPodsLeftIn("embryo", "prepare")
}

// rkt run takes --mnt-volume too: a volume of the app's own, defined and
// mounted in one flag, under both stage1s.
func TestRunMntVolume(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		host := filepath.Join(e.root, "shared")
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "in"), []byte("from-host"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.runIso(f, inspectName, "--mnt-volume=name=data,kind=host,source="+host+",target=/data",
			"--mnt-volume=name=ro,kind=host,source="+host+",target=/ro,readOnly=true",
			"--", "-read-file=/data/in", "-write-file=/data/out", "-write-file=/ro/x", "-content=hi", "-exit=0")
		m := parseInspect(r.Stdout)
		if m["file:/data/in"] != "from-host" || m["write:/data/out"] != "ok" {
			t.Errorf("--mnt-volume: %v", m)
		}
		if !strings.Contains(m["write:/ro/x.error"], "read-only") {
			t.Errorf("readOnly --mnt-volume writable: %v", m)
		}
		r = e.runIso(f, inspectName, "--mnt-volume=name=data,kind=host,source=relative,target=/data")
		if r.Code == 0 || !strings.Contains(r.Stderr, "absolute") {
			t.Errorf("relative source: %s", r)
		}
	})
}
