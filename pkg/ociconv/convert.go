// Package ociconv owns the conversion of Docker and OCI images (as
// go-containerregistry v1.Images) into ACIs: the layers flattened into one
// rootfs with whiteouts and opaque directories applied, and the image config
// mapped onto an appc image manifest. The ACI is written as a tar stream, so
// it can go straight into the store without touching the disk or memory.
//
// The conversion is deterministic: the same image and reference give the
// same bytes, hence the same image ID. Entries come in layer order, file
// times come from the layers, and whatever the conversion adds (the manifest,
// directories no layer describes) carries the image's creation time.
package ociconv

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/appc/spec/schema"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Source says where an image came from; it names the ACI and fills the
// docker2aci-style annotations.
type Source struct {
	// Name is the ACI name; when empty it is derived from Registry and
	// Repository with ImageName.
	Name       string
	Registry   string // e.g. "index.docker.io", "127.0.0.1:5000"
	Repository string // e.g. "library/busybox"
	// Tag becomes the version label; an image pulled by digest alone has
	// none (the digest is recorded as an annotation instead).
	Tag        string
	Digest     string // the manifest digest, "sha256:..."
	Original   string // the reference as the user typed it
	LayoutPath string // the OCI layout directory, for oci: images
}

// Options tune a conversion.
type Options struct {
	// TempDir, when set, holds each layer's decompressed tar
	// for the two passes (removed before Convert returns), so that layers
	// are decompressed once, several at a time. The space needed is the
	// image's uncompressed size.
	TempDir string
}

// ErrBadImage is wrapped by every error caused by the image's content
// (as opposed to reading it or writing the ACI).
var ErrBadImage = errors.New("bad image")

// Convert writes img as an uncompressed ACI tar to w and returns its
// manifest. It reads each layer twice (see flatten.go) and holds only
// metadata in memory. Nothing is written to w when the image is refused
// while reading its headers; a failure later leaves a truncated tar, which
// the store refuses as a whole.
func Convert(ctx context.Context, img v1.Image, src Source, opts Options, w io.Writer) (*schema.ImageManifest, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	if cfg == nil {
		return nil, fmt.Errorf("read image config: %w: empty config", ErrBadImage)
	}
	configDigest, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read image layers: %w", err)
	}
	sp := newSpooler(ctx, layers, opts.TempDir)
	defer sp.cleanup()
	pl, err := scan(ctx, len(layers), sp.open)
	if err != nil {
		return nil, err
	}
	im, err := buildManifest(src, cfg, configDigest.String(), pl.small)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	mb, err := json.Marshal(im)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrBadImage, err)
	}
	epoch := time.Unix(0, 0).UTC()
	if !cfg.Created.IsZero() {
		epoch = cfg.Created.UTC().Truncate(time.Second)
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest", Mode: 0o644, Size: int64(len(mb)), ModTime: epoch}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mb); err != nil {
		return nil, err
	}
	if err := emit(ctx, len(layers), sp.open, pl, tw, epoch); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return im, nil
}

// badEntry is an error about the image's content; it matches ErrBadImage
// without repeating "bad image" in every message.
type badEntry struct{ msg string }

func (e *badEntry) Error() string { return e.msg }
func (e *badEntry) Unwrap() error { return ErrBadImage }

func bad(format string, a ...any) error { return &badEntry{fmt.Sprintf(format, a...)} }
