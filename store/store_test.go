package store

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestImportRenderBasic(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	raw := makeTar(t, manifestJSON("example.com/basic", map[string]string{"version": "1.0"}, nil, nil),
		dir("rootfs/bin"), file("rootfs/bin/hello", "hello\n"), symlink("rootfs/bin/abs", "/etc/passwd"),
		hardlink("rootfs/bin/hello2", "rootfs/bin/hello"))
	sum := sha512.Sum512(raw)
	wantID := "sha512-" + hex.EncodeToString(sum[:])
	info := mustImport(t, s, gzipBytes(t, raw))
	if info.ID != wantID {
		t.Fatalf("ID %s, want %s", info.ID, wantID)
	}
	if info.Name != "example.com/basic" || info.Version() != "1.0" || info.Size != int64(len(raw)) {
		t.Fatalf("info %+v", info)
	}
	for _, ref := range []string{wantID, wantID[:20], "example.com/basic", "example.com/basic:1.0", "example.com/basic,version=1.0"} {
		id, err := s.Resolve(ref)
		if err != nil || id != wantID {
			t.Errorf("Resolve(%q) = %s, %v", ref, id, err)
		}
	}
	if _, err := s.Resolve("example.com/basic:2.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a missing version: %v", err)
	}
	tree, err := s.Render(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tree.Rootfs(), "bin/hello"))
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("hello: %q %v", b, err)
	}
	if l, _ := os.Readlink(filepath.Join(tree.Rootfs(), "bin/abs")); l != "/etc/passwd" {
		t.Errorf("symlink target %q", l)
	}
	var a, c unix.Stat_t
	unix.Lstat(filepath.Join(tree.Rootfs(), "bin/hello"), &a)
	unix.Lstat(filepath.Join(tree.Rootfs(), "bin/hello2"), &c)
	if a.Ino != c.Ino {
		t.Errorf("hard link not kept")
	}
	if err := s.VerifyTree(tree.ID); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree.Rootfs(), "bin/hello"), []byte("HELLO\n"), 0o644)
	if err := s.VerifyTree(tree.ID); !errors.Is(err, ErrTreeCorrupt) {
		t.Fatalf("VerifyTree after tampering: %v", err)
	}
	// The blob is the uncompressed tar.
	f, err := s.OpenImage(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, raw) {
		t.Fatal("blob differs from the uncompressed tar")
	}
}
