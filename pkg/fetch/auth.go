package fetch

import (
	"net/http"

	"github.com/rktng/rkt/pkg/config"
)

// Auth gives the headers (credentials) to send to a host. It is built from
// the merged configuration directories (auth.d of system, local and user
// config): pkg/config reads them and matches hosts to domains.
type Auth struct {
	header func(host string) http.Header
}

// AuthFromConfig sends the basic and oauth credentials of c's auth.d.
func AuthFromConfig(c *config.Config) *Auth {
	return &Auth{header: c.AuthHeaders}
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
