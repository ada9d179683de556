// Package ocitest builds small Docker and OCI images in tests: layers from
// a list of entries (files, directories, links, whiteouts), images from
// layers and a config, in either media-type family. It is used by the
// converter's unit tests and by the functional tests that push the images
// to a registry.
package ocitest

import (
	"archive/tar"
	"bytes"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one tar entry of a layer.
type Entry struct {
	Name     string
	Type     byte // tar.TypeReg when zero
	Body     string
	Link     string // symlink or hard link target
	Mode     int64  // 0644 for files, 0755 for directories when zero
	Uid, Gid int
	Xattrs   map[string]string
}

// Helpers for the common entries.
func File(name, body string) Entry  { return Entry{Name: name, Body: body} }
func Dir(name string) Entry         { return Entry{Name: name, Type: tar.TypeDir} }
func Symlink(name, to string) Entry { return Entry{Name: name, Type: tar.TypeSymlink, Link: to} }
func Hardlink(name, to string) Entry {
	return Entry{Name: name, Type: tar.TypeLink, Link: to}
}
func Whiteout(dir, name string) Entry {
	if dir == "" {
		return File(".wh."+name, "")
	}
	return File(dir+"/.wh."+name, "")
}
func Opaque(dir string) Entry { return File(dir+"/.wh..wh..opq", "") }

// ModTime is the mtime of every entry ocitest writes, so that images built
// twice are identical.
var ModTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Tar returns the uncompressed tar of entries.
func Tar(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: e.Mode,
			Uid: e.Uid, Gid: e.Gid, ModTime: ModTime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Layer makes a gzip-compressed layer of entries, with an OCI media type
// when oci is set and Docker's otherwise.
func Layer(oci bool, entries ...Entry) v1.Layer {
	return LayerFromTar(oci, Tar(entries...))
}

// LayerFromTar makes a gzip-compressed layer from an uncompressed tar.
func LayerFromTar(oci bool, data []byte) v1.Layer {
	mt := types.DockerLayer
	if oci {
		mt = types.OCILayer
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(mt))
	if err != nil {
		panic(err)
	}
	return l
}

// ZstdLayer makes a zstd-compressed OCI layer of entries.
func ZstdLayer(entries ...Entry) v1.Layer {
	data := Tar(entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		panic(err)
	}
	return l
}

// UncompressedLayer makes an OCI layer stored as a plain tar.
func UncompressedLayer(entries ...Entry) v1.Layer {
	return static.NewLayer(Tar(entries...), types.OCIUncompressedLayer)
}

// Image stacks layers (bottom first) under cfg, in the OCI or Docker
// schema 2 media types.
func Image(oci bool, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	base := empty.Image
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS = "linux"
	cf.Architecture = "amd64"
	cf.Created = v1.Time{Time: ModTime}
	return mutate.ConfigFile(img, cf)
}
