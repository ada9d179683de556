package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rktng/rkt/pkg/config"
	"github.com/rktng/rkt/pkg/ociconv"
	"github.com/rktng/rkt/store"
)

// Errors of docker:// and oci: fetches, matched with errors.Is.
var (
	// ErrRegistryAuth: the registry refused access (401/403).
	ErrRegistryAuth = errors.New("registry refused access")
	// ErrBadReference: a docker:// or oci: reference that does not parse.
	ErrBadReference = errors.New("bad image reference")
)

// DockerConfig is what docker:// fetches need beyond the rest of Config:
// registry credentials (auth.d, rktKind dockerAuth, read by pkg/config)
// and mirrors (docker.d, rktKind dockerMirrors).
type DockerConfig struct {
	// Credentials returns the credentials for a registry host
	// ("127.0.0.1:5000", "index.docker.io"); ok is false when auth.d has
	// none.
	Credentials func(registry string) (creds config.RegistryCredentials, ok bool)
	// Mirrors returns the hosts to try, in order, before a registry
	// host itself (docker.d, read by pkg/config); nil for none.
	Mirrors func(registry string) []string
}

// mirrorsOf returns the mirrors configured for registry host reg.
func (c DockerConfig) mirrorsOf(reg string) []string {
	if c.Mirrors == nil {
		return nil
	}
	return c.Mirrors(reg)
}

// fetchContainerImage fetches docker:// and oci: references, converting
// them to ACIs with pkg/ociconv.
func (f *Fetcher) fetchContainerImage(ctx context.Context, ref string) (string, error) {
	if p, ok := strings.CutPrefix(ref, "oci:"); ok {
		return f.fetchOCILayout(ctx, ref, p)
	}
	return f.fetchDocker(ctx, ref, strings.TrimPrefix(ref, "docker://"))
}

// dockerKey is the key under which the store's remote table remembers a
// docker:// or oci: reference: the reference in its canonical form, so
// that "busybox" and "index.docker.io/library/busybox:latest" share it.
// Its ETag is the digest the reference resolved to.
func dockerKey(ref name.Reference) string { return "docker://" + ref.Name() }

func (f *Fetcher) fetchDocker(ctx context.Context, orig, s string) (string, error) {
	var nameOpts []name.Option
	if f.cfg.InsecureAllowHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(s, nameOpts...)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", orig, ErrBadReference, err)
	}
	_, byDigest := ref.(name.Digest)
	// Docker images carry no appc signature. Pulled by digest, the digest
	// is the proof (the registry's answers are checked against it);
	// pulled by tag, nothing proves what the tag names.
	if !byDigest && !f.cfg.InsecureSkipVerify {
		return "", fmt.Errorf("%s: %w: Docker images carry no signature (pull by digest, NAME@sha256:..., or use --insecure-options=image)", orig, ErrUnsigned)
	}
	key := dockerKey(ref)
	cached, cerr := f.cfg.Store.Remote(key)
	haveCached := cerr == nil
	switch f.cfg.PullPolicy {
	case PullNever:
		if haveCached {
			return cached.ImageID, nil
		}
		return "", fmt.Errorf("%s: %w (pull policy is never)", orig, ErrNotInStore)
	case PullNew:
		if haveCached {
			return cached.ImageID, nil
		}
	}

	var lastErr error
	for _, r := range f.mirrorRefs(ref) {
		id, err := f.pullDocker(ctx, orig, ref, r, key, cached, haveCached)
		if err == nil {
			return id, nil
		}
		lastErr = err
		// A refusal or a bad image is final; another mirror does not make
		// it trusted. Only an unreachable or failing mirror moves on.
		if r.Context().RegistryStr() == ref.Context().RegistryStr() || isFinal(err) {
			return "", err
		}
		f.debugf("%s: mirror %s failed: %v", orig, r.Context().RegistryStr(), err)
	}
	return "", lastErr
}

func isFinal(err error) bool {
	return isRefusal(err) || errors.Is(err, ociconv.ErrBadImage) || errors.Is(err, context.Canceled)
}

