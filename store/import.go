package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appc/spec/schema"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ImportOptions describe where an image came from and what it must be.
type ImportOptions struct {
	// SourceURL is recorded in the index (a file path or URL).
	SourceURL string
	// ExpectedID, when set, must equal the computed image ID (a full ID).
	ExpectedID string
	// Remote, when set, is recorded for Remote.URL in the same transaction
	// as the image (its ImageID is filled in).
	Remote *Remote
	// Latest marks an image fetched by name without a version.
	Latest bool
	// Progress, when set, gets a copy of every byte ImportFile reads
	// (not of a file it finds already imported).
	Progress io.Writer
	// Check, when set, vouches for the image once the store has read and
	// hashed all of it, before anything is committed: its error refuses
	// the image, and nothing is stored. ImportFile reads a file it has
	// imported before again when Check is set.
	Check func(ImportedStream) error
	// RawHash, when set, is computed over an uncompressed image (whose
	// bytes as received are the tar) beside the image ID's SHA-512, on
	// the same buffers, and given to Check: a signature over the image
	// then needs no pass of its own. SHA-512 is the image ID's own hash
	// and costs nothing more. Compressed images are not hashed again.
	RawHash crypto.Hash
}

// ImportedStream is what ImportOptions.Check learns of the image it is
// asked to vouch for.
type ImportedStream struct {
	// Compression is the format the image came in.
	Compression Compression
	// RawHashState is the marshaled (encoding.BinaryMarshaler), unfinished
	// state of ImportOptions.RawHash over the image as received; nil
	// unless the image is uncompressed and RawHash was set.
	RawHashState []byte
	// OpenTar reads the uncompressed tar again.
	OpenTar func() (io.ReadCloser, error)
}

// maxManifestSize bounds how much of a "manifest" entry is read.
const maxManifestSize = 16 << 20

// chunkSize is the unit the decompressor hands to the hash and the writer:
// large enough to keep hand-offs few, small enough that the hash starts
// early and has little left to do when the last byte arrives.
const chunkSize = 256 << 10

// Import reads an ACI (plain tar, or gzip, bzip2, xz or zstd compressed,
// detected by content), checks that it is a well-formed tar to its end with
// a valid manifest, and stores it. Either the blob and its index row both
// exist afterwards, or neither does and nothing is left in cas/tmp.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImageInfo, error) {
	return s.importStream(ctx, r, opts, nil)
}

// fileRecord is what ImportFile remembers about a file it imported.
type fileRecord struct {
	ImageID string `json:"imageID"`
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
	CtimeNs int64  `json:"ctimeNs"`
}

type fileKey struct {
	key []byte
	rec fileRecord
}

// ImportFile imports the ACI at path. It remembers the file's device,
// inode, size and modification (and change) times, so importing the same
// unchanged file again costs a stat and one index lookup, not a hash.
func (s *Store) ImportFile(ctx context.Context, p string, opts ImportOptions) (ImageInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("import %s: %w", p, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ImageInfo{}, fmt.Errorf("import %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return ImageInfo{}, fmt.Errorf("import %s: not a regular file", p)
	}
	abs, _ := filepath.Abs(p)
	fk := &fileKey{
		key: []byte(fmt.Sprintf("%d:%d", st.Dev, st.Ino)),
		rec: fileRecord{Path: abs, Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano()},
	}
	var hit ImageInfo
	found := false
	err = s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFiles)
		if b == nil {
			return nil
		}
		v := b.Get(fk.key)
		if v == nil {
			return nil
		}
		var rec fileRecord
		if json.Unmarshal(v, &rec) != nil {
			return nil
		}
		if rec.Size != fk.rec.Size || rec.MtimeNs != fk.rec.MtimeNs || rec.CtimeNs != fk.rec.CtimeNs {
			return nil
		}
		if opts.ExpectedID != "" && opts.ExpectedID != rec.ImageID {
			return nil
		}
		info, err := getImage(tx, rec.ImageID)
		if err != nil {
			return nil
		}
		hit, found = info, true
		return nil
	})
	if err != nil {
		return ImageInfo{}, fmt.Errorf("import %s: %w", p, err)
	}
	if found && opts.Check == nil {
		return hit, nil
	}
	if opts.SourceURL == "" {
		opts.SourceURL = abs
	}
	var r io.Reader = f
	if opts.Progress != nil {
		r = io.TeeReader(f, opts.Progress)
	}
	info, err := s.importStream(ctx, r, opts, fk)
	if err != nil {
		return info, fmt.Errorf("import %s: %w", p, err)
	}
	return info, nil
}

