package ociconv

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ot "github.com/rktng/rkt/pkg/ociconv/ocitest"
)

// aciEntry is what a test checks of one ACI entry.
type aciEntry struct {
	typ   byte
	body  string
	link  string
	mode  int64
	uid   int
	xattr map[string]string
}

// readACI lists the ACI tar and checks the order an extractor relies on:
// the manifest first, every directory before what it holds and a hard
// link's target before the link.
func readACI(t *testing.T, b []byte) (map[string]aciEntry, *schema.ImageManifest) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string]aciEntry{}
	var im *schema.ImageManifest
	first := true
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		name := strings.TrimSuffix(h.Name, "/")
		if first {
			if name != "manifest" {
				t.Fatalf("first entry %q, want manifest", name)
			}
			im = &schema.ImageManifest{}
			if err := im.UnmarshalJSON(body); err != nil {
				t.Fatalf("manifest: %v", err)
			}
			first = false
			continue
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s appears twice", name)
		}
		if name != "rootfs" {
			dir := name[:strings.LastIndex(name, "/")]
			if d, ok := out[dir]; !ok || d.typ != tar.TypeDir {
				t.Fatalf("%s comes before its directory %s", name, dir)
			}
		}
		if h.Typeflag == tar.TypeLink {
			if _, ok := out[h.Linkname]; !ok {
				t.Fatalf("hard link %s -> %s comes before its target", name, h.Linkname)
			}
		}
		e := aciEntry{typ: h.Typeflag, body: string(body), link: h.Linkname, mode: h.Mode, uid: h.Uid}
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if e.xattr == nil {
					e.xattr = map[string]string{}
				}
				e.xattr[strings.TrimPrefix(k, "SCHILY.xattr.")] = v
			}
		}
		out[name] = e
	}
	return out, im
}

// content resolves hard links to the bytes a reader of the path would see.
func content(entries map[string]aciEntry, name string) (string, bool) {
	e, ok := entries[name]
	if !ok {
		return "", false
	}
	if e.typ == tar.TypeLink {
		return content(entries, e.link)
	}
	return e.body, true
}

func convert(t *testing.T, img v1.Image, src Source) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Convert(context.Background(), img, src, Options{}, &buf); err != nil {
		t.Fatalf("convert: %v", err)
	}
	return buf.Bytes()
}

