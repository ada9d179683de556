package main

// Tree-check figures: what checking a rendered tree before a pod uses it
// costs (the stat fingerprint; --insecure-options=ondisk skips it), beside
// what rkt v1.30 paid without ondisk: re-hashing the tree's whole content
// on every start (here `store.VerifyTree`, which `rkt image verify` runs).

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rktng/rkt/store"
)

func init() {
	addFigure(figure{name: "fly: rkt run inspect, trees checked before use (default)", order: 310,
		goal: "~1x the run with ondisk (the check reads no content)", run: flyTreeCheckFigure})
	addFigure(figure{name: "store: Render hit of the inspect tree, with its check", order: 311,
		goal: "far below a full re-hash (rkt v1.30's cost per start without ondisk)", run: renderCheckFigure})
}

func flyTreeCheckFigure(b *bench) (sample, sample, error) {
	f, err := setupFly(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	stage1 := "--stage1-name=rktng.io/rkt/stage1-fly"
	args := f.runArgs(stage1)
	ondisk := append([]string{"--insecure-options=ondisk"}, args...)
	// Alternate the two so that a busy moment of the machine hits both.
	c, t, err := alternate(b.runs, func() error { _, err := f.rkt(args...); return err },
		func() error { _, err := f.rkt(ondisk...); return err })
	return sample{value: c}, sample{label: "same, --insecure-options=ondisk", value: t}, err
}

// alternate runs a and b n times each, one after the other, and returns
// their medians.
func alternate(n int, a, b func() error) (time.Duration, time.Duration, error) {
	var da, db []time.Duration
	for i := 0; i < n; i++ {
		for _, x := range []struct {
			fn func() error
			d  *[]time.Duration
		}{{a, &da}, {b, &db}} {
			start := time.Now()
			if err := x.fn(); err != nil {
				return 0, 0, err
			}
			*x.d = append(*x.d, time.Since(start))
		}
	}
	return med(da), med(db), nil
}

func renderCheckFigure(b *bench) (sample, sample, error) {
	f, err := setupFly(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	s, err := store.Open(f.dir)
	if err != nil {
		return sample{}, sample{}, err
	}
	id, err := s.Resolve(flyInspect)
	if err != nil {
		return sample{}, sample{}, err
	}
	ctx := context.Background()
	treeID := filepath.Base(filepath.Dir(f.rootfs))
	hit, err := median(b.runs, func() error { _, err := s.Render(ctx, id); return err })
	if err != nil {
		return sample{}, sample{}, err
	}
	full, err := median(b.runs, func() error { return s.VerifyTree(treeID) })
	if err != nil {
		return sample{}, sample{}, fmt.Errorf("verify %s: %w", treeID, err)
	}
	return sample{value: hit}, sample{label: "VerifyTree (full content re-hash)", value: full}, nil
}
