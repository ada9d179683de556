package main

// Docker/OCI figures: a ~100 MB image of real files (from /usr/lib) in
// three gzip layers, fetched with rkt from a registry in this process and
// from an OCI layout directory, each into a fresh store (download, two-pass
// flattening, ACI hashing and blob write included). The reference is what a
// minimal puller does with the same blobs: curl each layer and unpack it
// with tar -xz (or only tar -xz, for the layout).

import (
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ot "github.com/rktng/rkt/pkg/ociconv/ocitest"
)

func init() {
	addFigure(figure{name: "docker: fetch 100 MB image, 3 layers, local registry (pull + convert + import)", order: 450,
		goal: "within 2x of curl | tar -xz",
		run:  dockerRegistryFigure})
	addFigure(figure{name: "docker: oci: 100 MB image layout (convert + import)", order: 451,
		goal: "within 2x of tar -xz",
		run:  dockerLayoutFigure})
}

// dockerBench is built once and shared by both figures.
var dockerBench struct {
	img    v1.Image
	layout string
	err    error
}

func dockerBenchImage(b *bench) (v1.Image, string, error) {
	if dockerBench.img != nil || dockerBench.err != nil {
		return dockerBench.img, dockerBench.layout, dockerBench.err
	}
	img, err := buildDockerBenchImage(100 << 20)
	if err == nil {
		dir := filepath.Join(b.work, "oci-layout")
		var p layout.Path
		if p, err = layout.Write(dir, empty.Index); err == nil {
			err = p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"}))
		}
		dockerBench.layout = dir
	}
	dockerBench.img, dockerBench.err = img, err
	return img, dockerBench.layout, err
}

// buildDockerBenchImage packs regular files of /usr/lib (in walk order, so
// the same machine gives the same image) into three layers of about a
// third of size each.
func buildDockerBenchImage(size int64) (v1.Image, error) {
	var layers []v1.Layer
	var cur []ot.Entry
	var curSize, total int64
	flush := func() {
		if len(cur) > 0 {
			layers = append(layers, ot.LayerFromTar(true, ot.Tar(cur...)))
		}
		cur, curSize = nil, 0
	}
	err := filepath.WalkDir("/usr/lib", func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= size {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 16<<20 {
			return nil
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		cur = append(cur, ot.Entry{Name: strings.TrimPrefix(p, "/"), Body: string(body), Mode: int64(fi.Mode().Perm())})
		curSize += fi.Size()
		total += fi.Size()
		if curSize >= size/3 {
			flush()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	if total < size/2 {
		return nil, fmt.Errorf("only %d bytes of files under /usr/lib", total)
	}
	return ot.Image(true, v1.Config{Cmd: []string{"/bin/true"}}, layers...)
}

func dockerRegistryFigure(b *bench) (sample, sample, error) {
	img, _, err := dockerBenchImage(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return sample{}, sample{}, fmt.Errorf("curl not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{}, sample{}, err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	host := ln.Addr().String()
	ref, err := name.ParseReference(host+"/bench/big:1", name.Insecure)
	if err != nil {
		return sample{}, sample{}, err
	}
	if err := remote.Write(ref, img, remote.WithTransport(http.DefaultTransport)); err != nil {
		return sample{}, sample{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return sample{}, sample{}, err
	}
	var script strings.Builder
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return sample{}, sample{}, err
		}
		fmt.Fprintf(&script, "curl -fsS http://%s/v2/bench/big/blobs/%s | tar -xzf - -C \"$1\" || exit 1\n", host, d)
	}
	runs := min(b.runs, 5)
	ours, err := median(runs, func() error {
		return rktFetchFresh(b, "--insecure-options=image,http", "docker://"+host+"/bench/big:1")
	})
	if err != nil {
		return sample{}, sample{}, err
	}
	ref2, err := median(runs, func() error { return shellInFreshDir(b, script.String()) })
	if err != nil {
		return sample{}, sample{}, err
	}
	return sample{"rkt fetch docker://", ours}, sample{"curl | tar -xz", ref2}, nil
}

func dockerLayoutFigure(b *bench) (sample, sample, error) {
	img, dir, err := dockerBenchImage(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return sample{}, sample{}, err
	}
	var script strings.Builder
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return sample{}, sample{}, err
		}
		fmt.Fprintf(&script, "tar -xzf %s -C \"$1\" || exit 1\n", filepath.Join(dir, "blobs", d.Algorithm, d.Hex))
	}
	runs := min(b.runs, 5)
	ours, err := median(runs, func() error { return rktFetchFresh(b, "--insecure-options=image", "oci:"+dir+":1") })
	if err != nil {
		return sample{}, sample{}, err
	}
	ref, err := median(runs, func() error { return shellInFreshDir(b, script.String()) })
	if err != nil {
		return sample{}, sample{}, err
	}
	return sample{"rkt fetch oci:", ours}, sample{"tar -xz", ref}, nil
}

// rktFetchFresh fetches into a new store, so nothing is cached.
func rktFetchFresh(b *bench, insecure, ref string) error {
	dir, err := os.MkdirTemp(b.work, "docker-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(b.rkt(), "--dir="+dir, "--local-config="+dir, "--system-config="+dir, "--user-config="+dir, insecure, "fetch", ref)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rkt fetch: %v: %s", err, out)
	}
	return nil
}

// shellInFreshDir runs script with $1 a new empty directory.
func shellInFreshDir(b *bench, script string) error {
	dir, err := os.MkdirTemp(b.work, "docker-ref-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command("bash", "-c", script, "bash", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("reference: %v: %s", err, out)
	}
	return nil
}
