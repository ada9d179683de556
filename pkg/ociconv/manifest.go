package ociconv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotation names docker2aci gave converted images; rkt and its users keyed
// on them (appc.io/docker/repository marks an image as converted).
const (
	AnnotationOriginalName   = "appc.io/docker/originalname"
	AnnotationRegistryURL    = "appc.io/docker/registryurl"
	AnnotationRepository     = "appc.io/docker/repository"
	AnnotationTag            = "appc.io/docker/tag"
	AnnotationImageID        = "appc.io/docker/imageid"
	AnnotationManifestDigest = "appc.io/docker/manifesthash"
	AnnotationEntrypoint     = "appc.io/docker/entrypoint"
	AnnotationCmd            = "appc.io/docker/cmd"
	// AnnotationLayoutPath marks an image converted from an OCI layout.
	AnnotationLayoutPath = "appc.io/oci/layout"
)

// ImageName is the ACI name of an image from registry/repository: the two
// joined and made a valid ACIdentifier ("127.0.0.1:5000/a/b" becomes
// "127.0.0.1_5000/a/b"). The fetcher uses it to find an image already in the
// store before pulling.
func ImageName(registry, repository string) (types.ACIdentifier, error) {
	full := repository
	if registry != "" {
		full = registry + "/" + repository
	}
	s, err := types.SanitizeACIdentifier(full)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", full, err)
	}
	return types.ACIdentifier(s), nil
}

// buildManifest maps the image config onto an ACI image manifest.
func buildManifest(src Source, cfg *v1.ConfigFile, configDigest string, small map[string][]byte) (*schema.ImageManifest, error) {
	name := types.ACIdentifier(src.Name)
	if name == "" {
		n, err := ImageName(src.Registry, src.Repository)
		if err != nil {
			return nil, err
		}
		name = n
	}
	im := schema.BlankImageManifest()
	im.Name = name

	var labels types.Labels
	if src.Tag != "" {
		labels = append(labels, types.Label{Name: "version", Value: src.Tag})
	}
	goOS, goArch := cfg.OS, cfg.Architecture
	if goOS == "" {
		goOS = "linux"
	}
	if goOS != "" && goArch != "" {
		aos, aarch, err := types.ToAppcOSArch(goOS, goArch, strings.TrimPrefix(cfg.Variant, "v"))
		if err != nil {
			// An architecture appc has no name for keeps Go's name rather
			// than failing the whole conversion.
			aos, aarch = goOS, goArch
		}
		labels = append(labels, types.Label{Name: "os", Value: aos}, types.Label{Name: "arch", Value: aarch})
	} else {
		labels = append(labels, types.Label{Name: "os", Value: goOS})
	}
	im.Labels = labels

	c := cfg.Config
	app := &types.App{}
	app.Exec = append(append(types.Exec{}, c.Entrypoint...), c.Cmd...)
	app.User, app.Group = userGroup(c.User, small)
	if c.WorkingDir != "" {
		app.WorkingDirectory = path.Join("/", c.WorkingDir)
	}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		app.Environment.Set(k, v)
	}
	// Docker allows names appc refuses; drop those so the manifest stays valid.
	app.Environment = validEnv(app.Environment)
	ports, err := exposedPorts(c.ExposedPorts)
	if err != nil {
		return nil, err
	}
	app.Ports = ports
	app.MountPoints = volumes(c.Volumes)
	im.App = app

	var ann types.Annotations
	add := func(k, v string) {
		if v != "" {
			ann.Set(types.ACIdentifier(k), v)
		}
	}
	if !cfg.Created.IsZero() {
		add("created", cfg.Created.UTC().Format(time.RFC3339Nano))
	}
	add("author", cfg.Author)
	add(AnnotationOriginalName, src.Original)
	add(AnnotationRegistryURL, src.Registry)
	add(AnnotationRepository, src.Repository)
	add(AnnotationTag, src.Tag)
	add(AnnotationManifestDigest, src.Digest)
	add(AnnotationImageID, configDigest)
	add(AnnotationLayoutPath, src.LayoutPath)
	if len(c.Entrypoint) > 0 {
		b, _ := json.Marshal(c.Entrypoint)
		add(AnnotationEntrypoint, string(b))
	}
	if len(c.Cmd) > 0 {
		b, _ := json.Marshal(c.Cmd)
		add(AnnotationCmd, string(b))
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, err := types.SanitizeACIdentifier(k)
		if err != nil {
			continue
		}
		if _, taken := ann.Get(s); taken {
			continue
		}
		add(s, c.Labels[k])
	}
	im.Annotations = ann
	return im, nil
}

