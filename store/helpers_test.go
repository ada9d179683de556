package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// tEntry is one tar entry of a test image.
type tEntry struct {
	name     string
	typeflag byte
	body     string
	linkname string
	mode     int64
	uid, gid int
	xattrs   map[string]string
	major    int64
	minor    int64
}

func file(name, body string) tEntry {
	return tEntry{name: name, typeflag: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) tEntry { return tEntry{name: name, typeflag: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) tEntry {
	return tEntry{name: name, typeflag: tar.TypeSymlink, linkname: target, mode: 0o777}
}
func hardlink(name, target string) tEntry {
	return tEntry{name: name, typeflag: tar.TypeLink, linkname: target, mode: 0o644}
}

var testMtime = time.Unix(1500000000, 0)

// manifestJSON builds a valid image manifest.
func manifestJSON(name string, labels map[string]string, deps []map[string]any, pwl []string) string {
	m := map[string]any{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name}
	var ls []map[string]string
	for k, v := range labels {
		ls = append(ls, map[string]string{"name": k, "value": v})
	}
	if ls != nil {
		m["labels"] = ls
	}
	if deps != nil {
		m["dependencies"] = deps
	}
	if pwl != nil {
		m["pathWhitelist"] = pwl
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// makeTar writes entries as a tar, with the manifest first.
func makeTar(t testing.TB, manifest string, entries ...tEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	all := entries
	if manifest != "" {
		all = append([]tEntry{file("manifest", manifest), dir("rootfs")}, entries...)
	}
	for _, e := range all {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Linkname: e.linkname, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, ModTime: testMtime, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if e.typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if e.xattrs != nil {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustImport(t testing.TB, s *Store, b []byte) ImageInfo {
	t.Helper()
	info, err := s.Import(context.Background(), bytes.NewReader(b), ImportOptions{})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return info
}

func runFilter(argv []string, in []byte) ([]byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	return cmd.Output()
}

// needRoot skips tests that render: rendering sets owners (chown) and
// makes device nodes, which only root may. `make test` runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("rendering needs root (chown, mknod)")
	}
}
