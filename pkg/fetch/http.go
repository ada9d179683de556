package fetch

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rktng/rkt/pkg/tlsroots"
)

// Timeouts for HTTP. A large image may take long to download; what must
// not take long is connecting, getting headers, or a stall in the body.
const (
	dialTimeout     = 30 * time.Second
	headerTimeout   = 60 * time.Second
	defaultStall    = 60 * time.Second
	maxResumes      = 8
	maxRedirects    = 10
	maxSignatureLen = 1 << 20
)

// WarmTLSRoots starts reading the system's CA bundle (see tlsroots) in the
// background when one of refs will need the network, so that it overlaps
// opening the store and reading the configuration.
func WarmTLSRoots(refs ...string) {
	for _, r := range refs {
		switch Classify(r) {
		case KindURL, KindName, KindContainer:
			tlsroots.System().Warm()
			return
		}
	}
}

// newHTTPClient builds the one client a Fetcher uses: proxies from the
// environment, the system CA store (SSL_CERT_FILE and SSL_CERT_DIR
// honoured; see tlsroots), timeouts on connection and headers but not on
// the body.
func newHTTPClient(cfg *Config) *http.Client {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		// HTTP/1.1 only: images are large single bodies, and Go's HTTP/2
		// client moves them markedly slower than HTTP/1.1 (16 KiB
		// frames, flow-control updates, a copy through the stream's
		// buffer); a 100 MB image over loopback took 280-310 ms with
		// HTTP/2 against 140-240 ms with HTTP/1.1. Nothing is multiplexed
		// here: a fetch makes its requests one after another.
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 4,
		// Images are usually compressed already; asking for gzip would
		// also break Range requests on servers that compress on the fly.
		DisableCompression: true,
		// Small: a read at least this large goes straight from TLS into
		// the caller's buffer instead of being copied through this one.
		ReadBufferSize: 32 << 10,
	}
	if cfg.InsecureSkipTLSVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	} else {
		tr.DialTLSContext = tlsroots.System().DialTLS(dialer, dialTimeout)
	}
	return &http.Client{
		Transport: &awsTransport{base: tr, auth: cfg.Auth},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme == "http" && via[0].URL.Scheme == "https" && !cfg.InsecureAllowHTTP {
				return fmt.Errorf("refusing redirect from %s to plain HTTP %s (use --insecure-options=http to allow)", via[0].URL, req.URL)
			}
			// Credentials are per host: the ones meant for the first
			// host must not follow a redirect elsewhere.
			req.Header.Del("Authorization")
			for k, v := range cfg.Auth.Header(req.URL.Host) {
				req.Header[k] = v
			}
			return nil
		},
	}
}

// HTTPError is a response status the fetcher does not accept.
type HTTPError struct {
	URL    string
	Status int
	Hint   string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// newRequest builds a GET for u with the credentials of its host.
func (f *Fetcher) newRequest(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme == "http" && !f.cfg.InsecureAllowHTTP {
		return nil, fmt.Errorf("%s: %w", u, ErrInsecureHTTP)
	}
	for k, v := range f.cfg.Auth.Header(req.URL.Host) {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "rkt")
	return req, nil
}

func (f *Fetcher) statusError(req *http.Request, resp *http.Response) error {
	e := &HTTPError{URL: req.URL.String(), Status: resp.StatusCode}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		if f.cfg.Auth.Has(req.URL.Host) {
			e.Hint = "the credentials in auth.d for " + req.URL.Hostname() + " were refused"
		} else {
			e.Hint = "no credentials for " + req.URL.Hostname() + " in any auth.d"
		}
	}
	return e
}

// getSmall fetches a small document (signature, key); found is false on 404.
func (f *Fetcher) getSmall(ctx context.Context, u string) (data []byte, found bool, err error) {
	req, err := f.newRequest(ctx, u)
	if err != nil {
		return nil, false, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		return nil, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, f.statusError(req, resp)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxSignatureLen+1))
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > maxSignatureLen {
		return nil, false, fmt.Errorf("GET %s: larger than %d bytes", u, maxSignatureLen)
	}
	return data, true, nil
}

// exists asks with HEAD whether u serves something; found is false on 404
// or 410. Simple discovery uses it so that a name nobody publishes that way
// is not reported as an unsigned image.
func (f *Fetcher) exists(ctx context.Context, u string) (found bool, err error) {
	req, err := f.newRequest(ctx, u)
	if err != nil {
		return false, err
	}
	req.Method = http.MethodHead
	resp, err := f.client.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return false, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return true, nil
	}
	return false, f.statusError(req, resp)
}

// download is an image response being read. Its body survives dropped
// connections: on a read error it asks again for the rest with Range (and
// If-Range, so a changed file is never spliced onto the old one).
type download struct {
	f       *Fetcher
	ctx     context.Context
	url     string // after redirects
	resp    *http.Response
	cancel  context.CancelFunc
	off     int64
	size    int64 // -1 when unknown
	etag    string
	lastMod string
	ranges  bool
	resumes int
	stall   *time.Timer
	mu      sync.Mutex // guards cancel against the stall watchdog
	// NotModified: the server answered 304 to If-None-Match.
	NotModified bool
	MaxAge      int
}