func validEnv(env types.Environment) types.Environment {
	out := types.Environment{}
	for _, ev := range env {
		if envName(ev.Name) {
			out = append(out, ev)
		}
	}
	return out
}

// envName matches appc's pattern for environment variable names.
func envName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z'):
		case i > 0 && ((r >= '0' && r <= '9') || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return s != ""
}

// userGroup maps Docker's USER ("name", "uid", "name:group", "uid:gid") to
// appc's user and group. Without a group, Docker runs with the user's
// primary group from the image's /etc/passwd, or 0 when it has none.
func userGroup(spec string, small map[string][]byte) (string, string) {
	if spec == "" {
		return "0", "0"
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" {
		user = "0"
	}
	if hasGroup && group != "" {
		return user, group
	}
	return user, primaryGroup(user, small["etc/passwd"])
}

func primaryGroup(user string, passwd []byte) string {
	_, numErr := strconv.ParseUint(user, 10, 32)
	s := bufio.NewScanner(bytes.NewReader(passwd))
	for s.Scan() {
		f := strings.Split(s.Text(), ":")
		if len(f) < 4 {
			continue
		}
		if (numErr == nil && f[2] == user) || (numErr != nil && f[0] == user) {
			if _, err := strconv.ParseUint(f[3], 10, 32); err == nil {
				return f[3]
			}
		}
	}
	return "0"
}

// exposedPorts turns "80/tcp", "53/udp", "8080" and ranges "7000-7010/tcp"
// into appc ports named PORT-PROTO (e.g. 80-tcp), sorted by number.
func exposedPorts(exposed map[string]struct{}) ([]types.Port, error) {
	var ports []types.Port
	for spec := range exposed {
		num, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		lo, hi, isRange := strings.Cut(num, "-")
		start, err := strconv.ParseUint(lo, 10, 16)
		if err != nil || start == 0 {
			return nil, fmt.Errorf("exposed port %q: bad number", spec)
		}
		end := start
		if isRange {
			end, err = strconv.ParseUint(hi, 10, 16)
			if err != nil || end < start {
				return nil, fmt.Errorf("exposed port %q: bad range", spec)
			}
		}
		name, err := types.SanitizeACName(num + "-" + proto)
		if err != nil {
			return nil, fmt.Errorf("exposed port %q: %w", spec, err)
		}
		ports = append(ports, types.Port{
			Name: types.ACName(name), Protocol: proto,
			Port: uint(start), Count: uint(end - start + 1),
		})
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].Port != ports[j].Port {
			return ports[i].Port < ports[j].Port
		}
		return ports[i].Protocol < ports[j].Protocol
	})
	return ports, nil
}

// volumes turns Docker's VOLUME paths into mount points named after the
// path (volume-var-lib-data), as docker2aci did.
func volumes(vols map[string]struct{}) []types.MountPoint {
	paths := make([]string, 0, len(vols))
	for p := range vols {
		paths = append(paths, path.Join("/", p))
	}
	sort.Strings(paths)
	var mps []types.MountPoint
	seen := map[types.ACName]bool{}
	for _, p := range paths {
		n, err := types.SanitizeACName("volume-" + strings.Trim(p, "/"))
		if err != nil || seen[types.ACName(n)] {
			continue
		}
		seen[types.ACName(n)] = true
		mps = append(mps, types.MountPoint{Name: types.ACName(n), Path: p})
	}
	return mps
}