// mirrorRefs is ref at each mirror of its registry, then ref itself.
func (f *Fetcher) mirrorRefs(ref name.Reference) []name.Reference {
	reg := ref.Context().RegistryStr()
	var refs []name.Reference
	for _, m := range f.cfg.Docker.mirrorsOf(reg) {
		var opts []name.Option
		if f.cfg.InsecureAllowHTTP {
			opts = append(opts, name.Insecure)
		}
		repo, err := name.NewRepository(m+"/"+ref.Context().RepositoryStr(), opts...)
		if err != nil {
			f.debugf("mirror %q of %s: %v", m, reg, err)
			continue
		}
		switch r := ref.(type) {
		case name.Digest:
			refs = append(refs, repo.Digest(r.DigestStr()))
		case name.Tag:
			refs = append(refs, repo.Tag(r.TagStr()))
		}
	}
	return append(refs, ref)
}

// pullDocker fetches ref from the registry (or mirror) of at and imports
// the converted image. orig and ref name the image; at is where it is
// fetched from.
func (f *Fetcher) pullDocker(ctx context.Context, orig string, ref, at name.Reference, key string, cached store.Remote, haveCached bool) (string, error) {
	host := at.Context().RegistryStr()
	guard := &schemeGuard{base: f.client.Transport, allowHTTP: f.cfg.InsecureAllowHTTP}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(guard),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		remote.WithUserAgent("rkt"),
	}
	hasCreds := false
	if c := f.cfg.Docker.Credentials; c != nil {
		if cr, ok := c(host); ok {
			opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: cr.User, Password: cr.Password,
				IdentityToken: cr.IdentityToken, RegistryToken: cr.RegistryToken})))
			hasCreds = true
		}
	}
	explain := func(err error) error { return f.registryError(orig, host, hasCreds, guard, err) }

	if f.cfg.PullPolicy == PullUpdate && haveCached {
		// A HEAD costs one round trip; an unchanged digest means the image
		// in the store is the one the reference names today.
		if d, err := remote.Head(at, opts...); err == nil && d.Digest.String() == cached.ETag {
			f.debugf("%s: unchanged (%s)", orig, d.Digest)
			return cached.ImageID, nil
		}
	}
	desc, err := remote.Get(at, opts...)
	if err != nil {
		return "", explain(err)
	}
	if desc.MediaType == ggcrtypes.DockerManifestSchema1 || desc.MediaType == ggcrtypes.DockerManifestSchema1Signed {
		return "", fmt.Errorf("%s: %w: Docker schema 1 manifests are not supported (the image must be pushed again with a current Docker or tool)", orig, ociconv.ErrBadImage)
	}
	img, err := desc.Image()
	if err != nil {
		return "", explain(err)
	}
	manifestDigest, err := img.Digest()
	if err != nil {
		return "", explain(err)
	}
	src := ociconv.Source{
		Registry:   ref.Context().RegistryStr(),
		Repository: ref.Context().RepositoryStr(),
		Digest:     manifestDigest.String(),
		Original:   ref.Name(),
	}
	if t, ok := ref.(name.Tag); ok {
		src.Tag = t.TagStr()
	}
	rem := &store.Remote{URL: key, ETag: desc.Digest.String(), DownloadTime: f.cfg.Now()}
	id, err := f.convertAndImport(ctx, orig, img, src, rem)
	if err != nil {
		return "", explain(err)
	}
	return id, nil
}

// registryError turns go-containerregistry's errors into one line a user
// can act on.
func (f *Fetcher) registryError(orig, host string, hasCreds bool, guard *schemeGuard, err error) error {
	if guard.refusedHTTP.Load() && !guard.httpsOK.Load() {
		// go-containerregistry tried HTTPS, then HTTP, which the guard
		// refused: the HTTPS failure is the one to tell, unless it was the
		// server answering in plain HTTP.
		herr := guard.httpsError()
		var rhe tls.RecordHeaderError
		if herr == nil || errors.As(herr, &rhe) || strings.Contains(herr.Error(), "HTTP response to HTTPS client") {
			return fmt.Errorf("%s: registry %s speaks plain HTTP: %w", orig, host, ErrInsecureHTTP)
		}
		return fmt.Errorf("%s: registry %s: %w", orig, host, oneLine(herr))
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint := "no dockerAuth credentials for " + host + " in any auth.d"
			if hasCreds {
				hint = "the dockerAuth credentials in auth.d for " + host + " were refused"
			}
			return fmt.Errorf("%s: %w: %d %s (%s)", orig, ErrRegistryAuth, te.StatusCode, http.StatusText(te.StatusCode), hint)
		case http.StatusNotFound:
			return fmt.Errorf("%s: not found in registry %s", orig, host)
		}
	}
	if isFinal(err) || errors.Is(err, ErrUnsigned) {
		return fmt.Errorf("%s: %w", orig, err)
	}
	return fmt.Errorf("%s: %w", orig, oneLine(err))
}