// layeredImage has every case the flattening must get right, spread over
// three layers.
func layeredImage(t *testing.T, oci bool) v1.Image {
	t.Helper()
	l0 := ot.Layer(oci,
		ot.Dir("./"),
		ot.Dir("etc"), ot.Entry{Name: "etc/passwd", Body: "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n"},
		ot.Dir("a"), ot.File("a/x", "x0"), ot.File("a/y", "y0"), ot.File("a/keep", "keep"),
		ot.Dir("b"), ot.File("b/z", "z0"), ot.Dir("b/sub"), ot.File("b/sub/deep", "deep"),
		ot.Dir("c"), ot.File("c/old1", "o1"), ot.Dir("c/olddir"), ot.File("c/olddir/f", "f"),
		ot.File("shared", "shared0"), ot.Hardlink("shared-link", "shared"),
		ot.File("becomes-dir", "file"),
		ot.Dir("was-dir"), ot.File("was-dir/inner", "inner"),
		ot.Entry{Name: "attr", Body: "a", Mode: 0o4750, Uid: 7, Gid: 8, Xattrs: map[string]string{"user.k": "v"}},
	)
	l1 := ot.Layer(oci,
		ot.Whiteout("a", "x"),
		ot.Whiteout("", "b"),
		ot.Dir("c"), ot.Opaque("c"), ot.File("c/new", "n1"),
		ot.Dir("d"), ot.Hardlink("d/hard-y", "a/y"), ot.Symlink("d/sym-y", "../a/y"),
		ot.Hardlink("d/hard-shared", "shared"),
		ot.File("was-dir", "now a file"),
		ot.Dir("becomes-dir"), ot.File("becomes-dir/child", "child"),
		ot.File("implicit/parent/file", "no dir entries above me"),
	)
	l2 := ot.Layer(oci,
		ot.File("a/y", "y2"),
		ot.Whiteout("", "shared"),
		ot.File("a/x", "x-again"),
	)
	img, err := ot.Image(oci, v1.Config{
		Entrypoint:   []string{"/bin/server"},
		Cmd:          []string{"--port", "80"},
		Env:          []string{"PATH=/usr/bin:/bin", "EMPTY=", "bad name=x"},
		WorkingDir:   "/srv",
		User:         "web",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "9000-9002/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/data": {}},
		Labels:       map[string]string{"org.example.team": "infra", "Maintainer": "me"},
	}, l0, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFlatten(t *testing.T) {
	for _, oci := range []bool{false, true} {
		name := "docker"
		if oci {
			name = "oci"
		}
		t.Run(name, func(t *testing.T) {
			entries, _ := readACI(t, convert(t, layeredImage(t, oci), Source{Registry: "example.com", Repository: "a/b", Tag: "1"}))
			want := map[string]string{
				"rootfs/a/y":                  "y2",
				"rootfs/a/x":                  "x-again",
				"rootfs/a/keep":               "keep",
				"rootfs/c/new":                "n1",
				"rootfs/d/hard-y":             "y0", // linked to a/y before a/y was replaced
				"rootfs/d/hard-shared":        "shared0",
				"rootfs/shared-link":          "shared0",
				"rootfs/was-dir":              "now a file",
				"rootfs/becomes-dir/child":    "child",
				"rootfs/implicit/parent/file": "no dir entries above me",
				"rootfs/attr":                 "a",
				"rootfs/etc/passwd":           "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n",
			}
			for p, body := range want {
				got, ok := content(entries, p)
				if !ok {
					t.Errorf("%s missing", p)
				} else if got != body {
					t.Errorf("%s = %q, want %q", p, got, body)
				}
			}
			for _, gone := range []string{"rootfs/b", "rootfs/b/z", "rootfs/b/sub/deep", "rootfs/c/old1",
				"rootfs/c/olddir", "rootfs/c/olddir/f", "rootfs/shared", "rootfs/was-dir/inner",
				"rootfs/a/.wh.x", "rootfs/c/.wh..wh..opq", "rootfs/.wh.b"} {
				if _, ok := entries[gone]; ok {
					t.Errorf("%s should be gone", gone)
				}
			}
			if e := entries["rootfs/d/sym-y"]; e.typ != tar.TypeSymlink || e.link != "../a/y" {
				t.Errorf("symlink = %+v", e)
			}
			if e := entries["rootfs/becomes-dir"]; e.typ != tar.TypeDir {
				t.Errorf("becomes-dir type %c, want directory", e.typ)
			}
			if e := entries["rootfs/implicit"]; e.typ != tar.TypeDir || e.mode != 0o755 {
				t.Errorf("implicit dir = %+v", e)
			}
			if e := entries["rootfs/attr"]; e.mode != 0o4750 || e.uid != 7 || e.xattr["user.k"] != "v" {
				t.Errorf("attr = %+v, want mode 4750, uid 7, xattr user.k=v", e)
			}
			// The shared file was deleted, so one of its links carries the
			// content and the other links to it.
			hs, sl := entries["rootfs/d/hard-shared"], entries["rootfs/shared-link"]
			if (hs.typ == tar.TypeLink) == (sl.typ == tar.TypeLink) {
				t.Errorf("want exactly one of the shared links to carry the content: %c %c", hs.typ, sl.typ)
			}
		})
	}
}

func TestManifestMapping(t *testing.T) {
	src := Source{Registry: "127.0.0.1:5000", Repository: "team/app", Tag: "1.2", Digest: "sha256:abcd", Original: "127.0.0.1:5000/team/app:1.2"}
	_, im := readACI(t, convert(t, layeredImage(t, true), src))
	if im.Name != "127.0.0.1_5000/team/app" {
		t.Errorf("name %q", im.Name)
	}
	for k, v := range map[string]string{"version": "1.2", "os": "linux", "arch": "amd64"} {
		if got, _ := im.Labels.Get(k); got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	app := im.App
	if got := strings.Join(app.Exec, " "); got != "/bin/server --port 80" {
		t.Errorf("exec %q", got)
	}
	if app.User != "web" || app.Group != "44" {
		t.Errorf("user:group %s:%s, want web:44 (primary group from /etc/passwd)", app.User, app.Group)
	}
	if app.WorkingDirectory != "/srv" {
		t.Errorf("workdir %q", app.WorkingDirectory)
	}
	if v, _ := app.Environment.Get("PATH"); v != "/usr/bin:/bin" {
		t.Errorf("PATH %q", v)
	}
	if _, ok := app.Environment.Get("EMPTY"); !ok || len(app.Environment) != 2 {
		t.Errorf("environment %v, want PATH and EMPTY only", app.Environment)
	}
	var ports []string
	for _, p := range app.Ports {
		ports = append(ports, string(p.Name)+"/"+p.Protocol)
	}
	if got := strings.Join(ports, " "); got != "53-udp/udp 80-tcp/tcp 9000-9002-tcp/tcp" {
		t.Errorf("ports %q", got)
	}
	if app.Ports[2].Port != 9000 || app.Ports[2].Count != 3 {
		t.Errorf("range port %+v", app.Ports[2])
	}
	if len(app.MountPoints) != 1 || app.MountPoints[0].Path != "/var/lib/data" || app.MountPoints[0].Name != "volume-var-lib-data" {
		t.Errorf("mount points %+v", app.MountPoints)
	}
	for k, v := range map[string]string{
		"org.example.team":       "infra",
		"maintainer":             "me",
		AnnotationManifestDigest: "sha256:abcd",
		AnnotationRepository:     "team/app",
		AnnotationRegistryURL:    "127.0.0.1:5000",
		AnnotationEntrypoint:     `["/bin/server"]`,
		"created":                "2024-05-01T12:00:00Z",
	} {
		if got, _ := im.Annotations.Get(k); got != v {
			t.Errorf("annotation %s = %q, want %q", k, got, v)
		}
	}
}

func TestUserGroup(t *testing.T) {
	passwd := map[string][]byte{"etc/passwd": []byte("root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n")}
	for spec, want := range map[string]string{
		"": "0:0", "web": "web:44", "33": "33:44", "1000": "1000:0", "web:staff": "web:staff",
		"5:6": "5:6", "nobody": "nobody:0",
	} {
		u, g := userGroup(spec, passwd)
		if u+":"+g != want {
			t.Errorf("userGroup(%q) = %s:%s, want %s", spec, u, g, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	src := Source{Registry: "r", Repository: "x", Tag: "t"}
	a := convert(t, layeredImage(t, false), src)
	b := convert(t, layeredImage(t, false), src)
	if !bytes.Equal(a, b) {
		t.Fatal("two conversions of the same image differ")
	}
}

func TestRefusals(t *testing.T) {
	cases := map[string][]ot.Entry{
		"hard link to a missing file": {ot.File("a", "1"), ot.Hardlink("b", "nope")},
		"path leaving the root":       {ot.File("../../etc/evil", "1")},
		"hard link leaving the root":  {ot.File("a", "1"), ot.Hardlink("b", "../a")},
		"hard link to a directory":    {ot.Dir("d"), ot.Hardlink("b", "d")},
		"entries below a symlink":     {ot.Symlink("etc", "/"), ot.File("etc/passwd", "x")},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := ot.Image(false, v1.Config{Cmd: []string{"/x"}}, ot.Layer(false, entries...))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err = Convert(context.Background(), img, Source{Registry: "r", Repository: "x"}, Options{}, &buf)
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("err = %v, want ErrBadImage", err)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written before the refusal", buf.Len())
			}
		})
	}
}

// TestCompressions: zstd and uncompressed layers flatten like gzip ones,
// and a spool directory changes nothing in the output and is left empty.
func TestCompressions(t *testing.T) {
	entries := func(n string) []ot.Entry {
		return []ot.Entry{ot.Dir(n), ot.File(n+"/f", n), ot.Whiteout("", "gone")}
	}
	img, err := ot.Image(true, v1.Config{Cmd: []string{"/x"}},
		ot.Layer(true, ot.File("gone", "1"), ot.Dir("g")),
		ot.ZstdLayer(entries("z")...),
		ot.UncompressedLayer(entries("u")...),
	)
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Registry: "r", Repository: "c"}
	plain := convert(t, img, src)
	spool := t.TempDir()
	var buf bytes.Buffer
	if _, err := Convert(context.Background(), img, src, Options{TempDir: spool}, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, buf.Bytes()) {
		t.Error("spooling changed the output")
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	entriesOut, _ := readACI(t, plain)
	for p, want := range map[string]string{"rootfs/z/f": "z", "rootfs/u/f": "u"} {
		if got, ok := content(entriesOut, p); !ok || got != want {
			t.Errorf("%s = %q (present %v), want %q", p, got, ok, want)
		}
	}
	if _, ok := entriesOut["rootfs/gone"]; ok {
		t.Error("whiteout in a zstd layer not applied")
	}
}

// TestCancel: a cancelled conversion stops with the context's error and
// removes its spool.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	spool := t.TempDir()
	_, err := Convert(ctx, layeredImage(t, false), Source{Registry: "r", Repository: "x"}, Options{TempDir: spool}, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}
