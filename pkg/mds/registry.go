// Package mds owns the appc metadata service: the registry of running pods
// that registered with it, the HTTP API that apps reach at AC_METADATA_URL,
// the pod identity endpoints (HMAC sign/verify), and the client that stage0
// uses to register and unregister a pod over the service's unix socket.
//
// A request is tied to its pod by the token embedded in AC_METADATA_URL and,
// when the pod has addresses of its own, by its source address too; never by
// a name the caller supplies. Registrations are written to a state directory
// so that a restarted service still answers for pods that are running.
package mds

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/appc/spec/schema"
)

// Errors the registry returns; the HTTP layer maps them to status codes.
var (
	ErrNoPod        = errors.New("no registered pod")
	ErrBadToken     = errors.New("token is not a 32-hex-digit (128 bit) or longer secret")
	ErrTokenInUse   = errors.New("token already registered to another pod")
	ErrBadUUID      = errors.New("invalid pod UUID")
	ErrWrongAddress = errors.New("request does not come from the pod's address")
)

// App is what the service knows of one app of a pod.
type App struct {
	ImageID       string               `json:"imageID"`
	ImageManifest schema.ImageManifest `json:"imageManifest"`
}

// Registration is one pod as stage0 registers it.
type Registration struct {
	UUID     string             `json:"uuid"`
	Token    string             `json:"token"`
	Manifest schema.PodManifest `json:"manifest"`
	Apps     map[string]App     `json:"apps"`
	// IPs are the pod's own addresses; empty for pods on the host network,
	// which are then identified by their token alone.
	IPs []string `json:"ips,omitempty"`
	// PodDir lets the service drop the registration once the pod is gone.
	PodDir string `json:"podDir,omitempty"`
}

// validUUID tells a pod UUID as rkt writes it: lower-case hex in groups
// of 8-4-4-4-12. (Not a regexp: compiling one at start cost every rkt
// command a third of a millisecond.)
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// validToken tells a pod token: 32 to 128 characters of base64url.
func validToken(s string) bool {
	if len(s) < 32 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks a registration before it is stored.
func (r *Registration) Validate() error {
	if !validUUID(r.UUID) {
		return fmt.Errorf("%w: %q", ErrBadUUID, r.UUID)
	}
	if !validToken(r.Token) {
		return ErrBadToken
	}
	for _, ip := range r.IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("pod %s: invalid IP %q", r.UUID, ip)
		}
	}
	for _, ra := range r.Manifest.Apps {
		if _, ok := r.Apps[ra.Name.String()]; !ok {
			return fmt.Errorf("pod %s: app %q of the manifest has no image registered", r.UUID, ra.Name)
		}
	}
	return nil
}

// Registry holds the registered pods, mirrored to a state directory.
type Registry struct {
	dir    string
	mu     sync.RWMutex
	byTok  map[string]*Registration
	byUUID map[string]*Registration
}

// OpenRegistry loads every registration saved under dir (created if
// missing). Unreadable entries are skipped and reported in the returned
// warnings, so one bad file cannot take every pod's metadata down.
func OpenRegistry(dir string) (*Registry, []error, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("metadata state dir: %w", err)
	}
	r := &Registry{dir: dir, byTok: map[string]*Registration{}, byUUID: map[string]*Registration{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, err
	}
	var warnings []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			warnings = append(warnings, err)
			continue
		}
		var reg Registration
		if err := json.Unmarshal(b, &reg); err != nil {
			warnings = append(warnings, fmt.Errorf("%s: %w", f, err))
			continue
		}
		if err := reg.Validate(); err != nil {
			warnings = append(warnings, fmt.Errorf("%s: %w", f, err))
			continue
		}
		r.byTok[reg.Token] = &reg
		r.byUUID[reg.UUID] = &reg
	}
	return r, warnings, nil
}

func (r *Registry) path(uuid string) string { return filepath.Join(r.dir, uuid+".json") }

// Add stores a registration, replacing an earlier one of the same pod.
func (r *Registry) Add(reg *Registration) error {
	if err := reg.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.byTok[reg.Token]; ok && other.UUID != reg.UUID {
		return ErrTokenInUse
	}
	old, ok := r.byUUID[reg.UUID]
	if ok && old.Token == reg.Token && len(reg.IPs) == 0 {
		// A pod registering again (its apps changed) stays bound to
		// the addresses stage1 bound it to.
		reg.IPs = old.IPs
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	tmp := r.path(reg.UUID) + ".tmp"
	if err := writeSync(tmp, b); err != nil {
		return fmt.Errorf("save registration of %s: %w", reg.UUID, err)
	}
	if err := os.Rename(tmp, r.path(reg.UUID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save registration of %s: %w", reg.UUID, err)
	}
	if ok {
		delete(r.byTok, old.Token)
	}
	r.byTok[reg.Token] = reg
	r.byUUID[reg.UUID] = reg
	return nil
}

// SetIPs binds a registered pod to its addresses (see ByToken).
func (r *Registry) SetIPs(uuid string, ips []string) error {
	r.mu.RLock()
	old, ok := r.byUUID[uuid]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("pod %s: %w", uuid, ErrNoPod)
	}
	reg := *old
	reg.IPs = append([]string(nil), ips...)
	return r.Add(&reg)
}

// Remove forgets a pod. Removing an unknown pod is not an error: stage0
// and gc may both try.
func (r *Registry) Remove(uuid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg, ok := r.byUUID[uuid]; ok {
		delete(r.byTok, reg.Token)
		delete(r.byUUID, uuid)
	}
	if err := os.Remove(r.path(uuid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ByToken finds the pod a request belongs to, checking that it comes from
// one of the pod's addresses when the pod has any.
func (r *Registry) ByToken(token string, remote net.IP) (*Registration, error) {
	r.mu.RLock()
	reg, ok := r.byTok[token]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrNoPod
	}
	if len(reg.IPs) > 0 {
		for _, ip := range reg.IPs {
			if net.ParseIP(ip).Equal(remote) {
				return reg, nil
			}
		}
		return nil, ErrWrongAddress
	}
	return reg, nil
}

// List returns every registration.
func (r *Registry) List() []*Registration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Registration, 0, len(r.byUUID))
	for _, reg := range r.byUUID {
		out = append(out, reg)
	}
	return out
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
