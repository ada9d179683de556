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
	addFigure(figure{name: "fly: same, with 200 more exited pods", order: 302,
		goal: "flat: ~1x the same run before them", run: flyManyPodsFigure})
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

// setupFly prepares the shared data directory once.
func setupFly(b *bench) (*flyBench, error) {
	if flyState != nil {
		return flyState, nil
	}
	f, err := newFlyBench(b, "fly")
	flyState = f
	return f, err
}

// newFlyBench fetches the inspect image into a fresh data directory and
// runs one pod there, which imports the stage1 and renders both trees.
// Pods are never collected during the figures: a gc deletes thousands of
// inodes, and on a filesystem without a journal ext4 then skips every
// recently deleted inode when it allocates new ones, which would charge
// the next pods for the previous figure's clean-up.
func newFlyBench(b *bench, name string) (*flyBench, error) {
	f := &flyBench{b: b, dir: b.tmp(name)}
	if _, err := f.rkt("--insecure-options=image", "fetch", b.image("inspect.aci")); err != nil {
		return nil, err
	}
	if _, err := f.rkt(f.runArgs("--stage1-path=" + b.image("stage1-fly.aci"))...); err != nil {
		return nil, err
	}
	trees, _ := filepath.Glob(filepath.Join(f.dir, "cas", "tree", "*", "rootfs", "inspect"))
	if len(trees) != 1 {
		return nil, fmt.Errorf("inspect tree not found (%d candidates)", len(trees))
	}
	f.rootfs = filepath.Dir(trees[0])
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

// medianRun is the median of b.runs pods.
func (f *flyBench) medianRun(stage1 string) (sample, error) {
	args := f.runArgs(stage1)
	d, err := median(f.b.runs, func() error { _, err := f.rkt(args...); return err })
	return sample{value: d}, err
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

// flyManyPodsFigure measures a pod's cost once 200 exited pods sit in a
// data directory, against the same command in that directory before them,
// in the same run.
func flyManyPodsFigure(b *bench) (sample, sample, error) {
	f, err := newFlyBench(b, "fly-many")
	if err != nil {
		return sample{}, sample{}, err
	}
	stage1 := "--stage1-name=rktng.io/rkt/stage1-fly"
	few, err := f.medianRun(stage1)
	if err != nil {
		return sample{}, sample{}, err
	}
	for i := 0; i < 200; i++ {
		if _, err := f.rkt(f.runArgs(stage1)...); err != nil {
			return sample{}, sample{}, err
		}
	}
	n, _ := os.ReadDir(filepath.Join(f.dir, "pods", "run"))
	if len(n) < 200 {
		return sample{}, sample{}, fmt.Errorf("want 200 exited pods, have %d", len(n))
	}
	many, err := f.medianRun(stage1)
	if err != nil {
		return sample{}, sample{}, err
	}
	few.label = fmt.Sprintf("same, %d pods before", b.runs+1)
	return many, few, nil
}