// Compression names the detected format of an image stream.
type Compression string

// Formats Import recognises.
const (
	CompressionNone  Compression = "none"
	CompressionGzip  Compression = "gzip"
	CompressionBzip2 Compression = "bzip2"
	CompressionXz    Compression = "xz"
	CompressionZstd  Compression = "zstd"
)

// DetectCompression tells the format from the first bytes of a stream.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return CompressionGzip
	case bytes.HasPrefix(head, []byte("BZh")):
		return CompressionBzip2
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return CompressionXz
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return CompressionZstd
	}
	return CompressionNone
}

// decompressor wraps br by its detected format. close releases decoder
// resources (zstd runs goroutines).
func decompressor(br *bufio.Reader, src io.Reader) (io.Reader, Compression, func(), error) {
	head, _ := br.Peek(6)
	c := DetectCompression(head)
	nop := func() {}
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, nop, fmt.Errorf("gzip header: %w", err)
		}
		// One member only: a gzip stream with trailing garbage is not an ACI.
		return zr, c, func() { zr.Close() }, nil
	case CompressionBzip2:
		return bzip2.NewReader(br), c, nop, nil
	case CompressionXz:
		r, err := newXzReader(br)
		if err != nil {
			return nil, c, nop, fmt.Errorf("xz header: %w", err)
		}
		return r, c, nop, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, c, nop, fmt.Errorf("zstd header: %w", err)
		}
		return zr, c, zr.Close, nil
	}
	return &unbuffered{br: br, src: src}, c, nop, nil
}

// unbuffered reads an uncompressed image: what the bufio.Reader already
// holds (the peeked header), then straight from the source into the
// caller's chunk, without a copy through the bufio.Reader's buffer.
type unbuffered struct {
	br  *bufio.Reader
	src io.Reader
}

func (u *unbuffered) Read(p []byte) (int, error) {
	if u.br.Buffered() > 0 {
		return u.br.Read(p)
	}
	return u.src.Read(p)
}

// chunk is one buffer of decompressed data. It goes to three goroutines
// at once (the tar check, the hash and the temp file; a fourth for
// ImportOptions.RawHash) so that the image ID's sha512, the slowest of
// them, is all that stands between the last byte received and the commit;
// the last to finish with it returns it.
type chunk struct {
	b    []byte
	refs atomic.Int32
}

// chunkBufs bounds the data in flight (chunkBufs * chunkSize bytes).
const chunkBufs = 8

// chunkPipe reads decompressed data on its own goroutine and hands each
// chunk to the tar check (through Read), to the hash, to the blob writer
// and, when asked, to a second hash.
type chunkPipe struct {
	full      chan *chunk
	toHash    chan *chunk
	toFile    chan *chunk
	toRaw     chan *chunk // nil without a second hash
	free      chan *chunk
	sinkCount int32 // how many goroutines besides the tar check get each chunk
	err       error // set by the producer before closing its channels
	cur       []byte
	held      *chunk
	pos       int64 // bytes read or skipped by the tar check
	ctx       context.Context
	cancel    context.CancelFunc
	sinks     sync.WaitGroup
	bw        *blobWriter
	// werr is the blob writer's failure; it cancels ctx, and Read then
	// reports the failure instead of the cancellation.
	werr atomic.Pointer[error]
}

