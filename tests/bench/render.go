package main

// Store figures: importing and rendering a ~100 MB gzip ACI through the
// store API (what `rkt fetch` + the first `rkt run` of an image do), beside
// GNU `tar -xzf` of the same file in the same run; and a tree-store hit
// (the second render of the same image).

import (
	"archive/tar"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/rktng/rkt/store"
)

func init() {
	addFigure(figure{name: "store: import+render 100MB gzip ACI", order: 100,
		goal: "within 1.2x of tar -xzf",
		run:  func(b *bench) (sample, sample, error) { return renderFigure(b, false) }})
	addFigure(figure{name: "store: render, tree store hit", order: 101,
		goal: "< 10ms (an index read is the floor)",
		run:  func(b *bench) (sample, sample, error) { return renderFigure(b, true) }})
}

// benchACI makes (once per bench run) a gzip ACI of about 100 MB: a few
// thousand files from 200 bytes to 8 MB, text-like content that gzip
// shrinks two to three times, as real root filesystems do.
func benchACI(b *bench) (string, error) {
	p := b.tmp("render-bench.aci")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	tw := tar.NewWriter(zw)
	mt := time.Unix(1600000000, 0)
	manifest := []byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/bench"}`)
	hdrs := []*tar.Header{
		{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), ModTime: mt, Typeflag: tar.TypeReg},
		{Name: "rootfs", Mode: 0o755, ModTime: mt, Typeflag: tar.TypeDir},
	}
	if err := tw.WriteHeader(hdrs[0]); err != nil {
		return "", err
	}
	tw.Write(manifest)
	if err := tw.WriteHeader(hdrs[1]); err != nil {
		return "", err
	}
	rng := rand.New(rand.NewSource(1))
	words := make([][]byte, 2048)
	for i := range words {
		w := make([]byte, 3+rng.Intn(9))
		for j := range w {
			w[j] = byte('a' + rng.Intn(26))
		}
		words[i] = append(w, ' ')
	}
	// Content: words from a small vocabulary with random bytes mixed in.
	fill := func(buf []byte) {
		for i := 0; i < len(buf); {
			if rng.Intn(24) == 0 {
				n := min(len(buf)-i, 8)
				for j := 0; j < n; j++ {
					buf[i+j] = byte(rng.Intn(256))
				}
				i += n
				continue
			}
			i += copy(buf[i:], words[rng.Intn(len(words))])
		}
	}
	var total int64
	const target = 250 << 20 // uncompressed; about 100 MB compressed
	for d := 0; total < target; d++ {
		dir := fmt.Sprintf("rootfs/d%03d", d)
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: mt, Typeflag: tar.TypeDir}); err != nil {
			return "", err
		}
		for i := 0; i < 40 && total < target; i++ {
			size := 200 + rng.Intn(16<<10)
			switch rng.Intn(20) {
			case 0:
				size = 1<<20 + rng.Intn(7<<20)
			case 1, 2, 3:
				size = 64<<10 + rng.Intn(256<<10)
			}
			buf := make([]byte, size)
			fill(buf)
			hdr := &tar.Header{Name: fmt.Sprintf("%s/f%03d", dir, i), Mode: 0o644, Size: int64(size), ModTime: mt, Typeflag: tar.TypeReg}
			if err := tw.WriteHeader(hdr); err != nil {
				return "", err
			}
			if _, err := tw.Write(buf); err != nil {
				return "", err
			}
			total += int64(size)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return p, os.Rename(p+".tmp", p)
}

// renderResult holds one measurement shared by both figures.
var renderResult struct {
	done                 bool
	ours, hit, ref, info sample
	err                  error
}

func renderFigure(b *bench, hit bool) (sample, sample, error) {
	r := &renderResult
	if !r.done {
		r.ours, r.hit, r.ref, r.info, r.err = renderRuns(b)
		r.done = true
	}
	if hit {
		return r.hit, r.info, r.err
	}
	return r.ours, r.ref, r.err
}

// renderRuns returns ImportFile+Render, a tree hit, tar -xzf, and one
// index lookup (the floor under any store operation, the hit's reference).
func renderRuns(b *bench) (sample, sample, sample, sample, error) {
	aci, err := benchACI(b)
	if err != nil {
		return sample{}, sample{}, sample{}, sample{}, err
	}
	fi, _ := os.Stat(aci)
	runs := min(b.runs, 3)
	ctx := context.Background()
	var ours, ref, hits, infos []time.Duration
	for i := 0; i < runs; i++ {
		// Alternate the two so neither always runs on a warmer machine.
		dir := b.tmp(fmt.Sprintf("store-%d", i))
		start := time.Now()
		s, err := store.Open(dir)
		if err != nil {
			return sample{}, sample{}, sample{}, sample{}, err
		}
		info, err := s.ImportFile(ctx, aci, store.ImportOptions{})
		if err != nil {
			return sample{}, sample{}, sample{}, sample{}, err
		}
		if _, err := s.Render(ctx, info.ID); err != nil {
			return sample{}, sample{}, sample{}, sample{}, err
		}
		ours = append(ours, time.Since(start))
		for j := 0; j < 5; j++ {
			start = time.Now()
			if _, err := s.Render(ctx, info.ID); err != nil {
				return sample{}, sample{}, sample{}, sample{}, err
			}
			hits = append(hits, time.Since(start))
			start = time.Now()
			if _, err := s.Info(info.ID); err != nil {
				return sample{}, sample{}, sample{}, sample{}, err
			}
			infos = append(infos, time.Since(start))
		}
		os.RemoveAll(dir)

		out := b.tmp(fmt.Sprintf("tar-%d", i))
		os.MkdirAll(out, 0o755)
		start = time.Now()
		if o, err := exec.Command("tar", "-xzf", aci, "-C", out).CombinedOutput(); err != nil {
			return sample{}, sample{}, sample{}, sample{}, fmt.Errorf("tar: %v: %s", err, o)
		}
		ref = append(ref, time.Since(start))
		os.RemoveAll(out)
	}
	refS := sample{label: fmt.Sprintf("tar -xzf (%d MB gz)", fi.Size()>>20), value: med(ref)}
	return sample{label: "ImportFile+Render", value: med(ours)}, sample{label: "Render (hit)", value: med(hits)}, refS,
		sample{label: "store.Info (one index read)", value: med(infos)}, nil
}

func med(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}
