package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/pkg/acirenderer"
	"golang.org/x/sys/unix"
)

// extractRaw runs the extractor on a tar written straight to a file,
// bypassing Import's checks, so the extractor's own defences are what is
// tested: every entry is taken, as `rkt image extract` does.
func extractRaw(t *testing.T, raw []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	if err := os.WriteFile(blob, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	x, err := newExtractor(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	err = x.extractLayer(context.Background(), 0, &layerPlan{id: "test", blob: blob, all: true, manifest: true})
	if err == nil {
		err = x.finishDirs()
	}
	return out, err
}

func TestExtractorStaysBeneathRootfs(t *testing.T) {
	needRoot(t)
	m := manifestJSON("example.com/x", nil, nil, nil)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("untouched"), 0o644)
	rel, _ := filepath.Rel("/", outside)
	cases := []struct {
		name, entry string
		entries     []tEntry
	}{
		{"dotdot", "rootfs/../../../" + rel + "/victim", []tEntry{file("rootfs/../../../"+rel+"/victim", "owned")}},
		{"absolute symlink parent", "rootfs/lnk/victim", []tEntry{symlink("rootfs/lnk", outside), file("rootfs/lnk/victim", "owned")}},
		{"relative symlink parent", "rootfs/lnk/" + rel + "/victim", []tEntry{symlink("rootfs/lnk", "../../../../../../../.."), file("rootfs/lnk/"+rel+"/victim", "owned")}},
		{"symlink to .. chain", "rootfs/l2/victim", []tEntry{dir("rootfs/d"), symlink("rootfs/d/up", ".."), symlink("rootfs/l2", "d/up/d/up/../../../../../../../.."+outside), file("rootfs/l2/victim", "owned")}},
		{"hard link to outside", "rootfs/hl", []tEntry{hardlink("rootfs/hl", victim)}},
		{"hard link through symlink", "rootfs/hl", []tEntry{symlink("rootfs/o", outside), hardlink("rootfs/hl", "rootfs/o/victim")}},
		{"hard link dotdot", "rootfs/hl", []tEntry{hardlink("rootfs/hl", "rootfs/../../../"+rel+"/victim")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := extractRaw(t, makeTar(t, m, c.entries...))
			if err == nil {
				t.Fatal("extraction succeeded")
			}
			if !errors.Is(err, ErrUnsafePath) && !errors.Is(err, ErrInvalidImage) {
				t.Errorf("error %v is neither unsafe path nor invalid image", err)
			}
			if !strings.Contains(err.Error(), c.entry) {
				t.Errorf("error %q does not name entry %q", err, c.entry)
			}
			if b, _ := os.ReadFile(victim); string(b) != "untouched" {
				t.Fatalf("file outside the rootfs changed: %q", b)
			}
			var st unix.Stat_t
			unix.Stat(victim, &st)
			if st.Nlink != 1 {
				t.Fatalf("file outside the rootfs got a hard link")
			}
		})
	}
}

func TestExtractorKeepsMetadata(t *testing.T) {
	needRoot(t)
	m := manifestJSON("example.com/meta", nil, nil, nil)
	suid := file("rootfs/bin/suid", "#!/bin/sh\n")
	suid.mode, suid.uid, suid.gid = 0o4755, 1000, 1001
	sticky := dir("rootfs/tmp")
	sticky.mode = 0o1777
	xa := file("rootfs/xattr", "x")
	xa.xattrs = map[string]string{"user.rkt": "value"}
	null := tEntry{name: "rootfs/dev/null", typeflag: tar.TypeChar, mode: 0o666, major: 1, minor: 3}
	fifo := tEntry{name: "rootfs/fifo", typeflag: tar.TypeFifo, mode: 0o600}
	lnk := symlink("rootfs/abs", "/etc/hostname")
	lnk.uid, lnk.gid = 7, 8
	out, err := extractRaw(t, makeTar(t, m, dir("rootfs/bin"), suid, sticky, xa, dir("rootfs/dev"), null, fifo, lnk,
		hardlink("rootfs/bin/suid2", "rootfs/bin/suid")))
	if err != nil {
		t.Fatal(err)
	}
	r := filepath.Join(out, "rootfs")
	st := func(p string) unix.Stat_t {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(r, p), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := st("bin/suid"); s.Mode&0o7777 != 0o4755 || s.Uid != 1000 || s.Gid != 1001 || s.Mtim.Sec != testMtime.Unix() {
		t.Errorf("suid file: mode %o uid %d gid %d mtime %d", s.Mode&0o7777, s.Uid, s.Gid, s.Mtim.Sec)
	}
	if st("bin/suid").Ino != st("bin/suid2").Ino {
		t.Error("hard link not kept")
	}
	if s := st("tmp"); s.Mode&0o7777 != 0o1777 || s.Mtim.Sec != testMtime.Unix() {
		t.Errorf("sticky dir: mode %o mtime %d", s.Mode&0o7777, s.Mtim.Sec)
	}
	if s := st("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(s.Rdev) != 1 || unix.Minor(s.Rdev) != 3 {
		t.Errorf("device: mode %o rdev %d:%d", s.Mode, unix.Major(s.Rdev), unix.Minor(s.Rdev))
	}
	if s := st("fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", s.Mode)
	}
	if s := st("abs"); s.Uid != 7 || s.Gid != 8 {
		t.Errorf("symlink owner %d:%d", s.Uid, s.Gid)
	}
	if l, _ := os.Readlink(filepath.Join(r, "abs")); l != "/etc/hostname" {
		t.Errorf("absolute symlink target %q", l)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(r, "xattr"), "user.rkt", buf)
	if err != nil || string(buf[:n]) != "value" {
		t.Errorf("xattr: %q %v", buf[:n], err)
	}
}

func TestExtractorSymlinkInsideIsFollowed(t *testing.T) {
	needRoot(t)
	m := manifestJSON("example.com/x", nil, nil, nil)
	out, err := extractRaw(t, makeTar(t, m, dir("rootfs/real"), symlink("rootfs/alias", "real"), file("rootfs/alias/f", "in")))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "rootfs/real/f")); string(b) != "in" {
		t.Errorf("file through an inside symlink: %q", b)
	}
}