// openDownload sends the GET for an image; etag, if set, goes out as
// If-None-Match.
func (f *Fetcher) openDownload(ctx context.Context, u, etag string) (*download, error) {
	d := &download{f: f, ctx: ctx, url: u, size: -1}
	resp, cancel, err := d.request(etag, 0)
	if err != nil {
		return nil, err
	}
	d.url = resp.Request.URL.String()
	d.MaxAge = maxAge(resp.Header)
	if resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		cancel()
		d.NotModified = true
		d.etag = etag
		return d, nil
	}
	d.setResp(resp, cancel)
	d.size = resp.ContentLength
	d.etag = resp.Header.Get("ETag")
	d.lastMod = resp.Header.Get("Last-Modified")
	d.ranges = strings.Contains(resp.Header.Get("Accept-Ranges"), "bytes") && (d.etag != "" || d.lastMod != "")
	d.armStall()
	return d, nil
}

func (d *download) request(ifNoneMatch string, from int64) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(d.ctx)
	req, err := d.f.newRequest(ctx, d.url)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
		if d.etag != "" && !strings.HasPrefix(d.etag, "W/") {
			req.Header.Set("If-Range", d.etag)
		} else {
			req.Header.Set("If-Range", d.lastMod)
		}
	}
	resp, err := d.f.client.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	ok := resp.StatusCode == http.StatusOK || (ifNoneMatch != "" && resp.StatusCode == http.StatusNotModified)
	if from > 0 {
		ok = resp.StatusCode == http.StatusPartialContent
	}
	if !ok {
		resp.Body.Close()
		cancel()
		if from > 0 && resp.StatusCode == http.StatusOK {
			return nil, nil, fmt.Errorf("GET %s: the image changed on the server while it was downloaded", d.url)
		}
		return nil, nil, d.f.statusError(req, resp)
	}
	if from > 0 {
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != from {
			resp.Body.Close()
			cancel()
			return nil, nil, fmt.Errorf("GET %s: server resumed at the wrong offset (%q, wanted %d)", d.url, resp.Header.Get("Content-Range"), from)
		}
	}
	return resp, cancel, nil
}

func contentRangeStart(cr string) (int64, bool) {
	// "bytes START-END/TOTAL"
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// armStall (re)starts the watchdog that ends a body read which has made no
// progress for too long; the read then fails and is resumed.
func (d *download) armStall() {
	t := d.f.cfg.StallTimeout
	if t == 0 {
		t = defaultStall
	}
	if d.stall == nil {
		d.stall = time.AfterFunc(t, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.cancel != nil {
				d.cancel()
			}
		})
		return
	}
	d.stall.Reset(t)
}

func (d *download) setResp(resp *http.Response, cancel context.CancelFunc) {
	d.mu.Lock()
	d.resp, d.cancel = resp, cancel
	d.mu.Unlock()
}

func (d *download) Read(p []byte) (int, error) {
	for {
		n, err := d.resp.Body.Read(p)
		d.off += int64(n)
		if n > 0 {
			d.armStall()
		}
		if err == nil || err == io.EOF {
			if err == io.EOF && d.size >= 0 && d.off < d.size {
				err = io.ErrUnexpectedEOF
			} else {
				return n, err
			}
		}
		if rerr := d.resume(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume reopens the body at the current offset after err, if the server
// allows it and the caller is still waiting.
func (d *download) resume(err error) error {
	if d.ctx.Err() != nil {
		return d.ctx.Err()
	}
	if !d.ranges {
		return fmt.Errorf("download %s: %w (the server does not support resuming)", d.url, err)
	}
	if d.resumes >= maxResumes {
		return fmt.Errorf("download %s: %w (gave up after %d resumes)", d.url, err, d.resumes)
	}
	d.resumes++
	d.resp.Body.Close()
	d.cancel()
	d.f.debugf("download %s: %v; resuming at byte %d (attempt %d)", d.url, err, d.off, d.resumes)
	select {
	case <-time.After(time.Duration(d.resumes-1) * 500 * time.Millisecond):
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	resp, cancel, rerr := d.request("", d.off)
	if rerr != nil {
		return fmt.Errorf("download %s: resume at byte %d: %w", d.url, d.off, rerr)
	}
	d.setResp(resp, cancel)
	d.armStall()
	return nil
}

// Close releases the connection.
func (d *download) Close() error {
	if d.stall != nil {
		d.stall.Stop()
	}
	if d.resp != nil {
		d.resp.Body.Close()
		d.cancel()
	}
	return nil
}

// maxAge reads Cache-Control max-age (0 when absent or no-cache/no-store).
func maxAge(h http.Header) int {
	cc := strings.ToLower(h.Get("Cache-Control"))
	age := 0
	for _, part := range strings.Split(cc, ",") {
		part = strings.TrimSpace(part)
		if part == "no-cache" || part == "no-store" {
			return 0
		}
		if v, ok := strings.CutPrefix(part, "max-age="); ok {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n > 0 {
				age = n
			}
		}
	}
	return age
}
