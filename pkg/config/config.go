// Package config reads rkt's configuration directories: the system
// directory (vendor defaults, /usr/lib/rkt), the local one (the admin's,
// /etc/rkt) and the user's, each overriding the one before. It owns rkt's
// file format (JSON files carrying rktKind and rktVersion in auth.d,
// docker.d, paths.d and stage1.d) and the merge rules rkt documented: per
// domain for auth, per registry for dockerAuth (and for our dockerMirrors),
// per field for paths, and separately for the stage1 name+version pair and
// the stage1 location.
//
// Only reading and merging happen here; the callers decide what a setting
// means (the fetcher sends AuthHeaders, the CLI resolves the data dir).
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every error about a configuration file's
// content, so that callers can tell bad configuration from I/O trouble.
var ErrInvalid = errors.New("invalid configuration")

// Dirs are the configuration directories, lowest precedence first. An empty
// or missing directory contributes nothing.
type Dirs struct {
	System string
	Local  string
	User   string
}

// BasicCredentials are a user name and password.
type BasicCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// RegistryCredentials are a Docker registry's credentials (rktKind
// dockerAuth): a user name and password, as rkt had them, or (beyond rkt)
// one of the tokens Docker's config.json and Kubernetes pull secrets
// carry: IdentityToken, an OAuth2 refresh token that the registry's token
// service exchanges for access, or RegistryToken, a bearer token sent as
// it is.
type RegistryCredentials struct {
	User          string `json:"user,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identityToken,omitempty"`
	RegistryToken string `json:"registryToken,omitempty"`
}

// Auth types of rktKind "auth".
const (
	AuthBasic = "basic"
	AuthOAuth = "oauth"
	AuthAWS   = "aws"
)

// Auth is the credentials configured for one domain.
type Auth struct {
	// Type is AuthBasic, AuthOAuth or AuthAWS.
	Type string
	// Basic is set for AuthBasic.
	Basic BasicCredentials
	// Token is set for AuthOAuth.
	Token string
	// AWS is set for AuthAWS; requests must be signed, no static header
	// will do.
	AWS AWSCredentials
	// File is the file the entry came from, for messages.
	File string
}

// AWSCredentials are the credentials of the "aws" auth type (AWS v4
// signatures).
type AWSCredentials struct {
	AccessKeyID     string `json:"accessKeyID"`
	SecretAccessKey string `json:"secretAccessKey"`
	Region          string `json:"awsRegion,omitempty"`
}

// Paths is rktKind "paths": where rkt keeps its data and looks for stage1
// images. Empty fields are unset.
type Paths struct {
	Data         string
	Stage1Images string
}

// Stage1 is rktKind "stage1": the default stage1 image. Name and Version are
// set together or not at all; Location is a path or a URL.
type Stage1 struct {
	Name     string
	Version  string
	Location string
}

// Config is the merged configuration of all directories.
type Config struct {
	// Auth maps a domain (host or host:port, lower case) to its credentials.
	Auth map[string]Auth
	// DockerAuth maps a registry host to its credentials.
	DockerAuth map[string]RegistryCredentials
	// DockerMirrors maps a registry host to the hosts tried, in order,
	// before it (docker.d, rktKind dockerMirrors).
	DockerMirrors map[string][]string
	Paths         Paths
	Stage1        Stage1
}

// FileError is an error in one configuration file.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *FileError) Unwrap() []error {
	return []error{ErrInvalid, e.Err}
}

