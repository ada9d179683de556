package ociconv

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The flattening reads the layers twice, bottom to top both times. The first
// pass reads only headers and records, per path, which entry is the last one
// and which whiteouts, opaque markers and replacements come after it. The
// second pass streams the surviving entries into the ACI in layer order. Only
// metadata is held in memory; file contents go straight from the layer to the
// output. Emitting bottom-up keeps the order a tar extractor needs: a hard
// link's target before the link, and (with ensureDir) every directory before
// what it holds.

// entryRef is one entry of one layer; seq numbers entries across all layers
// in stream order, so both passes name the same entry the same way.
type entryRef struct {
	seq   int
	layer int
	dir   bool
	link  bool // a hard link
}

// plan is what the first pass learns.
type plan struct {
	last      map[string]entryRef    // the last entry for each path
	dirHdr    map[string]*tar.Header // header of that last entry, for directories
	whiteout  map[string]int         // highest layer with .wh.NAME for the path
	opaque    map[string]int         // highest layer with an opaque marker in the directory
	nonDir    map[string]int         // highest layer with a non-directory at the path
	below     map[string]int         // highest layer with an entry strictly below the path
	linkSrc   map[int]int            // hard link seq -> seq of the non-link entry it shares
	linkPath  map[int]string         // hard link seq -> its own path
	srcPath   map[int]string         // seq of an entry some hard link shares -> its path
	carrierOf map[int]int            // dropped entry seq -> seq of the surviving link that takes its content
	small     map[string][]byte      // content of /etc/passwd (last entry)
	smallSeq  map[string]int
}

// smallFiles are read in the first pass so the manifest can resolve the
// image user's primary group.
var smallFiles = map[string]bool{"etc/passwd": true}

func newPlan() *plan {
	return &plan{
		last:      map[string]entryRef{},
		dirHdr:    map[string]*tar.Header{},
		whiteout:  map[string]int{},
		opaque:    map[string]int{},
		nonDir:    map[string]int{},
		below:     map[string]int{},
		linkSrc:   map[int]int{},
		linkPath:  map[int]string{},
		srcPath:   map[int]string{},
		carrierOf: map[int]int{},
		small:     map[string][]byte{},
		smallSeq:  map[string]int{},
	}
}

func setMax(m map[string]int, k string, v int) {
	if old, ok := m[k]; !ok || v > old {
		m[k] = v
	}
}

// alive reports whether entry e at path p is part of the flattened image.
func (pl *plan) alive(p string, e entryRef) bool {
	if pl.last[p].seq != e.seq {
		return false
	}
	if !e.dir {
		// A later layer put something below p: p became a directory.
		if l, ok := pl.below[p]; ok && l > e.layer {
			return false
		}
	}
	for q := p; ; q = parent(q) {
		if l, ok := pl.whiteout[q]; ok && l > e.layer && q != "." {
			return false
		}
		if q != p {
			if l, ok := pl.opaque[q]; ok && l > e.layer {
				return false
			}
			if l, ok := pl.nonDir[q]; ok && l > e.layer {
				return false
			}
		}
		if q == "." {
			return true
		}
	}
}

// layerSource opens layer i's uncompressed tar stream.
type layerSource func(i int) (io.ReadCloser, error)

