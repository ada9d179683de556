package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	appcdisc "github.com/appc/spec/discovery"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/tlsroots"
)

// dialTimeout is what the appc package gives a connection.
const dialTimeout = 20 * time.Second

// ErrNotFound: no discovery page under any prefix of the name offered a
// template (or key) for it.
var ErrNotFound = errors.New("discovery found nothing")

// PortEnv names the environment variable that, for tests, sends discovery
// requests to another port than 443 (or 80). appc names cannot carry a port
// ("host:port/app" is not an appc identifier, and a colon introduces the
// version), so the port has to come from outside the name. The rkt CLI reads
// it and sets Config.Port; this package reads no environment itself.
const PortEnv = "RKT_DISCOVERY_PORT"

// Config is how discovery may talk to servers.
type Config struct {
	// InsecureTLS accepts any certificate; InsecureHTTP falls back to
	// plain HTTP when HTTPS fails.
	InsecureTLS  bool
	InsecureHTTP bool
	// Port, if not 0, replaces the default port in discovery requests.
	Port uint
	// Headers returns extra headers (credentials) for a host; may be nil.
	Headers func(host string) http.Header
	// Timeout bounds each discovery request (default 30s).
	Timeout time.Duration
}

// Endpoint is one place an image can be fetched from, with its signature.
type Endpoint struct {
	ACI string
	ASC string
}

// clientMu guards the appc package's shared clients, which we give a
// timeout before every use.
var clientMu sync.Mutex

// systemRoots points the appc package's verifying client at tlsroots'
// verification, once, before its first use.
var systemRoots sync.Once

func (c Config) insecure() appcdisc.InsecureOption {
	var o appcdisc.InsecureOption
	if c.InsecureTLS {
		o |= appcdisc.InsecureTLS
	}
	if c.InsecureHTTP {
		o |= appcdisc.InsecureHTTP
	}
	return o
}

func (c Config) hostHeaders(name string) map[string]http.Header {
	if c.Headers == nil {
		return nil
	}
	host, _, _ := strings.Cut(name, "/")
	hh := map[string]http.Header{}
	for _, h := range []string{host, host + ":" + strconv.FormatUint(uint64(c.Port), 10)} {
		if hdr := c.Headers(host); len(hdr) > 0 {
			hh[h] = hdr
		}
	}
	return hh
}

// DefaultLabels adds the os and arch labels of this machine, in appc's
// spelling, when the caller gave none: discovery templates commonly use
// {os} and {arch}, and images are published per platform.
func DefaultLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	os, arch, err := types.ToAppcOSArch(runtime.GOOS, runtime.GOARCH, "")
	if err != nil {
		os, arch = runtime.GOOS, runtime.GOARCH
	}
	if out["os"] == "" {
		out["os"] = os
	}
	if out["arch"] == "" {
		out["arch"] = arch
	}
	return out
}

func newApp(name string, labels map[string]string) (*appcdisc.App, error) {
	l := map[types.ACIdentifier]string{}
	for k, v := range labels {
		ln, err := types.NewACIdentifier(k)
		if err != nil {
			return nil, fmt.Errorf("label %q: %v", k, err)
		}
		l[*ln] = v
	}
	app, err := appcdisc.NewApp(name, l)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %v", name, err)
	}
	return app, nil
}