// Load reads and merges the directories in d.
func Load(d Dirs) (*Config, error) {
	c := &Config{Auth: map[string]Auth{}, DockerAuth: map[string]RegistryCredentials{}, DockerMirrors: map[string][]string{}}
	for _, dir := range []string{d.System, d.Local, d.User} {
		if dir == "" {
			continue
		}
		if err := c.loadDir(dir); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// header is what every configuration file starts with.
type header struct {
	Kind    string `json:"rktKind"`
	Version string `json:"rktVersion"`
}

type authFile struct {
	Domains     []string        `json:"domains"`
	Type        string          `json:"type"`
	Credentials json.RawMessage `json:"credentials"`
}

type dockerAuthFile struct {
	Registries  []string             `json:"registries"`
	Credentials *RegistryCredentials `json:"credentials"`
}

// dockerMirrorsFile is rktKind "dockerMirrors", a kind rkt did not have:
//
//	{"rktKind": "dockerMirrors", "rktVersion": "v1",
//	 "registries": ["index.docker.io"], "mirrors": ["mirror.example.com:5000"]}
type dockerMirrorsFile struct {
	Registries []string `json:"registries"`
	Mirrors    []string `json:"mirrors"`
}

type pathsFile struct {
	Data         string `json:"data"`
	Stage1Images string `json:"stage1-images"`
}

type stage1File struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Location string `json:"location"`
}

// dirState is what one directory set so far: defining a thing twice in the
// same directory is an error, as it was in rkt, since which file wins would
// depend on file names.
type dirState struct {
	auth, docker, mirrors          map[string]string // key -> file
	data, stage1Images             string
	stage1NameVersion, stage1Where string
}

func (c *Config) loadDir(dir string) error {
	st := &dirState{auth: map[string]string{}, docker: map[string]string{}, mirrors: map[string]string{}}
	for _, sub := range []struct {
		name  string
		kinds []string
	}{
		{"auth.d", []string{"auth", "dockerAuth"}},
		{"docker.d", []string{"dockerMirrors"}},
		{"paths.d", []string{"paths"}},
		{"stage1.d", []string{"stage1"}},
	} {
		files, err := jsonFiles(filepath.Join(dir, sub.name))
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := c.loadFile(f, sub.kinds, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFiles lists the regular *.json files directly in dir, sorted; other
// files (documentation, backups) are left alone, as rkt did.
func jsonFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		// Follow symlinks: packagers link config files into place.
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		if fi.Mode().IsRegular() {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	return files, nil
}

func (c *Config) loadFile(file string, kinds []string, st *dirState) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	bad := func(format string, args ...any) error {
		return &FileError{File: file, Err: fmt.Errorf(format, args...)}
	}
	var h header
	if err := decode(b, &h); err != nil {
		return &FileError{File: file, Err: err}
	}
	if h.Kind == "" || h.Version == "" {
		return bad("rktKind and rktVersion must both be set")
	}
	allowed := false
	for _, k := range kinds {
		allowed = allowed || k == h.Kind
	}
	if !allowed {
		return bad("rktKind %q does not belong in %s (expected %s)", h.Kind, filepath.Base(filepath.Dir(file)), strings.Join(kinds, " or "))
	}
	if h.Version != "v1" {
		return bad("unsupported rktVersion %q for rktKind %q (supported: v1)", h.Version, h.Kind)
	}
	switch h.Kind {
	case "auth":
		var a authFile
		if err := decode(b, &a); err != nil {
			return &FileError{File: file, Err: err}
		}
		entry, err := parseAuth(a)
		if err != nil {
			return &FileError{File: file, Err: err}
		}
		entry.File = file
		if len(a.Domains) == 0 {
			return bad("domains must list at least one domain")
		}
		for _, d := range a.Domains {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "" || strings.ContainsAny(d, "/ ") {
				return bad("invalid domain %q (want a host or host:port)", d)
			}
			if prev, ok := st.auth[d]; ok {
				return bad("domain %q is already configured in %s", d, prev)
			}
			st.auth[d] = file
			c.Auth[d] = entry
		}
	case "dockerAuth":
		var a dockerAuthFile
		if err := decode(b, &a); err != nil {
			return &FileError{File: file, Err: err}
		}
		if len(a.Registries) == 0 {
			return bad("registries must list at least one registry")
		}
		if err := a.Credentials.check(); err != nil {
			return bad("%v", err)
		}
		return eachRegistry(a.Registries, st.docker, file, func(r string) { c.DockerAuth[r] = *a.Credentials })
	case "dockerMirrors":
		var m dockerMirrorsFile
		if err := decode(b, &m); err != nil {
			return &FileError{File: file, Err: err}
		}
		if len(m.Registries) == 0 {
			return bad("registries must list at least one registry")
		}
		for _, h := range m.Mirrors {
			if strings.TrimSpace(h) == "" || strings.Contains(h, " ") {
				return bad("invalid mirror %q (want a host, host:port or host/prefix)", h)
			}
		}
		return eachRegistry(m.Registries, st.mirrors, file, func(r string) { c.DockerMirrors[r] = m.Mirrors })
	case "paths":
		var p pathsFile
		if err := decode(b, &p); err != nil {
			return &FileError{File: file, Err: err}
		}
		for _, f := range []struct {
			name, val string
			prev      *string
			dst       *string
		}{
			{"data", p.Data, &st.data, &c.Paths.Data},
			{"stage1-images", p.Stage1Images, &st.stage1Images, &c.Paths.Stage1Images},
		} {
			if f.val == "" {
				continue
			}
			if !filepath.IsAbs(f.val) {
				return bad("%s must be an absolute path, not %q", f.name, f.val)
			}
			if *f.prev != "" {
				return bad("%s is already set in %s", f.name, *f.prev)
			}
			*f.prev, *f.dst = file, filepath.Clean(f.val)
		}
	case "stage1":
		var s stage1File
		if err := decode(b, &s); err != nil {
			return &FileError{File: file, Err: err}
		}
		if (s.Name == "") != (s.Version == "") {
			return bad("stage1 name and version must be set together")
		}
		if s.Name != "" {
			if st.stage1NameVersion != "" {
				return bad("stage1 name and version are already set in %s", st.stage1NameVersion)
			}
			st.stage1NameVersion = file
			c.Stage1.Name, c.Stage1.Version = s.Name, s.Version
		}
		if s.Location != "" {
			if err := checkLocation(s.Location); err != nil {
				return &FileError{File: file, Err: err}
			}
			if st.stage1Where != "" {
				return bad("stage1 location is already set in %s", st.stage1Where)
			}
			st.stage1Where = file
			c.Stage1.Location = s.Location
		}
	}
	return nil
}

// eachRegistry checks the registries one file lists, none of them set by
// another file of the same directory (seen), and calls set for each.
func eachRegistry(registries []string, seen map[string]string, file string, set func(registry string)) error {
	for _, r := range registries {
		r = strings.ToLower(strings.TrimSpace(r))
		if r == "" || strings.ContainsAny(r, "/ ") {
			return &FileError{File: file, Err: fmt.Errorf("invalid registry %q (want a host or host:port)", r)}
		}
		if prev, ok := seen[r]; ok {
			return &FileError{File: file, Err: fmt.Errorf("registry %q is already configured in %s", r, prev)}
		}
		seen[r] = file
		set(r)
	}
	return nil
}

func parseAuth(a authFile) (Auth, error) {
	var e Auth
	e.Type = a.Type
	if len(a.Credentials) == 0 || string(a.Credentials) == "null" {
		return e, errors.New("credentials must be set")
	}
	switch a.Type {
	case "":
		return e, errors.New("type must be set (basic, oauth or aws)")
	case AuthBasic:
		if err := decode(a.Credentials, &e.Basic); err != nil {
			return e, fmt.Errorf("credentials: %w", err)
		}
		if e.Basic.User == "" || e.Basic.Password == "" {
			return e, errors.New("basic credentials need a non-empty user and password")
		}
	case AuthOAuth:
		var t struct {
			Token string `json:"token"`
		}
		if err := decode(a.Credentials, &t); err != nil {
			return e, fmt.Errorf("credentials: %w", err)
		}
		if t.Token == "" {
			return e, errors.New("oauth credentials need a non-empty token")
		}
		e.Token = t.Token
	case AuthAWS:
		if err := decode(a.Credentials, &e.AWS); err != nil {
			return e, fmt.Errorf("credentials: %w", err)
		}
		if e.AWS.AccessKeyID == "" || e.AWS.SecretAccessKey == "" {
			return e, errors.New("aws credentials need accessKeyID and secretAccessKey")
		}
	default:
		return e, fmt.Errorf("unknown auth type %q (supported: basic, oauth, aws)", a.Type)
	}
	return e, nil
}

func checkLocation(loc string) error {
	if filepath.IsAbs(loc) {
		return nil
	}
	for _, scheme := range []string{"file://", "http://", "https://", "docker://"} {
		if strings.HasPrefix(loc, scheme) {
			return nil
		}
	}
	return fmt.Errorf("stage1 location %q is neither an absolute path nor a file, http, https or docker URL", loc)
}

// decode unmarshals JSON and turns a syntax error's byte offset into a line
// and column a person can find.
func decode(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the bad character itself.
		line, col := position(b, se.Offset-1)
		return fmt.Errorf("line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		line, col := position(b, te.Offset)
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("line %d, column %d: %s must be %s, not %s", line, col, field, te.Type, te.Value)
	}
	return err
}

func position(b []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(b))))
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// AuthFor returns the credentials configured for host (a URL's Host: a
// name or address, with an optional port). An entry for host:port wins over
// one for the bare host.
func (c *Config) AuthFor(host string) (Auth, bool) {
	host = strings.ToLower(host)
	if a, ok := c.Auth[host]; ok {
		return a, true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		a, ok := c.Auth[strings.Trim(h, "[]")]
		if !ok {
			a, ok = c.Auth["["+h+"]"]
		}
		return a, ok
	}
	return Auth{}, false
}

// AuthHeaders returns the HTTP headers to send to host: an Authorization
// header for basic and oauth credentials, nothing when none are configured
// or when the type needs per-request signing (aws).
func (c *Config) AuthHeaders(host string) http.Header {
	a, ok := c.AuthFor(host)
	if !ok {
		return http.Header{}
	}
	h := http.Header{}
	switch a.Type {
	case AuthBasic:
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Basic.User+":"+a.Basic.Password)))
	case AuthOAuth:
		h.Set("Authorization", "Bearer "+a.Token)
	}
	return h
}