// oneLine keeps a wrapped error's chain but folds newlines that some
// registry errors carry.
func oneLine(err error) error {
	if !strings.Contains(err.Error(), "\n") {
		return err
	}
	return &foldedError{err}
}

type foldedError struct{ error }

func (e *foldedError) Error() string { return strings.Join(strings.Fields(e.error.Error()), " ") }
func (e *foldedError) Unwrap() error { return e.error }

// schemeGuard refuses plain HTTP unless allowed. go-containerregistry
// falls back to HTTP by itself for loopback and private addresses; rkt
// lets nothing go unencrypted without --insecure-options=http.
type schemeGuard struct {
	base        http.RoundTripper
	allowHTTP   bool
	refusedHTTP atomic.Bool
	httpsOK     atomic.Bool

	mu       sync.Mutex
	httpsErr error // the last HTTPS request's failure
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP {
		g.refusedHTTP.Store(true)
		return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrInsecureHTTP)
	}
	resp, err := g.base.RoundTrip(req)
	if req.URL.Scheme == "https" {
		if err == nil {
			g.httpsOK.Store(true)
		} else {
			g.mu.Lock()
			g.httpsErr = err
			g.mu.Unlock()
		}
	}
	return resp, err
}

func (g *schemeGuard) httpsError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.httpsErr
}

// convertAndImport streams the converted image into the store. Layers go
// through a progress line (on a terminal) as they download during the
// conversion's first pass.
func (f *Fetcher) convertAndImport(ctx context.Context, orig string, img v1.Image, src ociconv.Source, rem *store.Remote) (string, error) {
	spool, err := os.MkdirTemp(filepath.Join(f.cfg.Store.Dir(), "tmp"), "ociconv-")
	if err != nil {
		return "", fmt.Errorf("convert: %w", err)
	}
	defer os.RemoveAll(spool)
	if f.cfg.Progress != nil {
		pimg, p, err := withProgress(img, f.cfg.Progress, orig)
		if err != nil {
			return "", err
		}
		defer p.done()
		img = pimg
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	convErr := make(chan error, 1)
	go func() {
		_, err := ociconv.Convert(ctx, img, src, ociconv.Options{TempDir: spool}, pw)
		pw.CloseWithError(err)
		convErr <- err
	}()
	info, ierr := f.cfg.Store.Import(ctx, pr, store.ImportOptions{SourceURL: rem.URL, Remote: rem})
	// Unblock the converter if the store stopped reading early.
	pr.CloseWithError(errStoreStopped)
	cerr := <-convErr
	switch {
	case cerr != nil && !errors.Is(cerr, errStoreStopped):
		// The conversion's failure is the cause; the store only saw a
		// stream cut short. Should it have committed anyway, undo that.
		if ierr == nil {
			_ = f.cfg.Store.RemoveImage(info.ID)
		}
		return "", cerr
	case ierr != nil:
		return "", ierr
	case cerr != nil:
		_ = f.cfg.Store.RemoveImage(info.ID)
		return "", errors.New("the store stopped reading the converted image before its end")
	}
	return info.ID, nil
}

// errStoreStopped is what the converter sees when the store returned
// before reading the whole ACI (having refused it, usually).
var errStoreStopped = errors.New("store stopped reading")

// progressImage reports the compressed bytes its layers deliver.
type progressImage struct {
	v1.Image
	lp *lockedProgress
}

func withProgress(img v1.Image, w io.Writer, label string) (v1.Image, *progress, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, nil, err
		}
		total += n
	}
	p := newProgress(w, label, total)
	return &progressImage{Image: img, lp: &lockedProgress{p: p}}, p, nil
}

