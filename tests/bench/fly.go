package main

// Fly figures: a whole pod with the fly stage1, `rkt run inspect --exec
// /bin/true` from start to exit (image lookup, pod directory, overlays in
// a private namespace, stage1 exec, app, exit status), beside the bare
// process costs it contains: chroot into the same rootfs, with and
// without a private mount namespace. Stage1 named by path (re-stat, no
// re-hash) and from the store; and once 200 exited pods exist.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func init() {
	addFigure(figure{name: "fly: rkt run inspect --exec /bin/true, --stage1-path", order: 300,
		goal: "< 25 ms median (rkt v1.30 fly: 88 ms)", run: flyPathFigure})
	addFigure(figure{name: "fly: same, stage1 named from the store", order: 301,
		goal: "< 25 ms median (rkt v1.30 fly: 34 ms)", run: flyNameFigure})
	addFigure(figure{name: "fly: same, after 200 exited pods", order: 302,
		goal: "flat: ~1x the same run with no pods", run: flyManyPodsFigure})
}

const flyInspect = "rktng.io/test/inspect"

// flyBench is one data directory with the inspect image fetched and the
// fly stage1 imported, shared by the fly figures.
type flyBench struct {
	b      *bench
	dir    string
	rootfs string // the inspect image's rendered tree
}

var flyState *flyBench

func setupFly(b *bench) (*flyBench, error) {
	if flyState != nil {
		return flyState, nil
	}
	f := &flyBench{b: b, dir: b.tmp("fly")}
	if _, err := f.rkt("--insecure-options=image", "fetch", b.image("inspect.aci")); err != nil {
		return nil, err
	}
	// The first pod imports the stage1 and renders both trees.
	if _, err := f.rkt(f.runArgs("--stage1-path=" + b.image("stage1-fly.aci"))...); err != nil {
		return nil, err
	}
	trees, _ := filepath.Glob(filepath.Join(f.dir, "cas", "tree", "*", "rootfs", "inspect"))
	if len(trees) != 1 {
		return nil, fmt.Errorf("inspect tree not found (%d candidates)", len(trees))
	}
	f.rootfs = filepath.Dir(trees[0])
	if err := f.gc(); err != nil {
		return nil, err
	}
	flyState = f
	return f, nil
}

func (f *flyBench) rkt(args ...string) (string, error) {
	cmd := exec.Command(f.b.rkt(), append([]string{"--dir=" + f.dir,
		"--local-config=" + f.dir + "/lc", "--system-config=" + f.dir + "/sc", "--user-config=" + f.dir + "/uc"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("rkt %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (f *flyBench) runArgs(stage1 string) []string {
	return []string{"run", stage1, flyInspect, "--exec", "/bin/true"}
}

func (f *flyBench) gc() error {
	_, err := f.rkt("gc", "--grace-period=0s")
	return err
}

// medianRun is the median of b.runs pods; they are collected afterwards
// so that figures do not weigh on each other.
func (f *flyBench) medianRun(stage1 string) (sample, error) {
	args := f.runArgs(stage1)
	d, err := median(f.b.runs, func() error { _, err := f.rkt(args...); return err })
	if err != nil {
		return sample{}, err
	}
	return sample{value: d}, f.gc()
}

func (f *flyBench) chroot(label string, argv ...string) (sample, error) {
	d, err := median(f.b.runs, func() error {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", label, err, out)
		}
		return nil
	})
	return sample{label: label, value: d}, err
}

func flyPathFigure(b *bench) (sample, sample, error) {
	f, err := setupFly(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	ours, err := f.medianRun("--stage1-path=" + b.image("stage1-fly.aci"))
	if err != nil {
		return sample{}, sample{}, err
	}
	ref, err := f.chroot("chroot ROOTFS /bin/true", "chroot", f.rootfs, "/bin/true")
	return ours, ref, err
}

func flyNameFigure(b *bench) (sample, sample, error) {
	f, err := setupFly(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	ours, err := f.medianRun("--stage1-name=rktng.io/rkt/stage1-fly")
	if err != nil {
		return sample{}, sample{}, err
	}
	ref, err := f.chroot("unshare -m chroot ROOTFS /bin/true", "unshare", "-m", "chroot", f.rootfs, "/bin/true")
	return ours, ref, err
}

// flyManyPodsFigure measures a pod's cost once 200 exited pods sit in the
// data directory, against the same command with none, in the same run.
func flyManyPodsFigure(b *bench) (sample, sample, error) {
	f, err := setupFly(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	stage1 := "--stage1-name=rktng.io/rkt/stage1-fly"
	empty, err := f.medianRun(stage1)
	if err != nil {
		return sample{}, sample{}, err
	}
	for i := 0; i < 200; i++ {
		if _, err := f.rkt(f.runArgs(stage1)...); err != nil {
			return sample{}, sample{}, err
		}
	}
	if n, _ := os.ReadDir(filepath.Join(f.dir, "pods", "run")); len(n) < 200 {
		return sample{}, sample{}, fmt.Errorf("want 200 exited pods, have %d", len(n))
	}
	args := f.runArgs(stage1)
	d, err := median(b.runs, func() error { _, err := f.rkt(args...); return err })
	if err != nil {
		return sample{}, sample{}, err
	}
	empty.label = "same, no pods"
	return sample{value: d}, empty, f.gc()
}