// layerWalk calls fn for every entry of every layer, bottom to top, with the
// entry's kind, path and layer index; fn may read the entry's content from tr.
func layerWalk(ctx context.Context, n int, open layerSource, fn func(layer int, hdr *tar.Header, kind entryKind, p string, tr *tar.Reader) error) error {
	for i := 0; i < n; i++ {
		if err := walkOne(ctx, i, open, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkOne(ctx context.Context, i int, open layerSource, fn func(int, *tar.Header, entryKind, string, *tar.Reader) error) (err error) {
	rc, err := open(i)
	if err != nil {
		return fmt.Errorf("layer %d: %w", i, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			// Closing a verifying reader is where a digest mismatch shows.
			err = fmt.Errorf("layer %d: %w", i, cerr)
		}
	}()
	tr := tar.NewReader(bufio.NewReaderSize(rc, 256<<10))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %d: read tar: %w", i, err)
		}
		kind, p, err := classify(hdr)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if kind == kindSkip {
			continue
		}
		if err := fn(i, hdr, kind, p, tr); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	// Drain what follows the end-of-archive marker so that a verifying
	// reader sees the whole blob and can check its digest on Close, and the
	// spool holds the complete stream.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("layer %d: %w", i, err)
	}
	return nil
}

// scan is the first pass.
func scan(ctx context.Context, n int, open layerSource) (*plan, error) {
	pl := newPlan()
	seq := 0
	err := layerWalk(ctx, n, open, func(layer int, hdr *tar.Header, kind entryKind, p string, tr *tar.Reader) error {
		switch kind {
		case kindWhiteout:
			setMax(pl.whiteout, p, layer)
			return nil
		case kindOpaque:
			setMax(pl.opaque, p, layer)
			return nil
		}
		seq++
		e := entryRef{seq: seq, layer: layer, dir: hdr.Typeflag == tar.TypeDir || p == "."}
		if p == "." && hdr.Typeflag != tar.TypeDir {
			return bad("entry %q: the root is not a directory", hdr.Name)
		}
		if hdr.Typeflag == tar.TypeLink {
			target, err := linkTarget(hdr)
			if err != nil {
				return err
			}
			prev, ok := pl.last[target]
			if !ok {
				return bad("hard link %q: target %q is not in the image", hdr.Name, hdr.Linkname)
			}
			if prev.dir {
				return bad("hard link %q: target %q is a directory", hdr.Name, hdr.Linkname)
			}
			src := prev.seq
			if prev.link {
				src = pl.linkSrc[prev.seq]
			} else {
				pl.srcPath[src] = target
			}
			e.link = true
			pl.linkSrc[seq] = src
			pl.linkPath[seq] = p
		}
		pl.last[p] = e
		if e.dir {
			h := *hdr
			pl.dirHdr[p] = &h
		} else {
			delete(pl.dirHdr, p)
			setMax(pl.nonDir, p, layer)
		}
		for q := p; q != "."; {
			q = parent(q)
			setMax(pl.below, q, layer)
		}
		if smallFiles[p] && hdr.Typeflag == tar.TypeReg && hdr.Size < 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			pl.small[p] = b
			pl.smallSeq[p] = seq
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A link that survives while the entry it shares is dropped (replaced or
	// deleted by a later layer) takes over that entry's content: the first
	// such link, in stream order, is written as the file, the others link to it.
	for l := 1; l <= seq; l++ {
		src, ok := pl.linkSrc[l]
		if !ok {
			continue
		}
		lp := pl.linkPath[l]
		if !pl.alive(lp, pl.last[lp]) || pl.last[lp].seq != l {
			continue
		}
		if _, taken := pl.carrierOf[src]; taken {
			continue
		}
		if !pl.srcAlive(src) {
			pl.carrierOf[src] = l
		}
	}
	// One layer with both a non-directory at p and entries below p cannot
	// be extracted without writing through a symlink; refuse it before
	// anything is written.
	for p, e := range pl.last {
		if l, ok := pl.below[p]; ok && !e.dir && l == e.layer && pl.alive(p, e) {
			return nil, bad("layer %d: %q holds entries but is not a directory", e.layer, p)
		}
	}
	for name, s := range pl.smallSeq {
		if e := pl.last[name]; e.seq != s || !pl.alive(name, e) {
			delete(pl.small, name)
		}
	}
	return pl, nil
}

// srcAlive reports whether the non-link entry seq survives under its own path.
func (pl *plan) srcAlive(seq int) bool {
	p := pl.srcPath[seq]
	e := pl.last[p]
	return e.seq == seq && pl.alive(p, e)
}

func linkTarget(hdr *tar.Header) (string, error) {
	for _, part := range strings.Split(hdr.Linkname, "/") {
		if part == ".." {
			return "", bad("hard link %q: target %q leaves the root", hdr.Name, hdr.Linkname)
		}
	}
	t, err := cleanName(hdr.Linkname)
	if err != nil {
		return "", err
	}
	if t == "." {
		return "", bad("hard link %q: target is the root", hdr.Name)
	}
	return t, nil
}

// emitter is the second pass: it writes the surviving entries under rootfs/.
type emitter struct {
	pl      *plan
	tw      *tar.Writer
	epoch   time.Time
	dirDone map[string]bool
	written map[int]string // seq of an entry hard links share -> path it was written under
	carried map[int]bool   // link seqs already written as their source's content
}

func aciPath(p string) string {
	if p == "." {
		return "rootfs"
	}
	return "rootfs/" + p
}

// outHeader copies what the ACI keeps of a layer header: type, mode,
// ownership, mtime, size, link target, device numbers and extended
// attributes. Access and change times are dropped: they describe the
// machine that built the layer, not the image.
func outHeader(h *tar.Header, p string) *tar.Header {
	o := &tar.Header{
		Typeflag: h.Typeflag,
		Name:     aciPath(p),
		Linkname: h.Linkname,
		Size:     h.Size,
		Mode:     h.Mode,
		Uid:      h.Uid,
		Gid:      h.Gid,
		Uname:    h.Uname,
		Gname:    h.Gname,
		ModTime:  h.ModTime,
		Devmajor: h.Devmajor,
		Devminor: h.Devminor,
	}
	if o.Typeflag == tar.TypeDir {
		o.Name += "/"
	}
	if o.Typeflag != tar.TypeReg {
		o.Size = 0
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if o.PAXRecords == nil {
				o.PAXRecords = map[string]string{}
			}
			o.PAXRecords[k] = v
		}
	}
	return o
}

func (em *emitter) syntheticDir(p string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: aciPath(p) + "/", Mode: 0o755, ModTime: em.epoch}
}

// ensureDir writes directory p, and its parents first, if not yet written,
// with the header of p's surviving entry, or a plain 0755 root-owned one when
// the layers never described it.
func (em *emitter) ensureDir(p string) error {
	if em.dirDone[p] {
		return nil
	}
	if p != "." {
		if err := em.ensureDir(parent(p)); err != nil {
			return err
		}
	}
	var h *tar.Header
	e, ok := em.pl.last[p]
	switch {
	case ok && e.dir && em.pl.alive(p, e):
		h = outHeader(em.pl.dirHdr[p], p)
	case ok && em.pl.alive(p, e):
		// Only one layer putting both a file (or symlink) at p and entries
		// below p gets here: extracting that would write through the
		// symlink, or fail.
		return bad("%q holds entries but is not a directory", p)
	default:
		h = em.syntheticDir(p)
	}
	em.dirDone[p] = true
	return em.tw.WriteHeader(h)
}

func (em *emitter) write(h *tar.Header, r io.Reader) error {
	if err := em.tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		if _, err := io.CopyN(em.tw, r, h.Size); err != nil {
			return fmt.Errorf("copy %s: %w", h.Name, err)
		}
	}
	return nil
}

// emit is the second pass over the layers.
func emit(ctx context.Context, n int, open layerSource, pl *plan, tw *tar.Writer, epoch time.Time) error {
	em := &emitter{pl: pl, tw: tw, epoch: epoch, dirDone: map[string]bool{}, written: map[int]string{}, carried: map[int]bool{}}
	if err := em.ensureDir("."); err != nil {
		return err
	}
	seq := 0
	err := layerWalk(ctx, n, open, func(layer int, hdr *tar.Header, kind entryKind, p string, tr *tar.Reader) error {
		if kind != kindEntry {
			return nil
		}
		seq++
		e := pl.last[p]
		alive := e.seq == seq && pl.alive(p, e)
		switch {
		case hdr.Typeflag == tar.TypeDir || p == ".":
			if alive {
				return em.ensureDir(p)
			}
			return nil
		case hdr.Typeflag == tar.TypeLink:
			if !alive || em.carried[seq] {
				return nil
			}
			src := pl.linkSrc[seq]
			target, ok := em.written[src]
			if !ok {
				return bad("hard link %q: its target was not written", hdr.Name)
			}
			if err := em.ensureDir(parent(p)); err != nil {
				return err
			}
			o := outHeader(hdr, p)
			o.Linkname = aciPath(target)
			return em.write(o, nil)
		default:
			name := p
			if !alive {
				carrier, ok := pl.carrierOf[seq]
				if !ok {
					return nil
				}
				name = pl.linkPath[carrier]
				em.carried[carrier] = true
			}
			if err := em.ensureDir(parent(name)); err != nil {
				return err
			}
			if _, shared := pl.srcPath[seq]; shared {
				em.written[seq] = name
			}
			return em.write(outHeader(hdr, name), tr)
		}
	})
	return err
}
