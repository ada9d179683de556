package fetch

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Auth maps domains to the headers (credentials) sent to them.
type Auth struct {
	byDomain map[string]http.Header
}

// NewAuth returns credentials from a domain → headers map.
func NewAuth(byDomain map[string]http.Header) *Auth {
	a := &Auth{byDomain: map[string]http.Header{}}
	for d, h := range byDomain {
		a.byDomain[strings.ToLower(d)] = h.Clone()
	}
	return a
}

// authFile is rkt's auth.d format (rktKind "auth", rktVersion "v1").
type authFile struct {
	RktKind     string          `json:"rktKind"`
	RktVersion  string          `json:"rktVersion"`
	Domains     []string        `json:"domains"`
	Type        string          `json:"type"`
	Credentials json.RawMessage `json:"credentials"`
}

// LoadAuth reads DIR/auth.d/*.json of each configuration directory, in
// increasing precedence (system, local, user): a later directory's entry
// for a domain replaces an earlier one's.
func LoadAuth(configDirs ...string) (*Auth, error) {
	a := &Auth{byDomain: map[string]http.Header{}}
	for _, dir := range configDirs {
		if dir == "" {
			continue
		}
		d := filepath.Join(dir, "auth.d")
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d, err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") && !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(d, n)
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			domains, hdr, err := parseAuthFile(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			for _, dom := range domains {
				a.byDomain[strings.ToLower(dom)] = hdr
			}
		}
	}
	return a, nil
}

func parseAuthFile(data []byte) ([]string, http.Header, error) {
	var f authFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if f.RktKind == "dockerAuth" {
		// Registry credentials share auth.d, as in rkt; docker:// reads them.
		return nil, nil, nil
	}
	if f.RktKind != "auth" {
		return nil, nil, fmt.Errorf("rktKind is %q, want \"auth\"", f.RktKind)
	}
	if f.RktVersion != "v1" {
		return nil, nil, fmt.Errorf("rktVersion is %q, want \"v1\"", f.RktVersion)
	}
	if len(f.Domains) == 0 {
		return nil, nil, errors.New("no domains")
	}
	hdr := http.Header{}
	switch f.Type {
	case "basic":
		var c struct{ User, Password string }
		if err := json.Unmarshal(f.Credentials, &c); err != nil || c.User == "" {
			return nil, nil, errors.New("basic credentials need \"user\" and \"password\"")
		}
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password)))
	case "oauth":
		var c struct{ Token string }
		if err := json.Unmarshal(f.Credentials, &c); err != nil || c.Token == "" {
			return nil, nil, errors.New("oauth credentials need \"token\"")
		}
		hdr.Set("Authorization", "Bearer "+c.Token)
	default:
		return nil, nil, fmt.Errorf("unknown type %q (valid: basic, oauth)", f.Type)
	}
	return f.Domains, hdr, nil
}

// Header returns the headers for host (a host name, with or without a
// port). A domain entry also covers "host:port" when given as "host".
func (a *Auth) Header(host string) http.Header {
	if a == nil {
		return nil
	}
	host = strings.ToLower(host)
	if h, ok := a.byDomain[host]; ok {
		return h.Clone()
	}
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.HasSuffix(host, "]") {
		if h, ok := a.byDomain[host[:i]]; ok {
			return h.Clone()
		}
	}
	return nil
}

// Has tells whether any credentials exist for host.
func (a *Auth) Has(host string) bool { return a.Header(host) != nil }
