package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The default stage1 (nspawn + systemd): pod start to exit, beside raw
// systemd-nspawn running /bin/true in the same rootfs; and the memory the
// pod's own systemd and journald hold.

func init() {
	addFigure(figure{name: "nspawn stage1: rkt run inspect --exec /bin/true --net=host (nspawn + systemd)", order: 330,
		goal: "< 200 ms median (rkt v1.30 nspawn stage1: ~850 ms)", run: stage1StartFigure})
	addFigure(figure{name: "nspawn stage1: memory of the pod's systemd + journald (Pss)", order: 331,
		goal: "< 15 MiB", run: stage1MemoryFigure})
}

// nspawnState is the nspawn figures' own data directory: its pods hold
// cgroups on the host, which only a gc removes (see nspawnDone).
var nspawnState *flyBench

func setupNspawn(b *bench) (*flyBench, error) {
	if nspawnState != nil {
		return nspawnState, nil
	}
	f, err := newFlyBench(b, "nspawn")
	nspawnState = f
	return f, err
}

// nspawnDone collects the figures' pods, so that no cgroup outlives the
// bench.
func nspawnDone(f *flyBench) {
	_, _ = f.rkt("gc", "--grace-period=0s")
}

func stage1StartFigure(b *bench) (sample, sample, error) {
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	args := []string{"run", "--stage1-path=" + b.image("stage1.aci"), "--net=host", flyInspect, "--exec", "/bin/true"}
	// One pod first: imports the stage1 and renders its tree.
	if _, err := f.rkt(args...); err != nil {
		return sample{}, sample{}, err
	}
	d, err := median(b.runs, func() error { _, err := f.rkt(args...); return err })
	if err != nil {
		return sample{}, sample{}, err
	}
	nspawnDone(f)
	// nspawn writes into the tree it boots (mount points, /etc files):
	// it gets a copy, never the store's tree, which the pods' start
	// checks would then rightly find changed.
	rootfs := filepath.Join(b.tmp("nspawn-ref"), "rootfs")
	if err := os.MkdirAll(filepath.Dir(rootfs), 0o755); err != nil {
		return sample{}, sample{}, err
	}
	if out, err := exec.Command("cp", "-a", f.rootfs, rootfs).CombinedOutput(); err != nil {
		return sample{}, sample{}, fmt.Errorf("copy the inspect tree: %v: %s", err, out)
	}
	ref, err := f.chroot("systemd-nspawn -D ROOTFS /bin/true", "systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
		"-D", rootfs, "/bin/true")
	return sample{value: d}, ref, err
}

// stage1MemoryFigure starts a sleeping pod, sums the proportional set
// size of its PID 1 (systemd) and journald, and stops it. The figure is
// the memory, printed in the reference column; the time is not one.
func stage1MemoryFigure(b *bench) (sample, sample, error) {
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer nspawnDone(f)
	uuidFile := filepath.Join(f.dir, "mem-uuid")
	cmd := exec.Command(b.rkt(), "--dir="+f.dir, "--local-config="+f.dir+"/lc", "--system-config="+f.dir+"/sc",
		"--user-config="+f.dir+"/uc", "run", "--stage1-path="+b.image("stage1.aci"), "--net=host",
		"--uuid-file-save="+uuidFile, flyInspect, "--", "-sleep=60s")
	if err := cmd.Start(); err != nil {
		return sample{}, sample{}, err
	}
	var uuid string
	defer func() {
		_, _ = f.rkt("stop", "--force", uuid)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for uuid == "" && time.Now().Before(deadline) {
		if b, err := os.ReadFile(uuidFile); err == nil {
			uuid = strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if uuid == "" {
		return sample{}, sample{}, fmt.Errorf("the pod did not start within 20 s")
	}
	if _, err := f.rkt("status", "--wait-ready=20s", uuid); err != nil {
		return sample{}, sample{}, err
	}
	// Let journald and systemd settle once the app runs.
	time.Sleep(500 * time.Millisecond)
	pidb, err := os.ReadFile(filepath.Join(f.dir, "pods", "run", uuid, "pid"))
	if err != nil {
		return sample{}, sample{}, err
	}
	pid1 := strings.TrimSpace(string(pidb))
	total := pss(pid1)
	kids, _ := os.ReadFile("/proc/" + pid1 + "/task/" + pid1 + "/children")
	for _, k := range strings.Fields(string(kids)) {
		if comm, _ := os.ReadFile("/proc/" + k + "/comm"); strings.HasPrefix(string(comm), "systemd-journal") {
			total += pss(k)
		}
	}
	label := fmt.Sprintf("%.1f MiB (systemd + journald Pss)", float64(total)/1024)
	return sample{}, sample{label: label}, nil
}

// pss is the proportional set size of pid in KiB.
func pss(pid string) int {
	f, err := os.Open("/proc/" + pid + "/smaps_rollup")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) >= 2 && fields[0] == "Pss:" {
			n, _ := strconv.Atoi(fields[1])
			return n
		}
	}
	return 0
}
