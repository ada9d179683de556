// Package fetch owns getting images into the store: local files, https://
// (and http:// when allowed) URLs, appc names found by discovery, and
// docker:// and oci: references. It applies the pull policy, HTTP caching
// (ETag, Cache-Control max-age), credentials, resumable downloads and
// progress, and checks each image's signature against the trusted keys
// before the store ever commits it.
package fetch

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/discovery"
	"github.com/rktng/rkt/pkg/keystore"
	"github.com/rktng/rkt/store"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrUnsigned: the image has no signature and image verification is on.
	ErrUnsigned = errors.New("image is not signed")
	// ErrNotInStore: pull policy "never" and the store has no match.
	ErrNotInStore = errors.New("image not in the store")
	// ErrInsecureHTTP: a plain HTTP URL without --insecure-options=http.
	ErrInsecureHTTP = errors.New("plain HTTP is refused (use --insecure-options=http to allow it)")
	// ErrNameMismatch: the image's manifest names another image than asked.
	ErrNameMismatch = errors.New("image name mismatch")
	// ErrContainerImagesUnsupported: docker:// and oci: are not handled.
	ErrContainerImagesUnsupported = errors.New("docker and OCI images are not supported yet")
)

// PullPolicy says when to go to the network for an image.
type PullPolicy string

const (
	// PullNew uses a matching stored image, fetching only when none is.
	PullNew PullPolicy = "new"
	// PullUpdate asks the server again unless the cached copy is still
	// fresh (max-age); an unchanged image (ETag) is not downloaded again.
	PullUpdate PullPolicy = "update"
	// PullNever uses only the store.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy checks a --pull-policy value.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case PullNew, PullUpdate, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("unknown pull policy %q (valid: new, update, never)", s)
}

// Config is everything a Fetcher acts on; the CLI fills it from flags.
type Config struct {
	Store    *store.Store
	Keystore *keystore.Keystore

	// InsecureSkipVerify accepts unsigned images and skips signature
	// checks (--insecure-options=image).
	InsecureSkipVerify bool
	// InsecureAllowHTTP allows plain http:// (--insecure-options=http).
	InsecureAllowHTTP bool
	// InsecureSkipTLSVerify accepts any certificate (tls).
	InsecureSkipTLSVerify bool
	// InsecureSkipPubKey trusts keys found by meta discovery for the
	// image's name even over plain HTTP, without asking (pubkey).
	InsecureSkipPubKey bool
	// TrustKeysFromHTTPS trusts (and stores) keys that meta discovery
	// finds over HTTPS for the image's name.
	TrustKeysFromHTTPS bool

	PullPolicy PullPolicy
	// SignatureFile, if set, is the signature of the (single) image
	// fetched, instead of IMAGE.asc.
	SignatureFile string
	// Auth gives per-domain credentials (auth.d); nil for none.
	Auth *Auth
	// Docker has the registry credentials and mirrors for docker://.
	Docker DockerConfig
	// DiscoveryPort, if not 0, is the port discovery requests go to.
	DiscoveryPort uint
	// StallTimeout ends a download that made no progress for this long
	// (it is then resumed); 0 means 60s.
	StallTimeout time.Duration

	// Progress receives a progress line for downloads (a terminal); nil
	// for none. Debug receives debug messages; nil for none.
	Progress io.Writer
	Debug    io.Writer
	// Log receives notices a user should see (keys trusted on the way).
	Log io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Fetcher gets images into the store.
type Fetcher struct {
	cfg    Config
	client *http.Client
	// depth guards against dependency cycles.
	depth int
}

// New returns a Fetcher for cfg.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("fetch: no store")
	}
	return newFetcher(cfg), nil
}

// NewKeyFetcher returns a Fetcher that only fetches keys (FetchKey,
// DiscoverKeys), for rkt trust; it needs no store.
func NewKeyFetcher(cfg Config) (*Fetcher, error) {
	return newFetcher(cfg), nil
}

