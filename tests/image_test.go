package tests

// Functional tests of `rkt image ...` through the real binary.

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// imFetchOwn stores an ACI built by the test and returns its full ID.
func (e *env) imFetchOwn(t *testing.T, name string, data []byte) string {
	t.Helper()
	r := e.stFetch(stWrite(t, name, data))
	if r.Code != 0 {
		t.Fatalf("fetch %s: %s", name, r)
	}
	short := strings.TrimSpace(r.Stdout)
	var list []struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(e.MustRun("image", "list", "--format=json")), &list)
	for _, l := range list {
		if strings.HasPrefix(l.ID, short) {
			return l.ID
		}
	}
	t.Fatalf("fetched %s but image list does not show it", short)
	return ""
}

func fileSHA512(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha512.New()
	io.Copy(h, f)
	return "sha512-" + hex.EncodeToString(h.Sum(nil))
}

func TestImageListFormats(t *testing.T) {
	e := newEnv(t)
	a := e.imFetchOwn(t, "a.aci", stGzip(stTar(t, stManifest("example.com/alpha", "1.0"), stFile("rootfs/a", strings.Repeat("a", 3000)))))
	b := e.imFetchOwn(t, "b.aci", stTar(t, stManifest("example.com/beta", "2.0"), stFile("rootfs/b", "b")))

	out := e.MustRun("image", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "IMPORT TIME") {
		t.Fatalf("image list:\n%s", out)
	}
	// Short IDs are sha512- and 32 hex digits; oldest import first.
	if f := strings.Fields(lines[1]); f[0] != a[:7+32] || f[1] != "example.com/alpha:1.0" {
		t.Errorf("first row %q, want %s example.com/alpha:1.0", lines[1], a[:39])
	}
	if out := e.MustRun("image", "list", "--no-legend", "--full", "--fields=id,name,size"); !strings.Contains(out, b) || strings.Contains(out, "ID") {
		t.Errorf("--no-legend --full:\n%s", out)
	}
	desc := e.MustRun("image", "list", "--no-legend", "--fields=name", "--sort=name", "--order=desc")
	if got := strings.Fields(desc); len(got) != 2 || got[0] != "example.com/beta:2.0" {
		t.Errorf("--sort=name --order=desc: %q", got)
	}
	var list []struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		ImportTime int64  `json:"import_time"`
		LastUsed   int64  `json:"last_used_time"`
		Size       int64  `json:"size"`
	}
	for _, f := range []string{"json", "json-pretty"} {
		list = nil
		if err := json.Unmarshal([]byte(e.MustRun("image", "list", "--format="+f)), &list); err != nil {
			t.Fatalf("--format=%s: %v", f, err)
		}
		if len(list) != 2 || list[0].ID != a || list[1].Name != "example.com/beta:2.0" || list[0].ImportTime == 0 || list[1].Size == 0 {
			t.Errorf("--format=%s: %+v", f, list)
		}
	}
	r := e.MustFail("image", "list", "--fields=id,bogus")
	stOneLine(t, r, "bogus")
}

