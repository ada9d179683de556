package store

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// assertEmpty fails unless the store holds no blob, temp file, index row
// or tree: what every refused import must leave.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	var files []string
	for _, d := range []string{s.blobDir(), s.tmpDir(), s.treeDir()} {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				files = append(files, p)
			}
			if err == nil && e.IsDir() && filepath.Dir(p) == s.treeDir() {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) > 0 {
		t.Errorf("left behind: %v", files)
	}
	imgs, err := s.List()
	if err != nil || len(imgs) > 0 {
		t.Errorf("index rows left: %v %v", imgs, err)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	good := manifestJSON("example.com/x", nil, nil, nil)
	valid := makeTar(t, good, file("rootfs/a", strings.Repeat("data", 1000)))
	gz := gzipBytes(t, valid)
	other := sha512.Sum512([]byte("something else"))
	otherID := "sha512-" + hex.EncodeToString(other[:])
	cases := []struct {
		name  string
		data  []byte
		opts  ImportOptions
		is    error
		words string
	}{
		{"corrupt tar", append([]byte("this is not a tar header at all"), make([]byte, 2048)...), ImportOptions{}, ErrInvalidImage, "corrupt tar header"},
		{"truncated tar", valid[:len(valid)-1500], ImportOptions{}, ErrInvalidImage, "truncated"},
		{"tar without end marker", valid[:len(valid)-1024], ImportOptions{}, ErrInvalidImage, "truncated"},
		{"gzip ends early", gz[:len(gz)/2], ImportOptions{}, ErrInvalidImage, "gzip"},
		{"manifest not JSON", makeTar(t, "{not json", file("rootfs/a", "x")), ImportOptions{}, ErrInvalidImage, "not valid JSON"},
		{"manifest fails schema", makeTar(t, `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Not A Valid Name!"}`), ImportOptions{}, ErrInvalidImage, "appc schema"},
		{"manifest without kind", makeTar(t, `{"acVersion":"0.8.11","name":"example.com/x"}`), ImportOptions{}, ErrInvalidImage, "manifest"},
		{"no manifest", makeTar(t, "", dir("rootfs"), file("rootfs/a", "x")), ImportOptions{}, ErrInvalidImage, "no manifest"},
		{"ID mismatch", valid, ImportOptions{ExpectedID: otherID}, ErrIDMismatch, "expected"},
		{"dotdot entry", makeTar(t, good, file("rootfs/../../evil", "x")), ImportOptions{}, ErrUnsafePath, `"rootfs/../../evil"`},
		{"absolute symlink parent", makeTar(t, good, symlink("rootfs/lnk", "/tmp"), file("rootfs/lnk/evil", "x")), ImportOptions{}, ErrUnsafePath, `"rootfs/lnk/evil"`},
		{"relative symlink parent", makeTar(t, good, symlink("rootfs/lnk", "../.."), file("rootfs/lnk/evil", "x")), ImportOptions{}, ErrUnsafePath, `"rootfs/lnk/evil"`},
		{"chained symlink parent", makeTar(t, good, dir("rootfs/d"), symlink("rootfs/d/up", ".."), symlink("rootfs/l2", "d/up/d/up/.."), file("rootfs/l2/evil", "x")), ImportOptions{}, ErrUnsafePath, `"rootfs/l2/evil"`},
		{"hard link outside", makeTar(t, good, hardlink("rootfs/pw", "/etc/passwd")), ImportOptions{}, ErrInvalidImage, `"rootfs/pw"`},
		{"hard link dotdot", makeTar(t, good, hardlink("rootfs/pw", "rootfs/../../etc/passwd")), ImportOptions{}, ErrUnsafePath, `"rootfs/pw"`},
		{"hard link through symlink", makeTar(t, good, symlink("rootfs/etc", "/etc"), hardlink("rootfs/pw", "rootfs/etc/passwd")), ImportOptions{}, ErrUnsafePath, `"rootfs/pw"`},
		{"entry outside layout", makeTar(t, good, file("etc/passwd", "x")), ImportOptions{}, ErrInvalidImage, `"etc/passwd"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(c.data), c.opts)
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.words) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line mentioning %q", err, c.words)
			}
			assertEmpty(t, s)
		})
	}
}

func TestImportCompressions(t *testing.T) {
	raw := makeTar(t, manifestJSON("example.com/c", nil, nil, nil), file("rootfs/a", strings.Repeat("compress me ", 5000)))
	sum := sha512.Sum512(raw)
	want := "sha512-" + hex.EncodeToString(sum[:])
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	for name, data := range map[string][]byte{"plain": raw, "gzip": gzipBytes(t, raw), "zstd": zs.Bytes()} {
		s := newStore(t)
		info, err := s.Import(context.Background(), bytes.NewReader(data), ImportOptions{ExpectedID: want})
		if err != nil || info.ID != want {
			t.Errorf("%s: %v %s", name, err, info.ID)
		}
	}
	// xz and bzip2 through the system tools, which the Makefile's
	// HOST_PACKAGES installs.
	for name, tool := range map[string][]string{"xz": {"xz", "-c"}, "bzip2": {"bzip2", "-c"}} {
		data, err := runFilter(tool, raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := DetectCompression(data); string(got) != name {
			t.Errorf("%s detected as %s", name, got)
		}
		s := newStore(t)
		info, err := s.Import(context.Background(), bytes.NewReader(data), ImportOptions{})
		if err != nil || info.ID != want {
			t.Errorf("%s: %v %s", name, err, info.ID)
		}
	}
}

func TestImportFileRemembersUnchangedFiles(t *testing.T) {
	s := newStore(t)
	p := filepath.Join(t.TempDir(), "img.aci")
	os.WriteFile(p, gzipBytes(t, makeTar(t, manifestJSON("example.com/f", nil, nil, nil), file("rootfs/a", "1"))), 0o644)
	info, err := s.ImportFile(context.Background(), p, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Replace the blob with garbage: a cache hit must not read it, and
	// must not hash the file either.
	os.WriteFile(s.blobPath(info.ID), []byte("garbage"), 0o600)
	again, err := s.ImportFile(context.Background(), p, ImportOptions{})
	if err != nil || again.ID != info.ID {
		t.Fatalf("second import: %v %s", err, again.ID)
	}
	// A changed file is imported again.
	os.WriteFile(p, gzipBytes(t, makeTar(t, manifestJSON("example.com/f", nil, nil, nil), file("rootfs/a", "2"))), 0o644)
	changed, err := s.ImportFile(context.Background(), p, ImportOptions{})
	if err != nil || changed.ID == info.ID {
		t.Fatalf("changed file: %v %s", err, changed.ID)
	}
}

func TestRemoteRoundTrip(t *testing.T) {
	s := newStore(t)
	if _, err := s.Remote("https://example.com/a.aci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown remote: %v", err)
	}
	raw := makeTar(t, manifestJSON("example.com/r", nil, nil, nil))
	now := time.Now().Truncate(time.Second)
	info, err := s.Import(context.Background(), bytes.NewReader(raw), ImportOptions{SourceURL: "https://example.com/a.aci",
		Remote: &Remote{ETag: `"v1"`, CacheMaxAge: 60, DownloadTime: now}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Remote("https://example.com/a.aci")
	if err != nil || r.ImageID != info.ID || r.ETag != `"v1"` || r.CacheMaxAge != 60 || !r.DownloadTime.Equal(now) {
		t.Fatalf("remote %+v %v", r, err)
	}
	if !r.Fresh(now.Add(30*time.Second)) || r.Fresh(now.Add(2*time.Minute)) {
		t.Error("Fresh ignores max-age")
	}
	r.ETag = `"v2"`
	if err := s.SetRemote(r); err != nil {
		t.Fatal(err)
	}
	if r2, _ := s.Remote(r.URL); r2.ETag != `"v2"` {
		t.Errorf("SetRemote not kept: %+v", r2)
	}
	if err := s.RemoveImage(info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remote(r.URL); !errors.Is(err, ErrNotFound) {
		t.Errorf("remote of a removed image: %v", err)
	}
}

func TestLockedIndexTimesOut(t *testing.T) {
	s := newStore(t)
	s.LockTimeout = 200 * time.Millisecond
	db, err := bolt.Open(s.dbPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = s.List()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("List with the index held: %v", err)
	}
}

func TestResolvePrefixes(t *testing.T) {
	s := newStore(t)
	var ids []string
	for i := 0; i < 40; i++ {
		info := mustImport(t, s, makeTar(t, manifestJSON("example.com/p", map[string]string{"version": string(rune('a' + i%26))}, nil, nil), file("rootfs/n", strings.Repeat("x", i))))
		ids = append(ids, info.ID)
	}
	// With 40 images, some pair shares its first hex digit.
	if _, err := s.Resolve("sha512-"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("empty prefix: %v", err)
	}
	for _, id := range ids {
		if got, err := s.Resolve(ShortID(id)); err != nil || got != id {
			t.Errorf("Resolve(%s) = %s, %v", ShortID(id), got, err)
		}
	}
	if _, err := s.Resolve("sha512-zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("non-hex prefix: %v", err)
	}
}

func TestImportRefusesSparse(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest"), []byte(manifestJSON("example.com/sparse", nil, nil, nil)), 0o644)
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	f, _ := os.Create(filepath.Join(dir, "rootfs/holes"))
	f.WriteAt([]byte("end"), 64<<20)
	f.Close()
	raw, err := exec.Command("tar", "-C", dir, "--sparse", "--format=posix", "-cf", "-", "manifest", "rootfs").Output()
	if err != nil {
		t.Skipf("GNU tar: %v", err)
	}
	s := newStore(t)
	_, err = s.Import(context.Background(), bytes.NewReader(raw), ImportOptions{})
	if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "sparse") {
		t.Fatalf("sparse file: %v", err)
	}
	assertEmpty(t, s)
}

// failingReader returns its data, then an error that is not EOF.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(b []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(b, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestImportSourceErrorsAndCancel(t *testing.T) {
	raw := gzipBytes(t, makeTar(t, manifestJSON("example.com/x", nil, nil, nil), file("rootfs/a", strings.Repeat("q", 1<<20))))
	s := newStore(t)
	boom := errors.New("connection reset by peer")
	_, err := s.Import(context.Background(), &failingReader{data: raw[:len(raw)/2], err: boom}, ImportOptions{})
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidImage) {
		t.Errorf("source failure: %v", err)
	}
	assertEmpty(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Import(ctx, bytes.NewReader(raw), ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import: %v", err)
	}
	assertEmpty(t, s)
}

func TestImportDotSlashArchive(t *testing.T) {
	needRoot(t)
	// `tar -C dir -czf x.aci .` names entries "./", "./manifest", ...
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manifest"), []byte(manifestJSON("example.com/dot", nil, nil, nil)), 0o644)
	os.MkdirAll(filepath.Join(dir, "rootfs/bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs/bin/tool"), []byte("tool"), 0o755)
	raw, err := exec.Command("tar", "-C", dir, "-czf", "-", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	info := mustImport(t, s, raw)
	tree, err := s.Render(context.Background(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(tree.Rootfs(), "bin/tool")); string(b) != "tool" {
		t.Errorf("bin/tool = %q", b)
	}
	if _, err := os.Stat(tree.ManifestPath()); err != nil {
		t.Error(err)
	}
}

// TestImportLargeEntries covers entries spanning several of the import
// pipeline's chunks, whose contents the tar check skips by seeking: the
// blob must still be every byte, and a cut anywhere in or after such an
// entry must be refused as truncated, naming it.
func TestImportLargeEntries(t *testing.T) {
	big := make([]byte, 3*chunkSize+chunkSize/2+123)
	for i := range big {
		big[i] = byte(i*7919 + i>>9)
	}
	raw := makeTar(t, manifestJSON("example.com/big", nil, nil, nil), file("rootfs/big", string(big)), file("rootfs/after", "tail"))
	s := newStore(t)
	info := mustImport(t, s, raw)
	sum := sha512.Sum512(raw)
	if want := "sha512-" + hex.EncodeToString(sum[:]); info.ID != want {
		t.Fatalf("ID %s, want %s", info.ID, want)
	}
	blob, err := os.ReadFile(s.blobPath(info.ID))
	if err != nil || !bytes.Equal(blob, raw) {
		t.Fatalf("blob differs from the image (%d bytes, want %d): %v", len(blob), len(raw), err)
	}

	start := int64(bytes.Index(raw, big[:4096]))
	end := start + int64(len(big))
	for name, cut := range map[string]int64{
		"inside the second chunk": start + chunkSize + 100,
		"inside the last chunk":   end - 7,
		"in the padding":          end + 10,
		"at the entry's end":      (end + 511) &^ 511,
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(raw[:cut]), ImportOptions{})
			if !errors.Is(err, ErrInvalidImage) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), `"rootfs/big"`) {
				t.Errorf("cut at %d: %v", cut, err)
			}
			assertEmpty(t, s)
		})
	}
	t.Run("gzip corrupt inside the entry", func(t *testing.T) {
		gz := gzipBytes(t, raw)
		bad := append([]byte(nil), gz...)
		for i := len(bad) / 2; i < len(bad)/2+64; i++ {
			bad[i] ^= 0x5a
		}
		s := newStore(t)
		_, err := s.Import(context.Background(), bytes.NewReader(bad), ImportOptions{})
		// Flipped deflate bits may still decode (into garbage that
		// breaks the tar) or fail the decoder or the CRC: refused anyway.
		if !errors.Is(err, ErrInvalidImage) {
			t.Errorf("corrupt gzip: %v", err)
		}
		assertEmpty(t, s)
	})
}

// TestImportFullDiskLeavesNothing: the blob writer runs beside the tar
// check; its failure must end the import with the disk's error and no
// temp file.
func TestImportFullDiskLeavesNothing(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=3m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 6<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>8)
	}
	_, err = s.Import(context.Background(), bytes.NewReader(makeTar(t, manifestJSON("example.com/big", nil, nil, nil), file("rootfs/noise", string(noise)))), ImportOptions{})
	if !errors.Is(err, unix.ENOSPC) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("import on a full disk: %v", err)
	}
	assertEmpty(t, s)
	// Room again: the same store takes a small image.
	mustImport(t, s, makeTar(t, manifestJSON("example.com/small", nil, nil, nil), file("rootfs/a", "a")))
}

// TestImportCheck: Check sees the whole image hashed before anything is
// committed, its refusal leaves nothing, and ImportFile does not answer
// from its record of a file when a Check must see it.
func TestImportCheck(t *testing.T) {
	s := newStore(t)
	plain := makeTar(t, manifestJSON("example.com/checked", nil, nil, nil), file("rootfs/a", "1"))
	refusal := errors.New("not this one")
	var got ImportedStream
	var reread []byte
	check := func(st ImportedStream) error {
		got = st
		rc, err := st.OpenTar()
		if err != nil {
			return err
		}
		defer rc.Close()
		reread, err = io.ReadAll(rc)
		return err
	}
	for _, tc := range []struct {
		data []byte
		comp Compression
	}{{plain, CompressionNone}, {gzipBytes(t, plain), CompressionGzip}} {
		_, err := s.Import(context.Background(), bytes.NewReader(tc.data), ImportOptions{RawHash: crypto.SHA512, Check: func(st ImportedStream) error {
			check(st)
			return refusal
		}})
		if !errors.Is(err, refusal) {
			t.Fatalf("%s: refused import returned %v", tc.comp, err)
		}
		assertEmpty(t, s)
		if got.Compression != tc.comp || !bytes.Equal(reread, plain) {
			t.Fatalf("%s: Check saw %s and read back %d bytes", tc.comp, got.Compression, len(reread))
		}
		if tc.comp != CompressionNone {
			if got.RawHashState != nil {
				t.Fatalf("%s: a hash of the received bytes was given for a compressed image", tc.comp)
			}
			continue
		}
		// The state finishes to the image ID.
		h := sha512.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(got.RawHashState); err != nil {
			t.Fatal(err)
		}
		if want := sha512.Sum512(plain); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("%s: the SHA-512 state does not finish to the tar's SHA-512", tc.comp)
		}
	}
	// Another hash is computed beside the image ID's.
	var state []byte
	if _, err := s.Import(context.Background(), bytes.NewReader(plain), ImportOptions{RawHash: crypto.SHA256, Check: func(st ImportedStream) error {
		state = st.RawHashState
		return refusal
	}}); !errors.Is(err, refusal) {
		t.Fatal(err)
	}
	h256 := sha256.New()
	if err := h256.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(plain); !bytes.Equal(h256.Sum(nil), want[:]) {
		t.Fatal("the SHA-256 state does not finish to the tar's SHA-256")
	}
	assertEmpty(t, s)

	p := filepath.Join(t.TempDir(), "img.aci")
	os.WriteFile(p, plain, 0o644)
	if _, err := s.ImportFile(context.Background(), p, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := s.ImportFile(context.Background(), p, ImportOptions{Check: func(st ImportedStream) error {
		calls++
		return check(st)
	}}); err != nil || calls != 1 {
		t.Fatalf("ImportFile of a known file with Check: %v, %d calls", err, calls)
	}
}