// layered imports base, then top depending on it by name.
func layered(t *testing.T, s *Store, baseEntries, topEntries []tEntry, topPWL []string) ImageInfo {
	mustImport(t, s, makeTar(t, manifestJSON("example.com/base", map[string]string{"version": "1"}, nil, nil), baseEntries...))
	deps := []map[string]any{{"imageName": "example.com/base", "labels": []map[string]string{{"name": "version", "value": "1"}}}}
	return mustImport(t, s, makeTar(t, manifestJSON("example.com/top", nil, deps, topPWL), topEntries...))
}

func readTree(t *testing.T, tree Tree, p string) string {
	b, err := os.ReadFile(filepath.Join(tree.Rootfs(), p))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestRenderUpperLayerWins(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	top := layered(t, s,
		[]tEntry{dir("rootfs/etc"), file("rootfs/etc/os", "base"), file("rootfs/etc/only-base", "b")},
		[]tEntry{dir("rootfs/etc"), file("rootfs/etc/os", "top"), file("rootfs/top", "t")}, nil)
	tree, err := s.Render(context.Background(), top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, tree, "etc/os"); got != "top" {
		t.Errorf("etc/os = %q, want the upper layer's", got)
	}
	if readTree(t, tree, "etc/only-base") != "b" || readTree(t, tree, "top") != "t" {
		t.Error("files from one layer only are missing")
	}
	if len(tree.Images) != 2 || tree.Images[0] != top.ID {
		t.Errorf("tree images %v", tree.Images)
	}
	if b, _ := os.ReadFile(tree.ManifestPath()); !bytes.Contains(b, []byte("example.com/top")) {
		t.Errorf("tree manifest is not the top image's: %s", b)
	}
	if err := s.VerifyTree(tree.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRenderPathWhitelist(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	top := layered(t, s,
		[]tEntry{dir("rootfs/bin"), file("rootfs/bin/keep", "k"), file("rootfs/bin/drop", "d"), dir("rootfs/empty")},
		[]tEntry{file("rootfs/mine", "m"), file("rootfs/not-listed", "n")}, []string{"/bin/keep", "/mine"})
	tree, err := s.Render(context.Background(), top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if readTree(t, tree, "bin/keep") != "k" || readTree(t, tree, "mine") != "m" {
		t.Error("whitelisted files missing")
	}
	for _, p := range []string{"bin/drop", "not-listed"} {
		if _, err := os.Lstat(filepath.Join(tree.Rootfs(), p)); err == nil {
			t.Errorf("%s is not in the pathWhitelist but was rendered", p)
		}
	}
	// As acirenderer decides: directories below a whitelist exist only
	// as parents of whitelisted files.
	if _, err := os.Lstat(filepath.Join(tree.Rootfs(), "empty")); err == nil {
		t.Error("a directory outside the whitelist was rendered")
	}
}

func TestRenderHardLinkAcrossLayers(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	// The base's "f" is hidden by the top's; the base's hard link "g" to
	// it must still have the base's content, and not be linked to the
	// top's "f".
	top := layered(t, s,
		[]tEntry{file("rootfs/f", "base content"), hardlink("rootfs/g", "rootfs/f"), hardlink("rootfs/h", "rootfs/f")},
		[]tEntry{file("rootfs/f", "top content")}, nil)
	tree, err := s.Render(context.Background(), top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if readTree(t, tree, "f") != "top content" || readTree(t, tree, "g") != "base content" || readTree(t, tree, "h") != "base content" {
		t.Errorf("f=%q g=%q h=%q", readTree(t, tree, "f"), readTree(t, tree, "g"), readTree(t, tree, "h"))
	}
	var f, g, h unix.Stat_t
	unix.Lstat(filepath.Join(tree.Rootfs(), "f"), &f)
	unix.Lstat(filepath.Join(tree.Rootfs(), "g"), &g)
	unix.Lstat(filepath.Join(tree.Rootfs(), "h"), &h)
	if f.Ino == g.Ino || g.Ino != h.Ino {
		t.Errorf("links: f %d g %d h %d", f.Ino, g.Ino, h.Ino)
	}
	if err := s.VerifyTree(tree.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRenderMissingDependency(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	deps := []map[string]any{{"imageName": "example.com/absent"}}
	top := mustImport(t, s, makeTar(t, manifestJSON("example.com/top", nil, deps, nil), file("rootfs/a", "a")))
	_, err := s.Render(context.Background(), top.ID)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "example.com/absent") {
		t.Fatalf("render with a missing dependency: %v", err)
	}
	assertNoTree(t, s)
}

func TestRenderSameLayerListingMatchesAcirenderer(t *testing.T) {
	needRoot(t)
	// acirenderer skips entries under a symlink of the same layer; the
	// tree must not contain them either (extract mode takes them).
	s := newStore(t)
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/x", nil, nil, nil),
		dir("rootfs/real"), symlink("rootfs/alias", "real"), file("rootfs/alias/f", "in")))
	tree, err := s.Render(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(tree.Rootfs(), "real/f")); err == nil {
		t.Error("an entry acirenderer skipped was rendered")
	}
	var _ acirenderer.ACIRegistry = s.newRegistry(nil)
}

func TestConcurrentImportAndRender(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	raw := gzipBytes(t, makeTar(t, manifestJSON("example.com/c", nil, nil, nil), file("rootfs/big", strings.Repeat("z", 1<<20))))
	var wg sync.WaitGroup
	ids := make([]string, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			info, err := s.Import(context.Background(), bytes.NewReader(raw), ImportOptions{})
			if err == nil {
				var tree Tree
				tree, err = s.Render(context.Background(), info.ID)
				ids[i] = tree.ID
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("goroutine %d: %v %s", i, errs[i], ids[i])
		}
	}
	imgs, _ := s.List()
	blobs, _ := filepath.Glob(filepath.Join(s.blobDir(), "sha512", "*", "*"))
	trees, _ := os.ReadDir(s.treeDir())
	tmps, _ := os.ReadDir(s.tmpDir())
	if len(imgs) != 1 || len(blobs) != 1 || len(trees) != 1 || len(tmps) != 0 {
		t.Errorf("images %d blobs %d trees %d temp files %d, want 1 1 1 0", len(imgs), len(blobs), len(trees), len(tmps))
	}
}

func TestRenderHardLinkWhoseTargetIsNotWhitelisted(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	top := layered(t, s,
		[]tEntry{file("rootfs/f", "shared"), hardlink("rootfs/g", "rootfs/f"), hardlink("rootfs/h", "rootfs/f")},
		[]tEntry{file("rootfs/top", "t")}, []string{"/g", "/h", "/top"})
	tree, err := s.Render(context.Background(), top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(tree.Rootfs(), "f")); err == nil {
		t.Error("f is not whitelisted but was rendered")
	}
	if readTree(t, tree, "g") != "shared" || readTree(t, tree, "h") != "shared" {
		t.Errorf("g=%q h=%q", readTree(t, tree, "g"), readTree(t, tree, "h"))
	}
	var g, h unix.Stat_t
	unix.Lstat(filepath.Join(tree.Rootfs(), "g"), &g)
	unix.Lstat(filepath.Join(tree.Rootfs(), "h"), &h)
	if g.Ino != h.Ino {
		t.Error("g and h are no longer one file")
	}
	if err := s.VerifyTree(tree.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRenderTwiceIsAHitAndRemoveTree(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/x", nil, nil, nil), file("rootfs/a", "a")))
	t1, err := s.Render(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	marker, _ := os.Stat(filepath.Join(t1.Path, renderedMarker))
	s2, _ := Open(filepath.Dir(s.Dir()))
	t2, err := s2.Render(context.Background(), info.ID)
	if err != nil || t2.ID != t1.ID {
		t.Fatalf("second render: %v %s", err, t2.ID)
	}
	if again, _ := os.Stat(filepath.Join(t1.Path, renderedMarker)); !again.ModTime().Equal(marker.ModTime()) {
		t.Error("the second render rendered again")
	}
	if id, err := s.TreeID(info.ID); err != nil || id != t1.ID {
		t.Errorf("TreeID = %s, %v", id, err)
	}
	trees, err := s.Trees()
	if err != nil || len(trees) != 1 || trees[0].ImageID != info.ID {
		t.Fatalf("Trees: %+v %v", trees, err)
	}
	if err := s.RemoveTree(t1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(t1.Path); err == nil {
		t.Error("tree still there after RemoveTree")
	}
	if err := s.VerifyTree(t1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("VerifyTree of a removed tree: %v", err)
	}
}

func TestRenderFailureLeavesNoTree(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	top := layered(t, s, []tEntry{file("rootfs/base", strings.Repeat("b", 10000))}, []tEntry{file("rootfs/top", "t")}, nil)
	base, _ := s.Resolve("example.com/base")
	// Damage the dependency's blob after import: the render must fail
	// with a message naming it and leave nothing in the tree store.
	raw, _ := os.ReadFile(s.blobPath(base))
	os.WriteFile(s.blobPath(base), raw[:len(raw)-6000], 0o600)
	_, err := s.Render(context.Background(), top.ID)
	if err == nil || !strings.Contains(err.Error(), ShortID(base)) {
		t.Fatalf("render over a damaged dependency: %v", err)
	}
	assertNoTree(t, s)
}

func TestRenderTouchesDependencies(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	top := layered(t, s, []tEntry{file("rootfs/b", "b")}, []tEntry{file("rootfs/t", "t")}, nil)
	base, _ := s.Resolve("example.com/base")
	before, _ := s.Info(base)
	time.Sleep(10 * time.Millisecond)
	if _, err := s.Render(context.Background(), top.ID); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Info(base)
	if !after.LastUsed.After(before.LastUsed) {
		t.Error("rendering the top image did not mark its dependency used")
	}
}

func TestRenderFullDiskLeavesNoTree(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=6m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A 4 MiB blob fits; its 4 MiB tree beside it does not.
	noise := make([]byte, 4<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>8)
	}
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/big", nil, nil, nil), file("rootfs/noise", string(noise))))
	_, err = s.Render(context.Background(), info.ID)
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "rootfs/noise") {
		t.Fatalf("render on a full disk: %v", err)
	}
	assertNoTree(t, s)
}

// Linux refuses user.* xattrs on symlinks and special files, so the ACI
// built here uses trusted.* (root only), as images made by root may.
func TestRenderKeepsXattrsOnSymlinksAndSpecialFiles(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	lnk := symlink("rootfs/link", "target")
	lnk.xattrs = map[string]string{"trusted.rkt.link": "on-the-link"}
	fifo := tEntry{name: "rootfs/fifo", typeflag: tar.TypeFifo, mode: 0o600, xattrs: map[string]string{"trusted.rkt.fifo": "on-the-fifo"}}
	target := file("rootfs/target", "t")
	target.xattrs = map[string]string{"trusted.rkt.file": "on-the-file"}
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/xattrs", nil, nil, nil), target, lnk, fifo))
	tree, err := s.Render(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	get := func(rel, attr string) string {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(tree.Rootfs(), rel), attr, buf)
		if err != nil {
			t.Errorf("%s: xattr %s: %v", rel, attr, err)
			return ""
		}
		return string(buf[:n])
	}
	if v := get("link", "trusted.rkt.link"); v != "on-the-link" {
		t.Errorf("symlink xattr %q", v)
	}
	if v := get("fifo", "trusted.rkt.fifo"); v != "on-the-fifo" {
		t.Errorf("fifo xattr %q", v)
	}
	if v := get("target", "trusted.rkt.file"); v != "on-the-file" {
		t.Errorf("file xattr %q", v)
	}
	// The link's own xattr must not have landed on its target.
	if _, err := unix.Lgetxattr(filepath.Join(tree.Rootfs(), "target"), "trusted.rkt.link", make([]byte, 64)); err == nil {
		t.Error("the symlink's xattr was set on its target")
	}
	if err := s.VerifyTree(tree.ID); err != nil {
		t.Fatal(err)
	}
	// The tree hash covers a symlink's xattrs: changing one is caught.
	if err := unix.Lsetxattr(filepath.Join(tree.Rootfs(), "link"), "trusted.rkt.link", []byte("changed"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyTree(tree.ID); !errors.Is(err, ErrTreeCorrupt) {
		t.Fatalf("verify after changing a symlink's xattr: %v", err)
	}
}

// A tree changed after it was rendered is refused on its next use, unless
// the store trusts what is on disk (--insecure-options=ondisk); a change
// that leaves the content as rendered (a ctime moved) passes the full
// check and is fingerprinted anew.
func TestRenderChecksTreeBeforeUse(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	info := mustImport(t, s, makeTar(t, manifestJSON("example.com/check", nil, nil, nil), file("rootfs/a", "as rendered"), file("rootfs/b", "b")))
	ctx := context.Background()
	tree, err := s.Render(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	statPath := filepath.Join(tree.Path, statFile)
	recorded, err := os.ReadFile(statPath)
	if err != nil {
		t.Fatalf("no stat fingerprint after render: %v", err)
	}
	if _, err := s.Render(ctx, info.ID); err != nil {
		t.Fatalf("second render of an untouched tree: %v", err)
	}

	// Same mode again: ctime moves, content does not.
	if err := os.Chmod(filepath.Join(tree.Rootfs(), "b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Render(ctx, info.ID); err != nil {
		t.Fatalf("render after a change that keeps the content: %v", err)
	}
	if now, _ := os.ReadFile(statPath); bytes.Equal(now, recorded) {
		t.Error("stat fingerprint not refreshed after a full check passed")
	}

	// Trees rendered before fingerprints existed get one on first use.
	os.Remove(statPath)
	if _, err := s.Render(ctx, info.ID); err != nil {
		t.Fatalf("render of a tree without fingerprint: %v", err)
	}
	if _, err := os.Stat(statPath); err != nil {
		t.Errorf("no fingerprint recorded: %v", err)
	}

	// Same size, same mtime: only the ctime tells.
	a := filepath.Join(tree.Rootfs(), "a")
	fi, _ := os.Stat(a)
	if err := os.WriteFile(a, []byte("AS RENDERED"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(a, fi.ModTime(), fi.ModTime())
	if _, err := s.Render(ctx, info.ID); !errors.Is(err, ErrTreeCorrupt) || !strings.Contains(err.Error(), "ondisk") {
		t.Fatalf("render of a tampered tree: %v", err)
	}
	if ents, _ := os.ReadDir(s.locksDir()); len(ents) != 0 {
		t.Errorf("%d lock files left after a failed check", len(ents))
	}
	s.TrustOnDisk = true
	got, err := s.Render(ctx, info.ID)
	if err != nil {
		t.Fatalf("render trusting the disk: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Rootfs(), "a")); string(b) != "AS RENDERED" {
		t.Errorf("trusted tree has %q", b)
	}
}

// assertNoTree checks that a failed render left nothing in the tree store.
func assertNoTree(t *testing.T, s *Store) {
	t.Helper()
	if ents, _ := os.ReadDir(s.treeDir()); len(ents) > 0 {
		t.Errorf("tree store not empty: %v", ents)
	}
}