func newChunkPipe(ctx context.Context, src io.Reader, bw *blobWriter, raw hash.Hash) *chunkPipe {
	p := &chunkPipe{
		full: make(chan *chunk, chunkBufs), toHash: make(chan *chunk, chunkBufs),
		toFile: make(chan *chunk, chunkBufs), free: make(chan *chunk, chunkBufs), bw: bw, sinkCount: 2,
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	for i := 0; i < chunkBufs; i++ {
		p.free <- &chunk{b: make([]byte, chunkSize)}
	}
	if raw != nil {
		p.toRaw = make(chan *chunk, chunkBufs)
		p.sinkCount++
		p.sinks.Add(1)
		go func() {
			defer p.sinks.Done()
			for c := range p.toRaw {
				raw.Write(c.b)
				p.release(c)
			}
		}()
	}
	p.sinks.Add(2)
	go func() {
		defer p.sinks.Done()
		for c := range p.toHash {
			bw.h.Write(c.b)
			p.release(c)
		}
	}()
	go func() {
		defer p.sinks.Done()
		for c := range p.toFile {
			if p.werr.Load() == nil {
				if err := bw.write(c.b); err != nil {
					p.werr.Store(&err)
					p.cancel()
				}
			}
			p.release(c)
		}
	}()
	go p.produce(src)
	return p
}

func (p *chunkPipe) release(c *chunk) {
	// Never blocks: free holds every chunk.
	if c.refs.Add(-1) == 0 {
		p.free <- c
	}
}

func (p *chunkPipe) produce(src io.Reader) {
	defer func() {
		close(p.full)
		close(p.toHash)
		close(p.toFile)
		if p.toRaw != nil {
			close(p.toRaw)
		}
	}()
	for {
		// Checked first: select picks at random among ready cases, and a
		// free buffer must not win over a cancelled import.
		if err := p.ctx.Err(); err != nil {
			p.err = err
			return
		}
		var c *chunk
		select {
		case c = <-p.free:
		case <-p.ctx.Done():
			p.err = p.ctx.Err()
			return
		}
		// Not io.ReadFull: it would turn a decoder's own
		// ErrUnexpectedEOF (a truncated stream) into a clean short read.
		buf := c.b[:cap(c.b)]
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			c.b = buf[:n]
			c.refs.Store(p.sinkCount + 1)
			// None of these blocks: each channel holds every chunk.
			p.full <- c
			p.toHash <- c
			p.toFile <- c
			if p.toRaw != nil {
				p.toRaw <- c
			}
		} else {
			p.free <- c
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			p.err = &decodeError{err}
			return
		}
	}
}

// failure is the blob writer's error if it failed, else err.
func (p *chunkPipe) failure(err error) error {
	if werr := p.werr.Load(); werr != nil {
		return &writeError{*werr}
	}
	return err
}

// next moves to the next chunk once the current one is used up.
func (p *chunkPipe) next() error {
	if p.held != nil {
		p.release(p.held)
		p.held = nil
	}
	c, ok := <-p.full
	if !ok {
		if p.err != nil {
			return p.failure(p.err)
		}
		return io.EOF
	}
	p.cur, p.held = c.b, c
	if err := p.ctx.Err(); err != nil {
		return p.failure(err)
	}
	return nil
}

func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if err := p.next(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	p.pos += int64(n)
	return n, nil
}

// Seek lets archive/tar skip file contents instead of copying them out
// (the hash and the temp file get them all the same). Only what tar asks
// for is supported: io.SeekCurrent, forward. Past the end it stops at the
// end, and tar's next read reports the truncation.
func (p *chunkPipe) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || off < 0 {
		return p.pos, errors.New("image stream: only forward seeks")
	}
	for off > 0 {
		if len(p.cur) == 0 {
			if err := p.next(); err == io.EOF {
				break
			} else if err != nil {
				return p.pos, err
			}
			continue
		}
		n := int64(len(p.cur))
		if n > off {
			n = off
		}
		p.cur = p.cur[n:]
		p.pos += n
		off -= n
	}
	return p.pos, nil
}

// wait waits, once Read has returned io.EOF, until the hash and the temp
// file have every byte, and returns the writer's failure if any.
func (p *chunkPipe) wait() error {
	p.sinks.Wait()
	return p.failure(nil)
}

// drain stops the producer and waits for every goroutine of the pipe,
// whatever state it is in, so that nothing writes to the temp file after.
func (p *chunkPipe) drain() {
	p.cancel()
	if p.held != nil {
		p.release(p.held)
		p.held = nil
	}
	for c := range p.full {
		p.release(c)
	}
	p.sinks.Wait()
}

// blobWriter writes chunks to the temp file and the hash, and starts disk
// writeback early so the final fsync has little left to do.
type blobWriter struct {
	f       *os.File
	h       hash.Hash
	n       int64
	flushed int64
}

func (w *blobWriter) write(c []byte) error {
	if _, err := w.f.Write(c); err != nil {
		return err
	}
	w.n += int64(len(c))
	if w.n-w.flushed >= 16<<20 {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.n-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.n
	}
	return nil
}

