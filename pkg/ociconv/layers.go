package ociconv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Whiteout markers of the OCI image spec (inherited from aufs): a file
// named .wh.NAME deletes NAME from the layers below, and .wh..wh..opq makes
// its directory opaque (everything below from lower layers is hidden).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// openLayer returns the layer's uncompressed tar stream. It decompresses
// Compressed() itself, sniffing the magic bytes rather than trusting the
// media type (registries and tools mislabel layers), with klauspost's
// decoders, which are about twice as fast as the standard library's.
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &stackedReader{Reader: zr, closers: []io.Closer{zr, rc}}, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &stackedReader{Reader: zr, closers: []io.Closer{closerFunc(func() error { zr.Close(); return nil }), rc}}, nil
	default:
		return &stackedReader{Reader: br, closers: []io.Closer{rc}}, nil
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// stackedReader reads from the outermost decoder and closes every layer of
// the stack, innermost (the network or file) last.
type stackedReader struct {
	io.Reader
	closers []io.Closer
}

func (s *stackedReader) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// entryKind classifies one tar entry of a layer.
type entryKind int

const (
	kindEntry    entryKind = iota // a file, directory, link or device
	kindWhiteout                  // .wh.NAME
	kindOpaque                    // .wh..wh..opq
	kindSkip                      // aufs metadata, pax global headers
)

// cleanName turns a layer's entry name into a slash-separated path relative
// to the root ("." for the root itself), refusing names that climb out.
func cleanName(name string) (string, error) {
	p := path.Clean("/" + strings.TrimPrefix(name, "./"))
	if p == "/" {
		return ".", nil
	}
	p = p[1:]
	// Clean of an absolute path never keeps "..", but a name with a NUL or
	// other oddity is still worth refusing explicitly.
	if strings.ContainsRune(p, 0) {
		return "", bad("entry %q: name contains NUL", name)
	}
	return p, nil
}

// classify reports what hdr is and the path it concerns: for a whiteout,
// the path it deletes; for an opaque marker, its directory.
func classify(hdr *tar.Header) (entryKind, string, error) {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return kindSkip, "", nil
	}
	if strings.Contains(hdr.Name, "..") {
		// Refuse a name that climbs above the root before cleaning hides it:
		// an image that tries that is broken or hostile.
		for _, part := range strings.Split(hdr.Name, "/") {
			if part == ".." {
				return 0, "", bad("entry %q: path leaves the root", hdr.Name)
			}
		}
	}
	p, err := cleanName(hdr.Name)
	if err != nil {
		return 0, "", err
	}
	base := path.Base(p)
	dir := path.Dir(p)
	switch {
	case base == whiteoutOpaque:
		return kindOpaque, dir, nil
	case strings.HasPrefix(base, whiteoutMeta):
		return kindSkip, "", nil
	case strings.HasPrefix(base, whiteoutPrefix):
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return 0, "", bad("entry %q: bad whiteout", hdr.Name)
		}
		return kindWhiteout, path.Join(dir, target), nil
	}
	return kindEntry, p, nil
}

// parent returns the directory holding p ("." for top-level entries).
func parent(p string) string { return path.Dir(p) }
