package mds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema/types"
)

const (
	apiPrefix = "/acMetadata/v1"
	textPlain = "text/plain; charset=us-ascii"
	appJSON   = "application/json"
	// keyFile holds the HMAC key; it outlives restarts so that signatures
	// made before a restart still verify after it.
	keyFile = "hmac.key"
)

// Service serves the metadata API to pods and the registration API to
// stage0. Build it with NewService.
type Service struct {
	reg *Registry
	key []byte
	log *log.Logger
}

// NewService opens the registry under stateDir and loads (or makes) the
// service's HMAC key there.
func NewService(stateDir string, logger *log.Logger) (*Service, error) {
	reg, warnings, err := OpenRegistry(filepath.Join(stateDir, "pods"))
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		logger.Printf("skipping saved registration: %v", w)
	}
	key, err := loadKey(filepath.Join(stateDir, keyFile))
	if err != nil {
		return nil, err
	}
	return &Service{reg: reg, key: key, log: logger}, nil
}

// Registry exposes the registered pods (for pruning and tests).
func (s *Service) Registry() *Registry { return s.reg }

func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 64 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("metadata HMAC key: %w", err)
	}
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := writeSync(tmp, key); err != nil {
		return nil, fmt.Errorf("metadata HMAC key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("metadata HMAC key: %w", err)
	}
	return key, nil
}

// sign binds content to the pod's UUID, so a signature made by one pod
// never verifies as another's.
func (s *Service) sign(uuid string, content []byte) []byte {
	m := hmac.New(sha512.New, s.key)
	m.Write([]byte(uuid))
	m.Write([]byte{0})
	m.Write(content)
	return m.Sum(nil)
}

// MetadataHandler serves $AC_METADATA_URL/..., where the URL's first path
// element is the pod's token.
func (s *Service) MetadataHandler() http.Handler {
	return http.HandlerFunc(s.serveMetadata)
}

func (s *Service) serveMetadata(w http.ResponseWriter, r *http.Request) {
	token, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	rest = "/" + rest
	if !strings.HasPrefix(rest, apiPrefix+"/") {
		http.NotFound(w, r)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	pod, err := s.reg.ByToken(token, net.ParseIP(host))
	if err != nil {
		// The same answer for an unknown token and a wrong address, so
		// that a caller learns nothing about other pods' tokens.
		http.Error(w, "unknown pod", http.StatusUnauthorized)
		return
	}
	path := strings.TrimPrefix(rest, apiPrefix)
	switch {
	case path == "/pod/annotations" && r.Method == http.MethodGet:
		writeJSON(w, annotationsOrEmpty(pod.Manifest.Annotations))
	case path == "/pod/manifest" && r.Method == http.MethodGet:
		// Served with the same annotations /pod/annotations gives, also
		// for a manifest written with "annotations": null.
		pm := pod.Manifest
		pm.Annotations = annotationsOrEmpty(pm.Annotations)
		writeJSON(w, &pm)
	case path == "/pod/uuid" && r.Method == http.MethodGet:
		writeText(w, pod.UUID)
	case path == "/pod/hmac/sign" && r.Method == http.MethodPost:
		s.serveSign(w, r, pod)
	case path == "/pod/hmac/verify" && r.Method == http.MethodPost:
		s.serveVerify(w, r)
	case strings.HasPrefix(path, "/apps/") && r.Method == http.MethodGet:
		s.serveApp(w, strings.TrimPrefix(path, "/apps/"), pod)
	default:
		http.NotFound(w, r)
	}
}

func (s *Service) serveSign(w http.ResponseWriter, r *http.Request, pod *Registration) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, ok := r.PostForm["content"]; !ok {
		http.Error(w, "missing content", http.StatusBadRequest)
		return
	}
	sig := s.sign(pod.UUID, []byte(r.PostForm.Get("content")))
	writeText(w, base64.StdEncoding.EncodeToString(sig))
}

func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	uuid := r.PostForm.Get("uuid")
	if !validUUID(uuid) {
		http.Error(w, "invalid uuid", http.StatusBadRequest)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(r.PostForm.Get("signature"))
	if err != nil {
		http.Error(w, "signature is not base64", http.StatusBadRequest)
		return
	}
	if !hmac.Equal(sig, s.sign(uuid, []byte(r.PostForm.Get("content")))) {
		http.Error(w, "signature does not verify", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", textPlain)
	w.WriteHeader(http.StatusOK)
}

func (s *Service) serveApp(w http.ResponseWriter, rest string, pod *Registration) {
	name, entry, _ := strings.Cut(rest, "/")
	ra := pod.Manifest.Apps.Get(types.ACName(name))
	app, ok := pod.Apps[name]
	if ra == nil || !ok {
		http.Error(w, "no such app in this pod", http.StatusNotFound)
		return
	}
	switch entry {
	case "annotations":
		// The image's annotations, overridden by the pod manifest's.
		merged := types.Annotations{}
		for _, a := range app.ImageManifest.Annotations {
			merged.Set(a.Name, a.Value)
		}
		for _, a := range ra.Annotations {
			merged.Set(a.Name, a.Value)
		}
		writeJSON(w, annotationsOrEmpty(merged))
	case "image/manifest":
		writeJSON(w, app.ImageManifest)
	case "image/id":
		writeText(w, app.ImageID)
	default:
		http.Error(w, "unknown app entry", http.StatusNotFound)
	}
}

func annotationsOrEmpty(a types.Annotations) types.Annotations {
	if a == nil {
		return types.Annotations{}
	}
	return a
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", appJSON)
	w.Write(b)
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", textPlain)
	io.WriteString(w, s)
}

// RegistrationHandler serves the registration API on the unix socket:
//
//	PUT    /pods/UUID   body: Registration JSON
//	PUT    /pods/UUID/ips  body: the pod's addresses, JSON list
//	DELETE /pods/UUID
//	GET    /pods        the registered UUIDs
//	GET    /info        the service's TCP port
func (s *Service) RegistrationHandler(port int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /pods/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		var reg Registration
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&reg); err != nil {
			http.Error(w, "bad registration: "+err.Error(), http.StatusBadRequest)
			return
		}
		if reg.UUID != r.PathValue("uuid") {
			http.Error(w, "UUID in path and body differ", http.StatusBadRequest)
			return
		}
		if err := s.reg.Add(&reg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Printf("registered pod %s", reg.UUID)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /pods/{uuid}/ips", func(w http.ResponseWriter, r *http.Request) {
		var ips []string
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ips); err != nil {
			http.Error(w, "bad address list: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.reg.SetIPs(r.PathValue("uuid"), ips); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ErrNoPod) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
			return
		}
		s.log.Printf("pod %s bound to %s", r.PathValue("uuid"), strings.Join(ips, ", "))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /pods/{uuid}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.reg.Remove(r.PathValue("uuid")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.log.Printf("unregistered pod %s", r.PathValue("uuid"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, r *http.Request) {
		var uuids []string
		for _, reg := range s.reg.List() {
			uuids = append(uuids, reg.UUID)
		}
		writeJSON(w, uuids)
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Info{Port: port})
	})
	return mux
}

// Info describes a running service to its clients.
type Info struct {
	Port int `json:"port"`
}
