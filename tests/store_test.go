package tests

// Functional tests of the image store through the real rkt binary: every
// kind of bad input is refused with one line and leaves nothing in the
// store, a full disk included; concurrent fetches share one blob.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// stEntry is one entry of an ACI the tests build.
type stEntry struct {
	name     string
	typeflag byte
	body     []byte
	linkname string
}

func stFile(name, body string) stEntry {
	return stEntry{name: name, typeflag: tar.TypeReg, body: []byte(body)}
}
func stDir(name string) stEntry { return stEntry{name: name, typeflag: tar.TypeDir} }
func stSymlink(name, target string) stEntry {
	return stEntry{name: name, typeflag: tar.TypeSymlink, linkname: target}
}
func stHardlink(name, target string) stEntry {
	return stEntry{name: name, typeflag: tar.TypeLink, linkname: target}
}

// stManifest is a valid image manifest for name, with optional
// dependencies (by name) and a version label.
func stManifest(name, version string, deps ...string) string {
	m := map[string]any{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name}
	if version != "" {
		m["labels"] = []map[string]string{{"name": "version", "value": version}, {"name": "os", "value": "linux"}}
	}
	var ds []map[string]any
	for _, d := range deps {
		ds = append(ds, map[string]any{"imageName": d})
	}
	if ds != nil {
		m["dependencies"] = ds
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// stTar builds an ACI: manifest (if any), the rootfs directory, entries.
func stTar(t *testing.T, manifest string, entries ...stEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1500000000, 0)
	if manifest != "" {
		entries = append([]stEntry{stFile("manifest", manifest), stDir("rootfs")}, entries...)
	}
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.linkname, Mode: 0o755, ModTime: mt, Size: int64(len(e.body))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func stGzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// stWrite puts an ACI in a file of the test's own.
func stWrite(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// stFetch imports a file without signature checks.
func (e *env) stFetch(path string) result {
	e.t.Helper()
	return e.Run("--insecure-options=image", "fetch", path)
}

// stNothingLeft fails if the store under e holds any blob, temp file,
// index row or tree.
func (e *env) stNothingLeft() {
	e.t.Helper()
	cas := filepath.Join(e.Dir, "cas")
	for _, sub := range []string{"blob", "tmp", "tree"} {
		var left []string
		filepath.WalkDir(filepath.Join(cas, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && (!d.IsDir() || filepath.Dir(p) == filepath.Join(cas, "tree")) {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			e.t.Errorf("cas/%s not empty: %v", sub, left)
		}
	}
	if out := e.MustRun("image", "list", "--no-legend"); strings.TrimSpace(out) != "" {
		e.t.Errorf("image list not empty:\n%s", out)
	}
}

// stOneLine checks that a refusal printed exactly one line, rkt's
// "rkt: ..." line, containing all of words.
func stOneLine(t *testing.T, r result, words ...string) {
	t.Helper()
	if r.Code != 254 {
		t.Errorf("exit %d, want 254", r.Code)
	}
	t.Logf("stderr: %s", r.Stderr)
	msg := strings.TrimRight(r.Stderr, "\n")
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "rkt: ") {
		t.Errorf("want one rkt: line, got %q", r.Stderr)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestStoreBadInput(t *testing.T) {
	m := stManifest("example.com/bad", "1.0")
	valid := stTar(t, m, stFile("rootfs/data", strings.Repeat("payload ", 4096)))
	gz := stGzip(valid)
	cases := []struct {
		name  string
		data  []byte
		words []string
	}{
		{"corrupt tar", append([]byte("garbage where a tar header belongs"), make([]byte, 4096)...), []string{"corrupt tar"}},
		{"truncated tar", valid[:len(valid)-3000], []string{"truncated"}},
		{"tar cut at an entry boundary", valid[:len(valid)-1024], []string{"truncated", "end-of-archive"}},
		{"gzip ends early", gz[:len(gz)-40], []string{"gzip", "ends early"}},
		{"manifest fails the schema", stTar(t, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"UPPER case!"}`), []string{"manifest", "schema"}},
		{"manifest missing", stTar(t, "", stDir("rootfs"), stFile("rootfs/a", "a")), []string{"no manifest"}},
		{"dotdot entry", stTar(t, m, stFile("rootfs/../../../tmp/rkt-test-escape", "x")), []string{`"rootfs/../../../tmp/rkt-test-escape"`, "unsafe path"}},
		{"absolute symlink parent", stTar(t, m, stSymlink("rootfs/etc", "/etc"), stFile("rootfs/etc/rkt-test-escape", "x")), []string{`"rootfs/etc/rkt-test-escape"`, "outside"}},
		{"relative symlink parent", stTar(t, m, stSymlink("rootfs/up", "../../../../.."), stFile("rootfs/up/tmp/rkt-test-escape", "x")), []string{`"rootfs/up/tmp/rkt-test-escape"`, "outside"}},
		{"hard link to outside", stTar(t, m, stHardlink("rootfs/passwd", "/etc/passwd")), []string{`"rootfs/passwd"`, "unsafe path"}},
		{"hard link through a symlink", stTar(t, m, stSymlink("rootfs/host", "/"), stHardlink("rootfs/passwd", "rootfs/host/etc/passwd")), []string{`"rootfs/passwd"`, "outside"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.stFetch(stWrite(t, "bad.aci", c.data))
			stOneLine(t, r, c.words...)
			e.stNothingLeft()
		})
	}
	if _, err := os.Lstat("/tmp/rkt-test-escape"); err == nil {
		os.Remove("/tmp/rkt-test-escape")
		t.Fatal("an entry escaped to /tmp/rkt-test-escape")
	}
}

func TestStoreMissingDependency(t *testing.T) {
	e := newEnv(t)
	top := stWrite(t, "top.aci", stGzip(stTar(t, stManifest("example.com/needs-base", "1.0", "example.com/not-in-store"), stFile("rootfs/top", "t"))))
	id := strings.TrimSpace(e.MustRun("--insecure-options=image", "fetch", "--pull-policy=never", top))
	out := filepath.Join(t.TempDir(), "out")
	r := e.Run("image", "render", id, out)
	stOneLine(t, r, "example.com/not-in-store", "not found")
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("render left %s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".rkt-*")); len(left) > 0 {
		t.Errorf("render left %v", left)
	}
	trees, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tree"))
	if len(trees) > 0 {
		t.Errorf("tree store not empty: %v", trees)
	}
}

func TestStoreFullDisk(t *testing.T) {
	e := newEnv(t)
	// A 3 MiB tmpfs as the whole --dir, and an image of 6 MiB that does
	// not compress: the blob cannot fit.
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", e.Dir).Run(); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", e.Dir).Run() })
	noise := make([]byte, 6<<20)
	rand.Read(noise)
	aci := stWrite(t, "big.aci", stGzip(stTar(t, stManifest("example.com/big", ""), stFile("rootfs/noise", string(noise)))))
	r := e.stFetch(aci)
	stOneLine(t, r, "no space left on device")
	e.stNothingLeft()
	// The store still works once there is room.
	small := stWrite(t, "small.aci", stTar(t, stManifest("example.com/small", ""), stFile("rootfs/a", "a")))
	if r := e.stFetch(small); r.Code != 0 {
		t.Fatalf("fetch after a full disk: %s", r)
	}
}

func TestStoreConcurrentFetch(t *testing.T) {
	e := newEnv(t)
	body := make([]byte, 4<<20)
	rand.Read(body)
	aci := stWrite(t, "same.aci", stGzip(stTar(t, stManifest("example.com/same", "1"), stFile("rootfs/blob", string(body)))))
	var wg sync.WaitGroup
	results := make([]result, 3)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.stFetch(aci)
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 || r.Stdout != results[0].Stdout {
			t.Fatalf("fetch %d: %s", i, r)
		}
	}
	blobs, _ := filepath.Glob(filepath.Join(e.Dir, "cas", "blob", "sha512", "*", "*"))
	tmps, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tmp"))
	if len(blobs) != 1 || len(tmps) != 0 {
		t.Errorf("blobs %v, temp files %d; want one blob, no temp file", blobs, len(tmps))
	}
	if n := len(strings.Split(strings.TrimSpace(e.MustRun("image", "list", "--no-legend")), "\n")); n != 1 {
		t.Errorf("%d index rows, want 1", n)
	}
}

func TestStoreDependencyIDMismatch(t *testing.T) {
	e := newEnv(t)
	// The dependency names a base that is in the store, but with an
	// image ID the stored base does not have.
	e.MustRun("--insecure-options=image", "fetch", stWrite(t, "base.aci", stTar(t, stManifest("example.com/base", "1"), stFile("rootfs/b", "b"))))
	wrong := "sha512-" + strings.Repeat("ab", 64)
	m := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/top","dependencies":[{"imageName":"example.com/base","imageID":"` + wrong + `"}]}`
	id := strings.TrimSpace(e.MustRun("--insecure-options=image", "fetch", "--pull-policy=never", stWrite(t, "top.aci", stTar(t, m, stFile("rootfs/t", "t")))))
	r := e.Run("image", "render", id, filepath.Join(t.TempDir(), "out"))
	stOneLine(t, r, wrong, "not found")
	if trees, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tree")); len(trees) > 0 {
		t.Errorf("tree store not empty: %v", trees)
	}
}