func (pi *progressImage) Layers() ([]v1.Layer, error) {
	layers, err := pi.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(layers))
	for i, l := range layers {
		out[i] = &progressLayer{Layer: l, p: pi.lp}
	}
	return out, nil
}

type progressLayer struct {
	v1.Layer
	p       *lockedProgress
	counted atomic.Bool
}

// Compressed counts the first read of the layer only: the converter reads
// each layer once into its spool.
func (l *progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil || l.counted.Swap(true) {
		return rc, err
	}
	return &teeReadCloser{Reader: io.TeeReader(rc, l.p), Closer: rc}, nil
}

// lockedProgress serialises the layers' counts: the converter reads
// several layers at once.
type lockedProgress struct {
	mu sync.Mutex
	p  *progress
}

func (l *lockedProgress) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.Write(b)
}

type teeReadCloser struct {
	io.Reader
	io.Closer
}

// fetchOCILayout converts an image of an OCI image layout directory:
// oci:PATH, oci:PATH:TAG (the org.opencontainers.image.ref.name
// annotation) or oci:PATH@sha256:....
func (f *Fetcher) fetchOCILayout(ctx context.Context, orig, s string) (string, error) {
	dir, tag, digest := splitLayoutRef(s)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	if digest == "" && !f.cfg.InsecureSkipVerify {
		return "", fmt.Errorf("%s: %w: OCI images carry no signature (name the image by digest, oci:PATH@sha256:..., or use --insecure-options=image)", orig, ErrUnsigned)
	}
	key := "oci:" + abs
	switch {
	case digest != "":
		key += "@" + digest
	case tag != "":
		key += ":" + tag
	}
	cached, cerr := f.cfg.Store.Remote(key)
	if f.cfg.PullPolicy == PullNever {
		if cerr == nil {
			return cached.ImageID, nil
		}
		return "", fmt.Errorf("%s: %w (pull policy is never)", orig, ErrNotInStore)
	}
	p, err := layout.FromPath(abs)
	if err != nil {
		return "", fmt.Errorf("%s: not an OCI image layout: %w", orig, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	desc, err := pickLayoutManifest(idx, tag, digest)
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	// Reading the layout's index is cheap; converting is not. The same
	// digest as last time means the stored image is still the one named.
	if cerr == nil && cached.ETag == desc.Digest.String() {
		return cached.ImageID, nil
	}
	img, err := layoutImage(idx, desc)
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	if digest != "" {
		// Named by digest: the digest is the proof, so check the manifest
		// chain down to every blob rather than trusting the files.
		if err := checkManifestDigest(idx, desc, img); err != nil {
			return "", fmt.Errorf("%s: %w", orig, err)
		}
		img = &verifiedImage{Image: img}
	}
	manifestDigest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	base := filepath.Base(abs)
	aciName, err := types.SanitizeACIdentifier(base)
	if err != nil {
		return "", fmt.Errorf("%s: cannot make an image name of %q: %v", orig, base, err)
	}
	src := ociconv.Source{Name: aciName, Tag: tag, Digest: manifestDigest.String(), LayoutPath: abs}
	if src.Tag == "" && digest == "" {
		src.Tag = desc.Annotations["org.opencontainers.image.ref.name"]
	}
	rem := &store.Remote{URL: key, ETag: desc.Digest.String(), DownloadTime: f.cfg.Now()}
	id, err := f.convertAndImport(ctx, orig, img, src, rem)
	if err != nil {
		return "", fmt.Errorf("%s: %w", orig, err)
	}
	return id, nil
}

// splitLayoutRef splits PATH[:TAG|@DIGEST]. A path that exists as a
// directory is taken whole, so a directory named "a:b" still works.
func splitLayoutRef(s string) (dir, tag, digest string) {
	if st, err := os.Stat(s); err == nil && st.IsDir() {
		return s, "", ""
	}
	if i := strings.LastIndex(s, "@"); i > 0 && strings.Contains(s[i:], ":") {
		return s[:i], "", s[i+1:]
	}
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[i:], "/") {
		return s[:i], s[i+1:], ""
	}
	return s, "", ""
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

// pickLayoutManifest finds the descriptor named by tag or digest, or the
// only one when neither is given.
func pickLayoutManifest(idx v1.ImageIndex, tag, digest string) (v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	var tags []string
	for _, d := range im.Manifests {
		rn := d.Annotations[refNameAnnotation]
		if rn != "" {
			tags = append(tags, rn)
		}
		switch {
		case digest != "" && d.Digest.String() == digest:
			return d, nil
		case tag != "" && (rn == tag || strings.HasSuffix(rn, ":"+tag)):
			return d, nil
		}
	}
	sort.Strings(tags)
	switch {
	case digest != "":
		return v1.Descriptor{}, fmt.Errorf("no manifest with digest %s in the layout", digest)
	case tag != "":
		return v1.Descriptor{}, fmt.Errorf("no image tagged %q in the layout (tags: %s)", tag, strings.Join(tags, ", "))
	case len(im.Manifests) == 1:
		return im.Manifests[0], nil
	case len(im.Manifests) == 0:
		return v1.Descriptor{}, errors.New("the layout holds no image")
	}
	return v1.Descriptor{}, fmt.Errorf("the layout holds %d images: name one with oci:PATH:TAG (tags: %s)", len(im.Manifests), strings.Join(tags, ", "))
}

// layoutImage opens desc, choosing this machine's platform in an index.
func layoutImage(idx v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return idx.Image(desc.Digest)
	}
	child, err := idx.ImageIndex(desc.Digest)
	if err != nil {
		return nil, err
	}
	im, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH && d.MediaType.IsImage() {
			return child.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no linux/%s image in index %s", runtime.GOARCH, desc.Digest)
}

// checkManifestDigest checks that the manifest (and the index between,
// if desc is one) hash to the digests that name them.
func checkManifestDigest(idx v1.ImageIndex, desc v1.Descriptor, img v1.Image) error {
	if desc.MediaType.IsIndex() {
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return err
		}
		raw, err := child.RawManifest()
		if err != nil {
			return err
		}
		if err := checkBlob(raw, desc.Digest, "index"); err != nil {
			return err
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	want, err := img.Digest()
	if err != nil {
		return err
	}
	if !desc.MediaType.IsIndex() {
		want = desc.Digest
	}
	return checkBlob(raw, want, "manifest")
}

func checkBlob(raw []byte, want v1.Hash, what string) error {
	sum := sha256.Sum256(raw)
	if want.Algorithm != "sha256" || want.Hex != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("%w: %s does not match its digest %s", ociconv.ErrBadImage, what, want)
	}
	return nil
}

// verifiedImage checks, for images named by digest, that the config and
// every layer blob match the digests the (already verified) manifest
// lists; a layout on disk is otherwise taken at its word.
type verifiedImage struct{ v1.Image }

func (vi *verifiedImage) ConfigFile() (*v1.ConfigFile, error) {
	raw, err := vi.Image.RawConfigFile()
	if err != nil {
		return nil, err
	}
	want, err := vi.Image.ConfigName()
	if err != nil {
		return nil, err
	}
	if err := checkBlob(raw, want, "config"); err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(raw))
}

func (vi *verifiedImage) Layers() ([]v1.Layer, error) {
	layers, err := vi.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(layers))
	for i, l := range layers {
		out[i] = &verifiedLayer{Layer: l}
	}
	return out, nil
}

type verifiedLayer struct{ v1.Layer }

// Compressed hashes the whole blob before handing it out: a layout is a
// local directory, so reading a layer twice is cheap, and a tampered blob
// is then refused as such rather than as a decompression error.
func (l *verifiedLayer) Compressed() (io.ReadCloser, error) {
	want, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	if want.Algorithm != "sha256" {
		return nil, fmt.Errorf("%w: layer digest %s: unsupported algorithm", ociconv.ErrBadImage, want)
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(h, rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(h.Sum(nil)) != want.Hex {
		return nil, fmt.Errorf("%w: layer blob does not match its digest %s", ociconv.ErrBadImage, want)
	}
	return l.Layer.Compressed()
}