func newFetcher(cfg Config) *Fetcher {
	if cfg.PullPolicy == "" {
		cfg.PullPolicy = PullNew
	}
	if cfg.Keystore == nil {
		cfg.Keystore = keystore.New("", "")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fetcher{cfg: cfg, client: newHTTPClient(&cfg)}
}

func (f *Fetcher) debugf(format string, args ...any) {
	if f.cfg.Debug != nil {
		fmt.Fprintf(f.cfg.Debug, format+"\n", args...)
	}
}

// Kind says what an image reference names.
type Kind int

// Image reference kinds.
const (
	KindFile Kind = iota
	KindURL
	KindName
	KindImageID
	KindContainer
)

// Classify tells what ref names: docker:// or oci: references, file:// or
// an existing file (or anything ending in .aci), http(s) URLs, image IDs,
// and otherwise an appc name.
func Classify(ref string) Kind {
	switch {
	case strings.HasPrefix(ref, "docker://"), strings.HasPrefix(ref, "oci:"):
		return KindContainer
	case strings.HasPrefix(ref, "file://"):
		return KindFile
	case strings.HasPrefix(ref, "https://"), strings.HasPrefix(ref, "http://"):
		return KindURL
	case strings.HasPrefix(ref, "sha512-"):
		return KindImageID
	}
	if st, err := os.Stat(ref); err == nil && !st.IsDir() {
		return KindFile
	}
	if strings.HasSuffix(ref, ".aci") || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") {
		return KindFile
	}
	return KindName
}

// Fetch gets the image ref into the store (or finds it there, as the pull
// policy says) and returns its ID. labels add to those written in ref
// ("name:version,label=value").
func (f *Fetcher) Fetch(ctx context.Context, ref string, labels types.Labels) (string, error) {
	switch Classify(ref) {
	case KindContainer:
		return f.fetchContainerImage(ctx, ref)
	case KindFile:
		p := strings.TrimPrefix(ref, "file://")
		return f.fetchFile(ctx, p)
	case KindURL:
		return f.fetchURL(ctx, ref, "", "")
	case KindImageID:
		id, err := f.cfg.Store.Resolve(ref)
		if err != nil {
			return "", err
		}
		return id, nil
	}
	name, refLabels, err := store.ParseImageRef(ref)
	if err != nil {
		return "", err
	}
	refLabels = append(refLabels, labels...)
	return f.fetchName(ctx, name, refLabels)
}

// fetchFile imports a local ACI, checking FILE.asc (or the given
// signature) first unless verification is off.
func (f *Fetcher) fetchFile(ctx context.Context, p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if f.cfg.InsecureSkipVerify {
		opts := store.ImportOptions{SourceURL: abs}
		if f.cfg.Progress != nil {
			if st, err := os.Stat(abs); err == nil {
				p := f.importProgress(p, st.Size())
				defer p.done()
				opts.Progress = p
			}
		}
		info, err := f.cfg.Store.ImportFile(ctx, abs, opts)
		if err != nil {
			return "", err
		}
		return f.afterImport(ctx, info)
	}
	// The image first: a missing image is the news, not its signature.
	file, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("open image: %w", err)
	}
	defer file.Close()
	sigPath := f.cfg.SignatureFile
	if sigPath == "" {
		sigPath = abs + ".asc"
	}
	sig, err := os.ReadFile(sigPath)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w: no signature at %s (use --signature=FILE, or --insecure-options=image to import it unverified)", p, ErrUnsigned, sigPath)
	}
	if err != nil {
		return "", fmt.Errorf("read signature: %w", err)
	}
	var r io.Reader = file
	if f.cfg.Progress != nil {
		if st, err := file.Stat(); err == nil {
			p := f.importProgress(p, st.Size())
			defer p.done()
			r = io.TeeReader(file, p)
		}
	}
	trusted, err := f.cfg.Keystore.Trusted()
	if err != nil {
		return "", err
	}
	info, err := f.importChecked(ctx, r, trusted, sig, "", store.ImportOptions{SourceURL: abs})
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return f.afterImport(ctx, info)
}

// importProgress is the progress line of a local image of size bytes.
func (f *Fetcher) importProgress(path string, size int64) *progress {
	p := newProgress(f.cfg.Progress, filepath.Base(path), size)
	p.verb = "Importing"
	return p
}

// importChecked streams r into the store through a signature check; see
// checkedReader.
func (f *Fetcher) importChecked(ctx context.Context, r io.Reader, trusted *keystore.Trusted, sig []byte, want string, opts store.ImportOptions) (store.ImageInfo, error) {
	cr, err := newCheckedReader(r, trusted, sig, want)
	if err != nil {
		return store.ImageInfo{}, err
	}
	defer cr.Close()
	opts.Check = cr.check
	if h, ok := cr.verifier.SharedHash(); ok {
		opts.RawHash = h
	}
	info, err := f.cfg.Store.Import(ctx, cr, opts)
	if err != nil {
		// The refusal, when it was one, is the clearer message.
		if cr.err != nil {
			return store.ImageInfo{}, cr.err
		}
		return store.ImageInfo{}, err
	}
	f.debugf("image %s signed by %s %v", info.Name, cr.Signer.Fingerprint, cr.Signer.UserIDs)
	if h, _ := cr.verifier.SharedHash(); cr.shared && h == crypto.SHA512 {
		f.debugf("signature checked against the image ID's SHA-512 (one pass over the image)")
	} else if cr.shared {
		f.debugf("signature's %v computed by the store beside the image ID", h)
	}
	return info, nil
}