func TestImageResolveCatManifestExport(t *testing.T) {
	e := newEnv(t)
	raw := stTar(t, stManifest("example.com/app", "1.0"), stDir("rootfs/etc"), stFile("rootfs/etc/app.conf", "x=1\n"))
	id := e.imFetchOwn(t, "app.aci", stGzip(raw))
	e.imFetchOwn(t, "app2.aci", stTar(t, stManifest("example.com/app", "2.0"), stFile("rootfs/v2", "2")))

	for _, ref := range []string{id, id[:7+12], "example.com/app:1.0", "example.com/app,version=1.0,os=linux"} {
		out := e.MustRun("image", "cat-manifest", ref)
		if !strings.Contains(out, `"value": "1.0"`) {
			t.Errorf("cat-manifest %s resolved to another image:\n%s", ref, out)
		}
	}
	// A name alone is the most recently imported image of that name.
	if out := e.MustRun("image", "cat-manifest", "--pretty-print=false", "example.com/app"); !strings.Contains(out, `"value":"2.0"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("cat-manifest --pretty-print=false of the latest:\n%s", out)
	}
	stOneLine(t, e.MustFail("image", "cat-manifest", "example.com/app:3.0"), "no image")
	stOneLine(t, e.MustFail("image", "cat-manifest", "sha512-"), "ambiguous")

	// export gives back the uncompressed ACI: same bytes, same ID.
	exp := filepath.Join(t.TempDir(), "out.aci")
	e.MustRun("image", "export", "example.com/app:1.0", exp)
	if got := fileSHA512(t, exp); got != id {
		t.Fatalf("exported image hashes to %s, want %s", got, id)
	}
	stOneLine(t, e.MustFail("image", "export", id, exp), "already exists")
	e.MustRun("image", "export", "--overwrite", "example.com/app:2.0", exp)
	if fileSHA512(t, exp) == id {
		t.Error("--overwrite did not replace the file")
	}
	// The exported file imports as the same image.
	e.MustRun("image", "export", "--overwrite", id, exp)
	if short := strings.TrimSpace(e.MustRun("--insecure-options=image", "fetch", exp)); short == "" || !strings.HasPrefix(id, short) {
		t.Errorf("re-fetching the export gave %q, want a prefix of %s", short, id)
	}
}

func TestImageExtractRender(t *testing.T) {
	e := newEnv(t)
	base := stTar(t, stManifest("example.com/base", "1"), stDir("rootfs/etc"), stFile("rootfs/etc/os-release", "base"), stFile("rootfs/etc/base-only", "b"))
	e.imFetchOwn(t, "base.aci", base)
	topM := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/top","dependencies":[{"imageName":"example.com/base","labels":[{"name":"version","value":"1"}]}]}`
	top := e.imFetchOwn(t, "top.aci", stTar(t, topM, stDir("rootfs/etc"), stFile("rootfs/etc/os-release", "top"), stSymlink("rootfs/etc/abs", "/etc/os-release")))
	dir := t.TempDir()

	// extract: the image's own tar only.
	ex := filepath.Join(dir, "extracted")
	e.MustRun("image", "extract", top, ex)
	if b, _ := os.ReadFile(filepath.Join(ex, "rootfs/etc/os-release")); string(b) != "top" {
		t.Errorf("extract: os-release %q", b)
	}
	if _, err := os.Stat(filepath.Join(ex, "rootfs/etc/base-only")); err == nil {
		t.Error("extract took a dependency's file")
	}
	if l, _ := os.Readlink(filepath.Join(ex, "rootfs/etc/abs")); l != "/etc/os-release" {
		t.Errorf("absolute symlink extracted as %q", l)
	}
	if _, err := os.Stat(filepath.Join(ex, "manifest")); err != nil {
		t.Error("extract: no manifest")
	}

	// render: with the dependency, upper layer winning.
	rd := filepath.Join(dir, "rendered")
	e.MustRun("image", "render", top, rd)
	for p, want := range map[string]string{"rootfs/etc/os-release": "top", "rootfs/etc/base-only": "b"} {
		if b, _ := os.ReadFile(filepath.Join(rd, p)); string(b) != want {
			t.Errorf("render: %s = %q, want %q", p, b, want)
		}
	}
	stOneLine(t, e.MustFail("image", "render", top, rd), "already exists", "--overwrite")
	e.MustRun("image", "render", "--overwrite", "--rootfs-only", top, rd)
	if _, err := os.Stat(filepath.Join(rd, "etc/base-only")); err != nil {
		t.Errorf("--rootfs-only --overwrite: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rd, "manifest")); err == nil {
		t.Error("--rootfs-only wrote the manifest")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".rkt-*"))
	if len(left) > 0 {
		t.Errorf("temp directories left: %v", left)
	}
}

// imPrepare prepares a pod of image with the fly stage1 and returns its
// UUID; preparing renders the stage1's and the app's trees.
func (e *env) imPrepare(t *testing.T, image string) string {
	t.Helper()
	return strings.TrimSpace(e.MustRun("--insecure-options=image", "prepare", "--stage1-path="+testImage("stage1-fly.aci"), image))
}

func (e *env) imTrees() []string {
	ents, _ := os.ReadDir(filepath.Join(e.Dir, "cas", "tree"))
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

func TestImageVerifyRmGC(t *testing.T) {
	e := newEnv(t)
	uuid := e.imPrepare(t, testImage("busybox.aci"))
	trees := e.imTrees()
	if len(trees) != 2 {
		t.Fatalf("trees after prepare: %v", trees)
	}
	// A tree's lock file lives only while the tree is rendered or removed.
	if locks := e.imLockFiles(t); len(locks) != 0 {
		t.Errorf("lock files after prepare: %v", locks)
	}
	// As in rkt, an image's size counts the trees rendered from it.
	var list []struct {
		ID   string `json:"id"`
		Size int64  `json:"size"`
	}
	json.Unmarshal([]byte(e.MustRun("image", "list", "--format=json")), &list)
	for _, img := range list {
		blob, err := os.Stat(filepath.Join(e.Dir, "cas", "blob", "sha512", img.ID[7:9], img.ID))
		if err != nil || img.Size <= blob.Size() {
			t.Errorf("image %s: size %d, blob %v: the tree is not counted", img.ID[:19], img.Size, err)
		}
	}
	out := e.MustRun("image", "verify")
	if strings.Count(out, "\tok") != 2 {
		t.Fatalf("image verify:\n%s", out)
	}
	// Tamper with a rendered file: verify names the tree and fails.
	var victim string
	filepath.WalkDir(filepath.Join(e.Dir, "cas", "tree", trees[0], "rootfs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && victim == "" {
			victim = p
		}
		return nil
	})
	orig, _ := os.ReadFile(victim)
	os.WriteFile(victim, append(orig, '!'), 0o755)
	r := e.MustFail("image", "verify")
	if !strings.Contains(r.Stderr, trees[0]) || !strings.Contains(r.Stderr, "corrupt") {
		t.Errorf("verify after tampering: %s", r)
	}
	os.WriteFile(victim, orig, 0o755)

	// gc keeps the trees a pod references, and their images.
	e.MustRun("image", "gc", "--grace-period=0s")
	if got := e.imTrees(); len(got) != 2 {
		t.Fatalf("gc removed trees a prepared pod uses: %v", got)
	}
	if n := len(strings.Fields(e.MustRun("image", "list", "--no-legend", "--fields=id"))); n != 2 {
		t.Fatalf("gc removed images of a prepared pod: %d left", n)
	}
	// rm of the busybox image: its tree stays while the pod uses it.
	rm := e.Run("image", "rm", "rktng.io/test/busybox")
	if rm.Code != 0 || !strings.Contains(rm.Stderr, "successfully removed aci for image") || !strings.Contains(rm.Stderr, "1 image(s) successfully removed") {
		t.Fatalf("image rm: %s", rm)
	}
	if got := e.imTrees(); len(got) != 2 {
		t.Fatalf("image rm removed a tree a pod uses: %v", got)
	}
	// Once the pod is gone, gc removes trees and unused images.
	e.MustRun("rm", uuid)
	gc := e.Run("image", "gc", "--grace-period=0s")
	if gc.Code != 0 || strings.Count(gc.Stderr, "removed treestore") != 2 {
		t.Fatalf("image gc: %s", gc)
	}
	if got := e.imTrees(); len(got) != 0 {
		t.Errorf("trees left after gc: %v", got)
	}
	if out := strings.TrimSpace(e.MustRun("image", "list", "--no-legend")); out != "" {
		t.Errorf("images left after gc with no grace period:\n%s", out)
	}
	stOneLine(t, e.MustFail("image", "rm", "sha512-00"), "no image")
	if locks := e.imLockFiles(t); len(locks) != 0 {
		t.Errorf("lock files after image rm and gc: %v", locks)
	}
}

// imLockFiles lists what is in the store's lock directory.
func (e *env) imLockFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.Dir, "cas", "locks"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

func TestImageGCGracePeriod(t *testing.T) {
	e := newEnv(t)
	e.imFetchOwn(t, "recent.aci", stTar(t, stManifest("example.com/recent", ""), stFile("rootfs/a", "a")))
	e.MustRun("image", "gc")
	if out := e.MustRun("image", "list", "--no-legend"); !strings.Contains(out, "example.com/recent") {
		t.Errorf("gc removed an image used within the default 24h grace period")
	}
}

func TestImageGCKeepsDependenciesOfKeptImages(t *testing.T) {
	e := newEnv(t)
	e.imFetchOwn(t, "base.aci", stTar(t, stManifest("example.com/old-base", "1"), stFile("rootfs/b", "b")))
	// The base is now older than the grace period below; the image on
	// top of it, fetched after the pause, is not.
	time.Sleep(3 * time.Second)
	topM := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/new-top","dependencies":[{"imageName":"example.com/old-base"}]}`
	e.imFetchOwn(t, "top.aci", stTar(t, topM, stFile("rootfs/t", "t")))
	e.MustRun("image", "gc", "--grace-period=1500ms")
	out := e.MustRun("image", "list", "--no-legend", "--fields=name")
	if !strings.Contains(out, "example.com/old-base") || !strings.Contains(out, "example.com/new-top") {
		t.Fatalf("gc removed the dependency of a kept image:\n%s", out)
	}
	e.MustRun("image", "render", "example.com/new-top", filepath.Join(t.TempDir(), "out"))
}