// dockerHub are the names under which users configure Docker Hub; rkt's
// docs used both index.docker.io and registry-1.docker.io.
var dockerHub = []string{"registry-1.docker.io", "index.docker.io", "docker.io"}

// DockerCredentials returns the credentials configured for a Docker
// registry host (with an optional port).
func (c *Config) DockerCredentials(registry string) (RegistryCredentials, bool) {
	return forRegistry(c.DockerAuth, registry)
}

// DockerMirrorsFor returns the mirrors configured for a Docker registry
// host, to try in order before the registry itself.
func (c *Config) DockerMirrorsFor(registry string) []string {
	m, _ := forRegistry(c.DockerMirrors, registry)
	return m
}

// forRegistry looks registry up in m, Docker Hub under any of its names.
func forRegistry[V any](m map[string]V, registry string) (V, bool) {
	registry = strings.ToLower(registry)
	if v, ok := m[registry]; ok {
		return v, true
	}
	for _, h := range dockerHub {
		if registry != h {
			continue
		}
		for _, alias := range dockerHub {
			if v, ok := m[alias]; ok {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}

// check wants exactly one kind of credentials: a user and password, an
// identity token or a registry token.
func (r *RegistryCredentials) check() error {
	if r == nil {
		return errors.New("credentials need a non-empty user and password, an identityToken or a registryToken")
	}
	kinds := 0
	if r.User != "" || r.Password != "" {
		if r.User == "" || r.Password == "" {
			return errors.New("credentials need a non-empty user and password")
		}
		kinds++
	}
	if r.IdentityToken != "" {
		kinds++
	}
	if r.RegistryToken != "" {
		kinds++
	}
	switch kinds {
	case 0:
		return errors.New("credentials need a non-empty user and password, an identityToken or a registryToken")
	case 1:
		return nil
	}
	return errors.New("credentials give more than one of user and password, identityToken and registryToken")
}
