package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rktng/rkt/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (s *Server) openStore() (*store.Store, error) { return store.Open(s.cfg.DataDir) }

// fetchRef is what `rkt fetch` is given for a CRI image reference: a bare
// reference ("busybox", "registry:5000/app:1") is a Docker one; an image
// ID, a path, a URL or an oci: layout is passed as it is.
func fetchRef(ref string) string {
	switch {
	case strings.HasPrefix(ref, "sha512-"), strings.HasPrefix(ref, "/"), strings.Contains(ref, "://"), strings.HasPrefix(ref, "oci:"):
		return ref
	}
	return "docker://" + ref
}

// dockerName is the normalized name of a Docker reference as the fetcher
// records it ("index.docker.io/library/busybox:latest"), or "".
func dockerName(ref string) string {
	r, ok := strings.CutPrefix(fetchRef(ref), "docker://")
	if !ok {
		return ""
	}
	n, err := name.ParseReference(r, name.Insecure)
	if err != nil {
		return ""
	}
	return n.Name()
}

// findImage resolves a CRI image reference (as pulled, or an image ID or
// its prefix) to an image ID in the store; NotFound when it is not there.
func (s *Server) findImage(ref string) (string, error) {
	if ref == "" {
		return "", status.Error(codes.InvalidArgument, "no image")
	}
	st, err := s.openStore()
	if err != nil {
		return "", internal(err)
	}
	if n := dockerName(ref); n != "" {
		if rem, err := st.Remote("docker://" + n); err == nil {
			if _, err := st.Info(rem.ImageID); err == nil {
				return rem.ImageID, nil
			}
		}
	}
	if id, err := st.Resolve(ref); err == nil {
		return id, nil
	}
	if rem, err := st.Remote(ref); err == nil {
		if _, err := st.Info(rem.ImageID); err == nil {
			return rem.ImageID, nil
		}
	}
	return "", notFound("image %q not found", ref)
}

// criImage describes a stored image; its repo tag is the Docker name it
// was pulled by, if it was.
func criImage(info store.ImageInfo) *runtimeapi.Image {
	img := &runtimeapi.Image{Id: info.ID, Size: uint64(info.Size), Spec: &runtimeapi.ImageSpec{Image: info.ID}}
	if tag, ok := strings.CutPrefix(info.SourceURL, "docker://"); ok {
		if strings.Contains(tag, "@") {
			img.RepoDigests = []string{tag}
		} else {
			img.RepoTags = []string{tag}
		}
	} else if info.Name != "" {
		t := info.Name
		if v := info.Version(); v != "" {
			t += ":" + v
		}
		img.RepoTags = []string{t}
	}
	return img
}

// isStage1 tells a stage1 image by its run entrypoint annotation.
func isStage1(info store.ImageInfo) bool {
	var m struct {
		Annotations []struct {
			Name string `json:"name"`
		} `json:"annotations"`
	}
	if json.Unmarshal(info.Manifest, &m) != nil {
		return false
	}
	for _, a := range m.Annotations {
		if a.Name == "coreos.com/rkt/stage1/run" {
			return true
		}
	}
	return false
}

// PullImage fetches the image into the store (`rkt fetch`, pull policy
// update) and returns its image ID.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, status.Error(codes.InvalidArgument, "no image")
	}
	args := []string{"fetch", "--pull-policy=update", "--full", fetchRef(ref)}
	if a := req.GetAuth(); a != nil && (a.Username != "" || a.Password != "" || a.Auth != "" || a.IdentityToken != "" || a.RegistryToken != "") {
		dir, err := s.pullCredentials(ref, a)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		args = append([]string{"--user-config=" + dir}, args...)
	}
	out, err := s.rkt(ctx, args...)
	if err != nil {
		return nil, internal(err)
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return nil, internal(errors.New("rkt fetch printed no image ID"))
	}
	return &runtimeapi.PullImageResponse{ImageRef: lines[len(lines)-1]}, nil
}

// ImageStatus describes the image, or nothing when it is not stored.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	id, err := s.findImage(req.GetImage().GetImage())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := s.openStore()
	if err != nil {
		return nil, internal(err)
	}
	info, err := st.Info(id)
	if err != nil {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	return &runtimeapi.ImageStatusResponse{Image: criImage(info)}, nil
}

