package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rkt cp: files between the host and a running app, as the app sees its
// root (volumes included), never outside it.
func TestCopy(t *testing.T) {
	e := newEnv(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startSandbox("--net=host")
	vol := filepath.Join(e.root, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	e.MustRun("app", "add", uuid, busyboxName, "--name=box", "--mnt-volume=name=data,kind=host,source="+vol+",target=/data",
		"--exec=/bin/sleep", "--", "600")
	e.MustRun("app", "start", uuid, "--app=box")
	e.waitAppState(uuid, "box", "running")
	in := func(script string) string {
		t.Helper()
		return e.MustRun("enter", "--app=box", uuid, "/bin/sh", "-c", script)
	}

	// A tree in: files, a directory, a relative link, modes.
	src := filepath.Join(e.root, "tree")
	for p, body := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	e.MustRun("cp", src, uuid+":/tmp")
	if got := in("cat /tmp/tree/a.txt /tmp/tree/sub/b.txt; readlink /tmp/tree/link; stat -c %a /tmp/tree/a.txt"); got != "alpha\nbeta\na.txt\n640\n" {
		t.Errorf("copied in: %q", got)
	}
	// A file to a new name, into the app's volume: the app's own view.
	e.MustRun("cp", filepath.Join(src, "a.txt"), uuid+":/data/renamed")
	if b, err := os.ReadFile(filepath.Join(vol, "renamed")); err != nil || string(b) != "alpha\n" {
		t.Errorf("copy into the app's volume: %q %v", b, err)
	}

	// And back out.
	out := filepath.Join(e.root, "out")
	e.MustRun("cp", uuid+":/tmp/tree", out)
	for p, body := range map[string]string{"a.txt": "alpha\n", "sub/b.txt": "beta\n"} {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(b) != body {
			t.Errorf("copied out %s: %q %v", p, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "a.txt" {
		t.Errorf("link copied out: %q %v", l, err)
	}
	e.MustRun("cp", uuid+":/etc/passwd", e.root)
	if b, err := os.ReadFile(filepath.Join(e.root, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("file copied out into a directory: %q %v", b, err)
	}

	// Links in the app that lead out of its root are not followed.
	outside := filepath.Join(e.root, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	in("ln -s " + strings.Repeat("../", 12) + strings.TrimPrefix(outside, "/") + " /tmp/up; ln -s " + outside + " /tmp/abs")
	for _, dst := range []string{"/tmp/up/x", "/tmp/abs/x", "/tmp/up/"} {
		oneLine(t, e.Run("cp", filepath.Join(src, "a.txt"), uuid+":"+dst), "escapes")
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine(t, e.Run("cp", uuid+":/tmp/abs/secret", filepath.Join(e.root, "stolen")), "escapes")
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the copy wrote outside the app: %v", entries)
	}

	oneLine(t, e.Run("cp", src, filepath.Join(e.root, "x")), "must be UUID:PATH")
	oneLine(t, e.Run("cp", uuid+":/nope", out), "/nope")
	e.MustRun("stop", uuid)
	e.MustRun("status", "--wait=30s", uuid)
	oneLine(t, e.Run("cp", src, uuid+":/tmp"), "not running")
}