// afterImport fetches the dependencies the store lacks, then returns id.
func (f *Fetcher) afterImport(ctx context.Context, info store.ImageInfo) (string, error) {
	m, err := f.cfg.Store.Manifest(info.ID)
	if err != nil {
		return "", err
	}
	if len(m.Dependencies) == 0 {
		return info.ID, nil
	}
	if f.depth > 16 {
		return "", fmt.Errorf("%s: dependencies nested too deep (a cycle?)", info.Name)
	}
	sub := &Fetcher{cfg: f.cfg, client: f.client, depth: f.depth + 1}
	sub.cfg.SignatureFile = ""
	if sub.cfg.PullPolicy == PullUpdate {
		sub.cfg.PullPolicy = PullNew
	}
	for _, d := range m.Dependencies {
		if d.ImageID != nil {
			if _, err := f.cfg.Store.Info(d.ImageID.String()); err == nil {
				continue
			}
		}
		if _, err := sub.fetchName(ctx, d.ImageName, d.Labels); err != nil {
			// The image itself is fine and stored; rendering will name
			// the missing dependency if it is still missing then.
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			f.logf("warning: %s: could not fetch dependency %s: %v", info.Name, describe(d.ImageName, d.Labels), err)
		}
	}
	return info.ID, nil
}

// fetchName handles an appc name: the store first unless the policy says
// update, discovery otherwise.
func (f *Fetcher) fetchName(ctx context.Context, name types.ACIdentifier, labels types.Labels) (string, error) {
	if f.cfg.PullPolicy != PullUpdate {
		id, err := f.cfg.Store.GetACI(name, labels)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		if f.cfg.PullPolicy == PullNever {
			return "", fmt.Errorf("%s: %w (pull policy is never)", describe(name, labels), ErrNotInStore)
		}
	}
	lm := map[string]string{}
	for _, l := range labels {
		lm[l.Name.String()] = l.Value
	}
	lm = discovery.DefaultLabels(lm)
	eps, err := discovery.DiscoverImage(ctx, f.discoveryConfig(), name.String(), lm)
	if errors.Is(err, discovery.ErrNotFound) {
		eps, err = f.simpleDiscovery(ctx, name, lm, err)
	}
	if err != nil {
		return "", err
	}
	var errs []string
	for _, ep := range eps {
		id, err := f.fetchURL(ctx, ep.ACI, ep.ASC, name.String())
		if err == nil {
			return id, nil
		}
		// A refusal is final: another mirror does not make it trusted.
		if isRefusal(err) {
			return "", err
		}
		errs = append(errs, err.Error())
	}
	return "", fmt.Errorf("%s: every discovered location failed: %s", name, strings.Join(errs, "; "))
}

