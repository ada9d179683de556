package fetch

import (
	"net/http"
	"time"

	"github.com/rktng/rkt/pkg/config"
)

// Auth gives the credentials to use with a host. It is built from the
// merged configuration directories (auth.d of system, local and user
// config): pkg/config reads them and matches hosts to domains.
type Auth struct {
	header func(host string) http.Header
	aws    func(host string) (config.AWSCredentials, bool)
}

// AuthFromConfig uses c's auth.d: basic and oauth credentials as headers,
// aws credentials to sign each request.
func AuthFromConfig(c *config.Config) *Auth {
	return &Auth{header: c.AuthHeaders, aws: func(host string) (config.AWSCredentials, bool) {
		a, ok := c.AuthFor(host)
		return a.AWS, ok && a.Type == config.AuthAWS
	}}
}

// Header returns the headers for host (a URL's Host, port optional), or
// nil when there are none.
func (a *Auth) Header(host string) http.Header {
	if a == nil || a.header == nil {
		return nil
	}
	h := a.header(host)
	if len(h) == 0 {
		return nil
	}
	return h
}

// AWS returns the aws credentials for host, if any.
func (a *Auth) AWS(host string) (config.AWSCredentials, bool) {
	if a == nil || a.aws == nil {
		return config.AWSCredentials{}, false
	}
	return a.aws(host)
}

// Has tells whether any credentials exist for host.
func (a *Auth) Has(host string) bool {
	_, aws := a.AWS(host)
	return aws || a.Header(host) != nil
}

// awsTransport signs every request to a host that has aws credentials
// (images in S3): each hop of a redirect is a request of its own, signed
// for its own host or not at all.
type awsTransport struct {
	base http.RoundTripper
	auth *Auth
}

func (t *awsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, ok := t.auth.AWS(req.URL.Host)
	if !ok {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not change the request it was given.
	r := req.Clone(req.Context())
	r.Header.Del("Authorization")
	awsSign(r, c, awsService, time.Now())
	return t.base.RoundTrip(r)
}

// CloseIdleConnections passes on to the transport underneath.
func (t *awsTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
