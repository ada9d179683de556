package fetch

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/rktng/rkt/pkg/keystore"
	"github.com/rktng/rkt/store"
	"github.com/ulikunitz/xz"
)

// errNameFound ends the manifest reader once it has what it wants.
var errNameFound = errors.New("manifest name found")

// checkedReader passes an image through to the store while checking its
// signature on the same bytes, and reads the manifest's name on the side.
// The store calls check once it has read and hashed the whole image and
// before it commits anything; check accepts the image only if the
// signature is good and its key is trusted for that name, so a refused
// image is never stored.
//
// When the image is uncompressed, the store computes the signature's hash
// beside the image ID's on its own buffers (ImportOptions.RawHash), and
// the check takes over that state: no copy of the image for the check,
// and no second hash at all when the signature was made with SHA-512, the
// image ID's own hash (as GnuPG signs with an RSA key).
type checkedReader struct {
	src      io.Reader
	trusted  *keystore.Trusted
	verifier *keystore.Verifier
	// want is the name the image must carry ("" when unknown, as for an
	// URL or a file).
	want string

	side     *io.PipeWriter
	sideDone bool
	nameCh   chan nameResult

	started bool // the first bytes were seen and the mode chosen
	shared  bool // the verifier takes the store's RawHash state
	eof     bool
	ended   bool // the verifier was finished or aborted
	err     error
	Signer  keystore.Signer
	Name    string
}

type nameResult struct {
	name string
	err  error
}

func newCheckedReader(src io.Reader, trusted *keystore.Trusted, sig []byte, want string) (*checkedReader, error) {
	v, err := trusted.NewVerifier(want, sig)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	c := &checkedReader{src: src, trusted: trusted, verifier: v, want: want, side: pw, nameCh: make(chan nameResult, 1)}
	go func() {
		name, err := manifestName(pr)
		if err == nil {
			pr.CloseWithError(errNameFound)
		} else {
			pr.CloseWithError(err)
		}
		c.nameCh <- nameResult{name, err}
	}()
	return c, nil
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.ended || c.eof {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n, err := c.src.Read(p)
	if n > 0 {
		if !c.started {
			c.started = true
			// The store detects the format from the same first bytes;
			// with fewer than it looks at, stay on the safe side.
			_, ok := c.verifier.SharedHash()
			c.shared = ok && n >= 6 && store.DetectCompression(p[:n]) == store.CompressionNone
		}
		if !c.shared {
			if _, werr := c.verifier.Write(p[:n]); werr != nil {
				c.fail(fmt.Errorf("check signature: %w", werr))
				return 0, c.err
			}
		}
		if !c.sideDone {
			if _, serr := c.side.Write(p[:n]); serr != nil {
				// The manifest reader is done (found or failed).
				c.sideDone = true
			}
		}
	}
	if err == io.EOF {
		c.eof = true
		c.side.Close()
		return n, io.EOF
	}
	if err != nil {
		c.fail(err)
		return n, err
	}
	return n, nil
}

func (c *checkedReader) fail(err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.err = err
	c.verifier.Abort(err)
	c.side.CloseWithError(err)
	<-c.nameCh
}

// check is the store's ImportOptions.Check: it decides, once the whole
// image has been read, whether it may be stored.
func (c *checkedReader) check(st store.ImportedStream) error {
	if c.ended {
		if c.err != nil {
			return c.err
		}
		return errors.New("signature check already ended")
	}
	if !c.eof {
		c.fail(errors.New("image not read to its end"))
		return c.err
	}
	c.ended = true
	nr := <-c.nameCh
	var signer keystore.Signer
	var err error
	switch {
	case !c.shared:
		signer, err = c.verifier.Finish()
	case st.Compression != store.CompressionNone || st.RawHashState == nil:
		// Cannot happen: both looked at the same first bytes.
		c.verifier.Abort(errors.New("image format changed"))
		err = fmt.Errorf("check signature: the store read a %s image without its hash, not an uncompressed one", st.Compression)
	default:
		signer, err = c.verifier.FinishShared(st.RawHashState, st.OpenTar)
	}
	if err != nil {
		c.err = err
		return err
	}
	c.Signer = signer
	if nr.err != nil {
		c.err = fmt.Errorf("%w: %v", store.ErrInvalidImage, nr.err)
		return c.err
	}
	c.Name = nr.name
	if c.want != "" && nr.name != c.want {
		c.err = fmt.Errorf("%w: the image is called %q, not %q as requested", ErrNameMismatch, nr.name, c.want)
		return c.err
	}
	if err := c.trusted.Vouches(signer.Fingerprint, nr.name); err != nil {
		c.err = err
		return err
	}
	return nil
}

// Close ends the side readers if the store stopped early.
func (c *checkedReader) Close() {
	if !c.ended {
		c.fail(errors.New("image not read to its end"))
	}
}

// manifestName reads an ACI (compressed or not) up to its manifest entry.
func manifestName(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	var dec io.Reader = br
	switch store.DetectCompression(head) {
	case store.CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", err
		}
		dec = zr
	case store.CompressionBzip2:
		dec = bzip2.NewReader(br)
	case store.CompressionXz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return "", err
		}
		dec = xr
	case store.CompressionZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return "", err
		}
		defer zr.Close()
		dec = zr
	}
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("no manifest in image")
		}
		if err != nil {
			return "", err
		}
		// The same test the store applies, so both read the same entry
		// (the store refuses an image with two).
		if path.Clean(hdr.Name) != "manifest" {
			continue
		}
		var m struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
			return "", fmt.Errorf("manifest: %v", err)
		}
		if m.Name == "" {
			return "", errors.New("manifest has no name")
		}
		return m.Name, nil
	}
}