// simpleDiscovery is the fallback when meta discovery found no template
// (metaErr): the image at appc's old simple discovery URL, if it is there.
func (f *Fetcher) simpleDiscovery(ctx context.Context, name types.ACIdentifier, labels map[string]string, metaErr error) ([]discovery.Endpoint, error) {
	cands, err := discovery.SimpleEndpoints(f.discoveryConfig(), name.String(), labels)
	if err != nil {
		return nil, fmt.Errorf("%w; %v", metaErr, err)
	}
	var tried []string
	for _, ep := range cands {
		found, err := f.exists(ctx, ep.ACI)
		if err == nil && found {
			f.debugf("%s: no discovery template; found by simple discovery at %s", name, ep.ACI)
			return []discovery.Endpoint{ep}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil {
			err = errors.New("not found")
		}
		tried = append(tried, fmt.Sprintf("%s: %v", ep.ACI, err))
	}
	return nil, fmt.Errorf("%w; simple discovery: %s", metaErr, strings.Join(tried, "; "))
}

func isRefusal(err error) bool {
	for _, e := range []error{ErrUnsigned, keystore.ErrUntrusted, keystore.ErrBadSignature,
		keystore.ErrKeyExpired, keystore.ErrKeyRevoked, ErrNameMismatch, ErrInsecureHTTP, context.Canceled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func describe(name types.ACIdentifier, labels types.Labels) string {
	s := name.String()
	for _, l := range labels {
		s += "," + l.Name.String() + "=" + l.Value
	}
	return s
}

func (f *Fetcher) discoveryConfig() discovery.Config {
	return discovery.Config{
		InsecureTLS:  f.cfg.InsecureSkipTLSVerify,
		InsecureHTTP: f.cfg.InsecureAllowHTTP,
		Port:         f.cfg.DiscoveryPort,
		Headers:      f.cfg.Auth.Header,
	}
}

// fetchURL gets an image from an URL, honouring the pull policy and the
// server's caching headers. ascURL is its signature's URL ("" for
// URL.asc); name is the name discovery asked for ("" for a plain URL).
func (f *Fetcher) fetchURL(ctx context.Context, u, ascURL, name string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("image URL %q: %v", u, err)
	}
	if pu.Scheme == "http" && !f.cfg.InsecureAllowHTTP {
		return "", fmt.Errorf("%s: %w", u, ErrInsecureHTTP)
	}
	remote, rerr := f.cfg.Store.Remote(u)
	haveRemote := rerr == nil
	switch f.cfg.PullPolicy {
	case PullNever:
		if haveRemote {
			return remote.ImageID, nil
		}
		return "", fmt.Errorf("%s: %w (pull policy is never)", u, ErrNotInStore)
	case PullNew:
		if haveRemote {
			return remote.ImageID, nil
		}
	case PullUpdate:
		if haveRemote && remote.Fresh(f.cfg.Now()) {
			f.debugf("%s: cached copy is fresh (max-age %ds)", u, remote.CacheMaxAge)
			return remote.ImageID, nil
		}
	}

	// The signature comes first: it is small, and if it is missing or made
	// by an untrusted key the image need not be downloaded at all. The
	// trusted keys are read meanwhile.
	var sig []byte
	var trusted func() (*keystore.Trusted, error)
	if !f.cfg.InsecureSkipVerify {
		trusted = sync.OnceValues(f.cfg.Keystore.Trusted)
		go func() { _, _ = trusted() }()
		if sig, err = f.signature(ctx, u, ascURL); err != nil {
			return "", err
		}
		if name != "" {
			stored, err := f.maybeTrustKeys(ctx, name, sig)
			if err != nil {
				return "", err
			}
			if stored > 0 {
				trusted = sync.OnceValues(f.cfg.Keystore.Trusted)
			}
		}
	}

	etag := ""
	if haveRemote {
		etag = remote.ETag
	}
	d, err := f.openDownload(ctx, u, etag)
	if err != nil {
		return "", err
	}
	defer d.Close()
	now := f.cfg.Now()
	if d.NotModified {
		remote.DownloadTime = now
		remote.CacheMaxAge = d.MaxAge
		if err := f.cfg.Store.SetRemote(remote); err != nil {
			return "", err
		}
		f.debugf("%s: not modified (ETag %s)", u, etag)
		return remote.ImageID, nil
	}
	opts := store.ImportOptions{SourceURL: u, Remote: &store.Remote{URL: u, ETag: d.etag, CacheMaxAge: d.MaxAge, DownloadTime: now}}
	var body io.Reader = d
	if f.cfg.Progress != nil {
		label := name
		if label == "" {
			label = u
		}
		p := newProgress(f.cfg.Progress, label, d.size)
		defer p.done()
		body = io.TeeReader(d, p)
	}
	var info store.ImageInfo
	if f.cfg.InsecureSkipVerify {
		info, err = f.cfg.Store.Import(ctx, body, opts)
	} else {
		var t *keystore.Trusted
		if t, err = trusted(); err == nil {
			info, err = f.importChecked(ctx, body, t, sig, name, opts)
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	return f.afterImport(ctx, info)
}

// signature returns the image's armored signature: --signature, or the
// one at ascURL (or u + ".asc").
func (f *Fetcher) signature(ctx context.Context, u, ascURL string) ([]byte, error) {
	if f.cfg.SignatureFile != "" {
		sig, err := os.ReadFile(f.cfg.SignatureFile)
		if err != nil {
			return nil, fmt.Errorf("read signature: %w", err)
		}
		return sig, nil
	}
	if ascURL == "" {
		ascURL = u + ".asc"
	}
	sig, found, err := f.getSmall(ctx, ascURL)
	if err != nil {
		return nil, fmt.Errorf("fetch signature: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("%s: %w: no signature at %s (use --insecure-options=image to fetch it unverified)", u, ErrUnsigned, ascURL)
	}
	return sig, nil
}
