package fetch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestSplitLayoutRef(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "dir:with-colon")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string][3]string{
		"/a/b":                      {"/a/b", "", ""},
		"/a/b:1.0":                  {"/a/b", "1.0", ""},
		"./rel:latest":              {"./rel", "latest", ""},
		"/a/b@sha256:abc":           {"/a/b", "", "sha256:abc"},
		"/a:b/c":                    {"/a:b/c", "", ""},
		existing:                    {existing, "", ""},
		existing + ":tag":           {existing, "tag", ""},
		"/x/y@sha256:00:not-a-tag?": {"/x/y", "", "sha256:00:not-a-tag?"},
	} {
		d, tag, dg := splitLayoutRef(in)
		if got := [3]string{d, tag, dg}; got != want {
			t.Errorf("splitLayoutRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPickLayoutManifest(t *testing.T) {
	newLayout := func(tags ...string) (v1.ImageIndex, []string) {
		t.Helper()
		p, err := layout.Write(t.TempDir(), empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		var digests []string
		for i, tag := range tags {
			// Distinct images, so that each tag has its own digest.
			img, err := mutate.Config(empty.Image, v1.Config{Cmd: []string{fmt.Sprint(i)}})
			if err != nil {
				t.Fatal(err)
			}
			var opts []layout.Option
			if tag != "" {
				opts = append(opts, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
			}
			if err := p.AppendImage(img, opts...); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			digests = append(digests, d.String())
		}
		idx, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		return idx, digests
	}
	idx, digests := newLayout("1.0", "example.com/app:2.0")
	if got, err := pickLayoutManifest(idx, "2.0", ""); err != nil || got.Digest.String() != digests[1] {
		t.Errorf("tag 2.0 (in a full reference): %v %v", got.Digest, err)
	}
	if got, err := pickLayoutManifest(idx, "", digests[0]); err != nil || got.Digest.String() != digests[0] {
		t.Errorf("by digest: %v %v", got.Digest, err)
	}
	if _, err := pickLayoutManifest(idx, "", ""); err == nil || !strings.Contains(err.Error(), "holds 2 images") {
		t.Errorf("no tag with two images: %v", err)
	}
	if _, err := pickLayoutManifest(idx, "3", ""); err == nil || !strings.Contains(err.Error(), "1.0, example.com/app:2.0") {
		t.Errorf("unknown tag: %v", err)
	}
	if _, err := pickLayoutManifest(idx, "", "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("an unknown digest was found")
	}
	one, digests := newLayout("")
	if got, err := pickLayoutManifest(one, "", ""); err != nil || got.Digest.String() != digests[0] {
		t.Errorf("the only image: %v %v", got.Digest, err)
	}
}