func (s *Store) importStream(ctx context.Context, r io.Reader, opts ImportOptions, fk *fileKey) (info ImageInfo, err error) {
	if opts.ExpectedID != "" && !validID(opts.ExpectedID) {
		return info, fmt.Errorf("expected image ID %q is not a sha512 image ID", opts.ExpectedID)
	}
	tmp, err := os.CreateTemp(s.tmpDir(), "import-*")
	if err != nil {
		return info, fmt.Errorf("create temp file: %w", err)
	}
	// Whatever happens, the temp file goes, unless it became the blob
	// (then its old name may already be someone else's temp file).
	renamed := false
	defer func() {
		tmp.Close()
		if !renamed {
			os.Remove(tmp.Name())
		}
	}()
	src := &sourceReader{r}
	br := bufio.NewReaderSize(src, 256<<10)
	dec, comp, closeDec, err := decompressor(br, src)
	if err != nil {
		return info, fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	defer closeDec()

	bw := &blobWriter{f: tmp, h: sha512.New()}
	var raw hash.Hash
	if comp == CompressionNone && opts.RawHash != 0 && opts.RawHash != crypto.SHA512 {
		if !opts.RawHash.Available() {
			return info, fmt.Errorf("hash %v is not available", opts.RawHash)
		}
		raw = opts.RawHash.New()
	}
	pipe := newChunkPipe(ctx, dec, bw, raw)
	defer pipe.drain()
	im, manifest, err := checkACI(pipe, comp)
	if err != nil {
		return info, err
	}
	// Bytes after the end-of-archive marker (block padding) are part of
	// the blob too.
	if _, err := io.Copy(io.Discard, pipe); err != nil {
		return info, tarErr(comp, err, afterEnd)
	}
	if err := pipe.wait(); err != nil {
		return info, tarErr(comp, err, afterEnd)
	}
	if opts.Check != nil {
		st := ImportedStream{Compression: comp}
		if comp == CompressionNone && opts.RawHash != 0 {
			h := raw
			if opts.RawHash == crypto.SHA512 {
				h = bw.h
			}
			if st.RawHashState, err = h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
				return info, fmt.Errorf("image hash state: %w", err)
			}
		}
		name := tmp.Name()
		st.OpenTar = func() (io.ReadCloser, error) { return os.Open(name) }
		if err := opts.Check(st); err != nil {
			return info, err
		}
	}
	if err := tmp.Sync(); err != nil {
		return info, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return info, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	id := idPrefix + hex.EncodeToString(bw.h.Sum(nil))
	if opts.ExpectedID != "" && opts.ExpectedID != id {
		return info, fmt.Errorf("%w: expected %s, content is %s", ErrIDMismatch, opts.ExpectedID, id)
	}
	labels := map[string]string{}
	for _, l := range im.Labels {
		labels[l.Name.String()] = l.Value
	}
	now := time.Now()
	info = ImageInfo{ID: id, Name: im.Name.String(), Labels: labels, ImportTime: now, LastUsed: now,
		Size: bw.n, SourceURL: opts.SourceURL, Latest: opts.Latest, Manifest: manifest}
	if opts.Remote != nil {
		info.ETag, info.CacheMaxAge = opts.Remote.ETag, opts.Remote.CacheMaxAge
	}
	dst := s.blobPath(id)
	err = s.update(func(tx *bolt.Tx) error {
		// Blobs change only under the index's write lock, so a row and
		// its blob appear and disappear together for every reader.
		if old, err := getImage(tx, id); err == nil {
			if _, serr := os.Stat(dst); serr == nil {
				info.ImportTime = old.ImportTime
				if info.SourceURL == "" {
					info.SourceURL = old.SourceURL
				}
				return s.finishRow(tx, info, opts, fk)
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return err
		}
		renamed = true
		if err := syncDir(filepath.Dir(dst)); err != nil {
			os.Remove(dst)
			return err
		}
		if err := s.finishRow(tx, info, opts, fk); err != nil {
			os.Remove(dst)
			return err
		}
		return nil
	})
	if err != nil {
		// A failed commit after the rename must not leave the blob.
		if _, gerr := s.Info(id); gerr != nil {
			os.Remove(dst)
		}
		return ImageInfo{}, fmt.Errorf("store image %s: %w", id, err)
	}
	return info, nil
}

func (s *Store) finishRow(tx *bolt.Tx, info ImageInfo, opts ImportOptions, fk *fileKey) error {
	if err := putImage(tx, info); err != nil {
		return err
	}
	if fk != nil {
		fk.rec.ImageID = info.ID
		v, _ := json.Marshal(fk.rec)
		if err := tx.Bucket(bucketFiles).Put(fk.key, v); err != nil {
			return err
		}
	}
	if opts.Remote != nil {
		rm := *opts.Remote
		rm.ImageID = info.ID
		if rm.URL == "" {
			rm.URL = opts.SourceURL
		}
		if rm.DownloadTime.IsZero() {
			rm.DownloadTime = time.Now()
		}
		return putRemote(tx, rm)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// decodeError is a failure of the decompressor, told apart from a broken
// tar inside a sound compressed stream.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// sourceError is a failure of the reader Import was given (a network
// error, say), as opposed to bad content.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// writeError is a failure to write the blob (a full disk, say): the
// store's trouble, not the image's.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// checkACI walks the whole tar: every header must parse, every entry must
// sit in the ACI layout without escaping it, the manifest must be a valid
// appc image manifest, and the archive must end with its end marker, so a
// tar cut at an entry boundary is refused too.
func checkACI(p *chunkPipe, comp Compression) (*schema.ImageManifest, []byte, error) {
	tr := tar.NewReader(p)
	var (
		im       *schema.ImageManifest
		manifest []byte
		last     string
		entryEnd int64
		seen     = map[string]byte{}
		links    = map[string]string{}
		rootfs   bool
	)
	entryErr := func(name string, format string, args ...any) error {
		return fmt.Errorf("%w: tar entry %q: %w", ErrInvalidImage, name, fmt.Errorf(format, args...))
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if p.pos-entryEnd < 512 {
				return nil, nil, fmt.Errorf("%w: tar is truncated: no end-of-archive marker after %s", ErrInvalidImage, describeLast(last))
			}
			break
		}
		if err != nil {
			return nil, nil, tarErr(comp, err, last)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, nil, entryErr(hdr.Name, "%w", err)
		}
		if name == "." {
			if hdr.Typeflag != tar.TypeDir {
				return nil, nil, entryErr(hdr.Name, "an entry without a name that is not a directory")
			}
			goto data
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			goto data
		case tar.TypeReg, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
			if isSparse(hdr) {
				return nil, nil, entryErr(hdr.Name, "sparse files are not supported in images")
			}
		default:
			return nil, nil, entryErr(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
		}
		switch {
		case name == "manifest":
			if hdr.Typeflag != tar.TypeReg {
				return nil, nil, entryErr(hdr.Name, "manifest is not a regular file")
			}
			if im != nil {
				return nil, nil, entryErr(hdr.Name, "second manifest")
			}
			if hdr.Size > maxManifestSize {
				return nil, nil, entryErr(hdr.Name, "manifest is %d bytes, over the %d limit", hdr.Size, maxManifestSize)
			}
			manifest, err = io.ReadAll(tr)
			if err != nil {
				return nil, nil, tarErr(comp, err, hdr.Name)
			}
			if im, err = parseImageManifest(manifest); err != nil {
				return nil, nil, err
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, manifest); err == nil {
				manifest = buf.Bytes()
			}
		case name == "rootfs":
			if hdr.Typeflag != tar.TypeDir {
				return nil, nil, entryErr(hdr.Name, "rootfs is not a directory")
			}
			rootfs = true
		case strings.HasPrefix(name, "rootfs/"):
			rootfs = true
			if err := checkEntry(name, hdr, seen, links); err != nil {
				return nil, nil, entryErr(hdr.Name, "%w", err)
			}
		default:
			return nil, nil, entryErr(hdr.Name, "outside the ACI layout (only manifest and rootfs/ belong in an ACI)")
		}
		seen[name] = hdr.Typeflag
		if hdr.Typeflag == tar.TypeSymlink {
			links[name] = hdr.Linkname
		} else {
			delete(links, name)
		}
	data:
		if hdr.Typeflag == tar.TypeReg && name != "manifest" {
			// The next tr.Next skips the contents by seeking (nothing
			// was read yet: the data starts at p.pos).
			entryEnd = (p.pos + hdr.Size + 511) &^ 511
		} else {
			if _, err := io.Copy(io.Discard, tr); err != nil {
				return nil, nil, tarErr(comp, err, hdr.Name)
			}
			entryEnd = (p.pos + 511) &^ 511
		}
		last = hdr.Name
	}
	if im == nil {
		return nil, nil, fmt.Errorf("%w: no manifest in the image", ErrInvalidImage)
	}
	if !rootfs {
		return nil, nil, fmt.Errorf("%w: no rootfs in the image", ErrInvalidImage)
	}
	return im, manifest, nil
}

// afterEnd stands for "last" once the tar's end marker was read.
const afterEnd = "\x00end"

func describeLast(last string) string {
	switch last {
	case "":
		return "the start"
	case afterEnd:
		return "the end-of-archive marker"
	}
	return fmt.Sprintf("entry %q", last)
}

// tarErr words a failure met while reading the image after entry last.
func tarErr(comp Compression, err error, last string) error {
	var we *writeError
	var de *decodeError
	var se *sourceError
	switch {
	case errors.As(err, &we):
		return fmt.Errorf("store blob: %w", we.err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &se):
		return fmt.Errorf("reading image after %s: %w", describeLast(last), se.err)
	case errors.As(err, &de):
		if errors.Is(de.err, io.ErrUnexpectedEOF) || errors.Is(de.err, io.EOF) {
			return fmt.Errorf("%w: %s stream ends early, after %s (truncated download?)", ErrInvalidImage, comp, describeLast(last))
		}
		return fmt.Errorf("%w: %s stream corrupt after %s: %v", ErrInvalidImage, comp, describeLast(last), de.err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: tar is truncated after %s", ErrInvalidImage, describeLast(last))
	case errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath):
		return fmt.Errorf("%w: corrupt tar header after %s: %v", ErrInvalidImage, describeLast(last), err)
	}
	return fmt.Errorf("%w: reading tar after %s: %v", ErrInvalidImage, describeLast(last), err)
}

// cleanEntryName normalises a tar entry name ("./rootfs/x/" → "rootfs/x")
// and refuses absolute names and any ".." component.
func cleanEntryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrUnsafePath)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: contains \"..\"", ErrUnsafePath)
		}
	}
	// "." (an archive made with `tar -C dir .` starts with "./") is
	// returned as is; callers skip it when it is a directory.
	return path.Clean(name), nil
}

