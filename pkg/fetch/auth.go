package fetch

import (
	"net/http"
	"strings"

	"github.com/rktng/rkt/pkg/config"
)

// Auth gives the headers (credentials) to send to a host. The CLI builds it
// from the merged configuration directories (auth.d of system, local and
// user config, as pkg/config reads them).
type Auth struct {
	header func(host string) http.Header
}

// AuthFromConfig sends the basic and oauth credentials of c's auth.d.
func AuthFromConfig(c *config.Config) *Auth {
	return &Auth{header: c.AuthHeaders}
}

// NewAuth returns credentials from a domain (host or host:port) → headers
// map, for callers without configuration directories.
func NewAuth(byDomain map[string]http.Header) *Auth {
	m := map[string]http.Header{}
	for d, h := range byDomain {
		m[strings.ToLower(d)] = h.Clone()
	}
	return &Auth{header: func(host string) http.Header {
		host = strings.ToLower(host)
		if h, ok := m[host]; ok {
			return h.Clone()
		}
		if i := strings.LastIndex(host, ":"); i >= 0 {
			return m[host[:i]].Clone()
		}
		return nil
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

// Has tells whether any credentials exist for host.
func (a *Auth) Has(host string) bool { return a.Header(host) != nil }