// ListImages lists the stored images (only the one the filter names, if
// it names one).
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	st, err := s.openStore()
	if err != nil {
		return nil, internal(err)
	}
	want := ""
	if ref := req.GetFilter().GetImage().GetImage(); ref != "" {
		if want, err = s.findImage(ref); err != nil {
			return &runtimeapi.ListImagesResponse{}, nil
		}
	}
	infos, err := st.List()
	if err != nil {
		return nil, internal(err)
	}
	var out []*runtimeapi.Image
	for _, info := range infos {
		if isStage1(info) {
			// The runtime's own, not a container's: a kubelet's image
			// gc must not count it as unused.
			continue
		}
		if want == "" || info.ID == want {
			out = append(out, criImage(info))
		}
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// RemoveImage removes the image from the store (`rkt image rm`). An image
// already gone is not an error.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	id, err := s.findImage(req.GetImage().GetImage())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.rkt(ctx, "image", "rm", id); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the space and inodes the store uses.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	dir := filepath.Join(s.cfg.DataDir, "cas")
	var bytes, inodes uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed meanwhile
		}
		inodes++
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			bytes += uint64(fi.Size())
		}
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	u := &runtimeapi.FilesystemUsage{Timestamp: time.Now().UnixNano(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
		UsedBytes: &runtimeapi.UInt64Value{Value: bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes}}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{u}}, nil
}

// pullCredentials writes the credentials of one pull (a Kubernetes image
// pull secret) as an rkt configuration directory of their own, for the
// --user-config of that one `rkt fetch`: the user configuration is the
// one that overrides the others, and nothing else of it matters to a
// pull. It names the image's registry (and server_address, if given) in
// a dockerAuth file, and the same host in an auth file for images fetched
// over HTTPS. The caller removes the directory.
func (s *Server) pullCredentials(ref string, a *runtimeapi.AuthConfig) (string, error) {
	user, pass := a.Username, a.Password
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", status.Error(codes.InvalidArgument, "auth is not base64")
		}
		var ok bool
		if user, pass, ok = strings.Cut(string(b), ":"); !ok {
			return "", status.Error(codes.InvalidArgument, "auth is not base64 of USER:PASSWORD")
		}
	}
	// Docker's config.json (and so a pull secret) may carry a user name
	// beside a token ("<token>" with an identity token): the token is
	// what counts.
	docker := map[string]string{"user": user, "password": pass}
	switch {
	case a.RegistryToken != "":
		docker = map[string]string{"registryToken": a.RegistryToken}
	case a.IdentityToken != "":
		docker = map[string]string{"identityToken": a.IdentityToken}
	case user == "" || pass == "":
		return "", status.Error(codes.InvalidArgument, "pull credentials need a user name and a password, an identity token or a registry token")
	}
	var hosts []string
	if r, ok := strings.CutPrefix(fetchRef(ref), "docker://"); ok {
		if n, err := name.ParseReference(r, name.Insecure); err == nil {
			hosts = append(hosts, n.Context().RegistryStr())
		}
	} else if u, err := url.Parse(ref); err == nil && u.Host != "" {
		hosts = append(hosts, u.Host)
	}
	if sa := a.ServerAddress; sa != "" {
		if u, err := url.Parse(sa); err == nil && u.Host != "" {
			sa = u.Host
		}
		if sa = strings.TrimSuffix(sa, "/"); sa != "" && (len(hosts) == 0 || hosts[0] != sa) {
			hosts = append(hosts, sa)
		}
	}
	if len(hosts) == 0 {
		return "", status.Errorf(codes.InvalidArgument, "image %q names no registry for the pull credentials", ref)
	}
	dir, err := os.MkdirTemp(s.cfg.StateDir, "pull-")
	if err != nil {
		return "", internal(err)
	}
	files := map[string]any{
		"docker.json": map[string]any{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": hosts, "credentials": docker},
	}
	// Images fetched over HTTPS from the same host: the same user and
	// password, or a registry token as an OAuth bearer token (an identity
	// token means nothing outside a registry's token service).
	switch {
	case a.RegistryToken != "":
		files["https.json"] = map[string]any{"rktKind": "auth", "rktVersion": "v1", "domains": hosts, "type": "oauth",
			"credentials": map[string]string{"token": a.RegistryToken}}
	case a.IdentityToken == "":
		files["https.json"] = map[string]any{"rktKind": "auth", "rktVersion": "v1", "domains": hosts, "type": "basic", "credentials": docker}
	}
	if err := os.Mkdir(filepath.Join(dir, "auth.d"), 0o700); err != nil {
		os.RemoveAll(dir)
		return "", internal(err)
	}
	for f, v := range files {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, "auth.d", f), b, 0o600); err != nil {
			os.RemoveAll(dir)
			return "", internal(err)
		}
	}
	return dir, nil
}