// checkEntry refuses, from this tar alone, entries that would escape the
// rootfs: parents reached through a symlink pointing outside, and hard
// links to outside targets. Rendering checks again on the real files,
// which also catches symlinks coming from another layer.
func checkEntry(name string, hdr *tar.Header, seen map[string]byte, links map[string]string) error {
	if _, err := resolveLexical(path.Dir(name), links); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		target, err := cleanEntryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if !strings.HasPrefix(target, "rootfs/") {
			return fmt.Errorf("%w: hard link to %q outside rootfs", ErrUnsafePath, hdr.Linkname)
		}
		if _, err := resolveLexical(path.Dir(target), links); err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if t, ok := seen[target]; !ok || t == tar.TypeDir {
			return fmt.Errorf("hard link to %q, which is not an earlier file in the image", hdr.Linkname)
		}
	}
	return nil
}

// resolveLexical follows the symlinks of one tar (links, keyed by cleaned
// entry name) through dir, a path inside rootfs/, one component at a time
// as the kernel would, and fails if any step leaves rootfs.
func resolveLexical(dir string, links map[string]string) (string, error) {
	queue := strings.Split(strings.TrimPrefix(strings.TrimPrefix(dir, "rootfs"), "/"), "/")
	var resolved []string
	hops := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return "", fmt.Errorf("%w: %q leads outside the image", ErrUnsafePath, "/"+strings.TrimPrefix(dir, "rootfs/"))
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		cand := strings.Join(append(resolved, c), "/")
		target, ok := links["rootfs/"+cand]
		if !ok {
			resolved = append(resolved, c)
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%w: too many symlinks in %q", ErrUnsafePath, dir)
		}
		if strings.HasPrefix(target, "/") {
			return "", fmt.Errorf("%w: parent \"/%s\" is a symlink to %q, outside the image", ErrUnsafePath, cand, target)
		}
		// A relative target continues from the symlink's directory.
		queue = append(strings.Split(target, "/"), queue...)
	}
	return "rootfs/" + strings.Join(resolved, "/"), nil
}

// parseImageManifest validates a manifest against the appc schema, with an
// error that fits on one line.
func parseImageManifest(b []byte) (*schema.ImageManifest, error) {
	var probe any
	if err := json.Unmarshal(b, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: manifest is not valid JSON at byte %d: %v", ErrInvalidImage, se.Offset, se)
		}
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalidImage, err)
	}
	im := &schema.ImageManifest{}
	if err := json.Unmarshal(b, im); err != nil {
		return nil, fmt.Errorf("%w: manifest fails the appc schema: %s", ErrInvalidImage, strings.Join(strings.Fields(err.Error()), " "))
	}
	return im, nil
}

// isSparse tells a PAX sparse file, whose data is not one contiguous
// range of the tar (rendering copies each file's range directly).
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
