package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/rktng/rkt/pkg/config"
)

func TestMaxAge(t *testing.T) {
	for cc, want := range map[string]int{"": 0, "max-age=60": 60, "public, max-age=3600": 3600,
		"no-cache, max-age=60": 0, "max-age=abc": 0, `max-age="5"`: 5} {
		h := http.Header{}
		h.Set("Cache-Control", cc)
		if got := maxAge(h); got != want {
			t.Errorf("%q: %d, want %d", cc, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for ref, want := range map[string]Kind{
		"docker://busybox": KindContainer, "oci:/x:tag": KindContainer, "file:///a.aci": KindFile,
		"https://x/a.aci": KindURL, "http://x/a.aci": KindURL, "sha512-abcd": KindImageID,
		"./a.aci": KindFile, "/nonexistent/a": KindFile, "example.com/app:1.0": KindName, "busybox": KindName,
	} {
		if got := Classify(ref); got != want {
			t.Errorf("%s: %v, want %v", ref, got, want)
		}
	}
}

func TestAuthHeaders(t *testing.T) {
	a := AuthFromConfig(&config.Config{Auth: map[string]config.Auth{"example.com": {Type: config.AuthOAuth, Token: "t"}}})
	if a.Header("example.com:8443").Get("Authorization") != "Bearer t" || a.Header("other.com") != nil {
		t.Fatal("per-domain credentials wrong")
	}
	var none *Auth
	if none.Has("example.com") {
		t.Fatal("nil Auth has credentials")
	}
}

func testTar(t *testing.T, name string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	m := []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"` + name + `"}`)
	_ = tw.WriteHeader(&tar.Header{Name: "rootfs/", Mode: 0o755, Typeflag: tar.TypeDir})
	_ = tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(m))})
	_, _ = tw.Write(m)
	_ = tw.Close()
	return buf.Bytes()
}

func TestManifestName(t *testing.T) {
	raw := testTar(t, "example.com/app")
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(raw)
	_ = gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	for what, data := range map[string][]byte{"tar": raw, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		name, err := manifestName(bytes.NewReader(data))
		if err != nil || name != "example.com/app" {
			t.Errorf("%s: %q %v", what, name, err)
		}
	}
	if _, err := manifestName(strings.NewReader("not a tar at all, not at all, not at all")); err == nil {
		t.Error("garbage has a manifest")
	}
}

// TestDownloadResumes: a server that drops the connection several times
// mid-body; the download ends with every byte, in order.
func TestDownloadResumes(t *testing.T) {
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	var mu sync.Mutex
	cuts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		mu.Lock()
		cut := cuts < 3
		cuts++
		mu.Unlock()
		if cut {
			start := int64(0)
			if rg := r.Header.Get("Range"); rg != "" {
				start, _ = contentRangeStart("bytes " + strings.TrimPrefix(rg, "bytes="))
				w.Header().Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(int64(len(data))-1)+"/"+itoa(int64(len(data))))
				w.Header().Set("Content-Length", itoa(int64(len(data))-start))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Accept-Ranges", "bytes")
				w.Header().Set("Content-Length", itoa(int64(len(data))))
			}
			_, _ = w.Write(data[start : start+300<<10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	f := newFetcher(Config{InsecureAllowHTTP: true})
	d, err := f.openDownload(context.Background(), srv.URL+"/x.aci", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || d.resumes != 3 {
		t.Fatalf("got %d bytes (equal: %v) after %d resumes", len(got), bytes.Equal(got, data), d.resumes)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDownloadStallResumes: a body that stops arriving (connection open,
// no bytes) is abandoned after the stall timeout and resumed.
func TestDownloadStallResumes(t *testing.T) {
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	release := make(chan struct{})
	defer close(release)
	var mu sync.Mutex
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stall := first
		first = false
		mu.Unlock()
		w.Header().Set("ETag", `"s"`)
		if stall {
			w.Header().Set("Accept-Ranges", "bytes")
			w.Header().Set("Content-Length", itoa(int64(len(data))))
			_, _ = w.Write(data[:100<<10])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	f := newFetcher(Config{InsecureAllowHTTP: true, StallTimeout: 300 * time.Millisecond})
	d, err := f.openDownload(context.Background(), srv.URL+"/s.aci", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) || d.resumes != 1 {
		t.Fatalf("err %v, %d bytes, equal %v, %d resumes", err, len(got), bytes.Equal(got, data), d.resumes)
	}
}