// run calls fn with the appc clients' timeouts set, abandoning the wait (not
// the request, which the timeout ends) when ctx is cancelled.
func (c Config) run(ctx context.Context, fn func()) error {
	t := c.Timeout
	if t == 0 {
		t = 30 * time.Second
	}
	done := make(chan struct{})
	go func() {
		clientMu.Lock()
		defer clientMu.Unlock()
		systemRoots.Do(func() {
			if tr, ok := appcdisc.Client.Transport.(*http.Transport); ok {
				tr.DialTLSContext = tlsroots.System().DialTLS(&net.Dialer{Timeout: dialTimeout}, dialTimeout)
			}
		})
		appcdisc.Client.Timeout = t
		appcdisc.ClientInsecureTLS.Timeout = t
		fn()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func describeAttempts(att []appcdisc.FailedAttempt) string {
	var parts []string
	for _, a := range att {
		parts = append(parts, fmt.Sprintf("%s: %v", a.Prefix, a.Error))
	}
	return strings.Join(parts, "; ")
}

// DiscoverImage walks name's prefixes (longest first) for an ac-discovery
// template that renders completely with name and labels, and returns the
// image and signature URLs it yields.
func DiscoverImage(ctx context.Context, cfg Config, name string, labels map[string]string) ([]Endpoint, error) {
	app, err := newApp(name, labels)
	if err != nil {
		return nil, err
	}
	var eps appcdisc.ACIEndpoints
	var att []appcdisc.FailedAttempt
	var derr error
	if err := cfg.run(ctx, func() {
		eps, att, derr = appcdisc.DiscoverACIEndpoints(*app, cfg.hostHeaders(name), cfg.insecure(), cfg.Port)
	}); err != nil {
		return nil, fmt.Errorf("discover %s: %w", app, err)
	}
	if derr != nil || len(eps) == 0 {
		msg := "no discovery page offers an ac-discovery template matching the name and labels"
		if len(att) > 0 {
			msg += " (" + describeAttempts(att) + ")"
		}
		return nil, fmt.Errorf("discover %s: %w: %s", app, ErrNotFound, msg)
	}
	out := make([]Endpoint, len(eps))
	for i, e := range eps {
		out[i] = Endpoint{ACI: e.ACI, ASC: e.ASC}
	}
	return out, nil
}

// DiscoverKeys walks prefix's parents for ac-discovery-pubkeys and returns
// the key URLs found on the nearest page that has any.
func DiscoverKeys(ctx context.Context, cfg Config, prefix string) ([]string, error) {
	app, err := newApp(prefix, nil)
	if err != nil {
		return nil, err
	}
	var keys appcdisc.PublicKeys
	var att []appcdisc.FailedAttempt
	var derr error
	if err := cfg.run(ctx, func() {
		keys, att, derr = appcdisc.DiscoverPublicKeys(*app, cfg.hostHeaders(prefix), cfg.insecure(), cfg.Port)
	}); err != nil {
		return nil, fmt.Errorf("discover keys of %s: %w", prefix, err)
	}
	if derr != nil || len(keys) == 0 {
		msg := "no discovery page offers ac-discovery-pubkeys"
		if len(att) > 0 {
			msg += " (" + describeAttempts(att) + ")"
		}
		return nil, fmt.Errorf("discover keys of %s: %w: %s", prefix, ErrNotFound, msg)
	}
	return keys, nil
}

// SimpleEndpoints renders the simple discovery URLs of appc spec versions
// before 0.8 (https://{name}-{version}-{os}-{arch}.{ext}): the places an
// image can be fetched from without any discovery page. The version is
// "latest" when labels name none, as in meta discovery. With InsecureHTTP
// a plain-HTTP endpoint follows the HTTPS one. The caller must still check
// that the image exists there: rendering makes no request.
func SimpleEndpoints(cfg Config, name string, labels map[string]string) ([]Endpoint, error) {
	if _, err := types.NewACIdentifier(name); err != nil {
		return nil, fmt.Errorf("image name %q: %v", name, err)
	}
	version := labels["version"]
	if version == "" {
		version = "latest"
	}
	for _, k := range []string{"os", "arch"} {
		if labels[k] == "" {
			return nil, fmt.Errorf("simple discovery of %s: no %s label", name, k)
		}
	}
	if cfg.Port != 0 {
		// The port goes after the host, the name's first element.
		host, path, _ := strings.Cut(name, "/")
		name = host + ":" + strconv.FormatUint(uint64(cfg.Port), 10) + strings.TrimSuffix("/"+path, "/")
	}
	tail := fmt.Sprintf("%s-%s-%s-%s.aci", name, version, labels["os"], labels["arch"])
	schemes := []string{"https"}
	if cfg.InsecureHTTP {
		schemes = append(schemes, "http")
	}
	var out []Endpoint
	for _, s := range schemes {
		u := s + "://" + tail
		out = append(out, Endpoint{ACI: u, ASC: u + ".asc"})
	}
	return out, nil
}
