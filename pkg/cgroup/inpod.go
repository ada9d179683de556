package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// InPodDir is where BindInto exposes an app's cgroups inside a stage1
// root: /rkt/cgroup/APP/N, one per directory.
func InPodDir(app string) string { return filepath.Join("/rkt/cgroup", app) }

// BindInto makes the host cgroup directories dirs (from Create or
// isolators.CreateCgroup) reachable inside a pod whose root is
// stage1Rootfs, by bind-mounting each at InPodDir(app)/N, and returns the
// paths as seen inside the pod, for appexec.Config.CgroupDirs. The app's
// launcher then joins them from inside the pod, where the host's cgroup
// tree is otherwise hidden.
//
// This is how limits are enforced on a cgroup v1 host whose init is not
// systemd: the pod's systemd cannot write the v1 memory and cpu
// hierarchies. On a cgroup v2 host the pod's systemd owns a delegated
// subtree; use SystemdProperties in the app's unit there instead, since
// a process cannot be moved out of its cgroup namespace on v2.
//
// The mounts are made in the caller's mount namespace, which must be the
// pod's private one (stage0 makes it before exec'ing stage1): they vanish
// with the pod.
func BindInto(dirs []string, stage1Rootfs, app string) ([]string, error) {
	var inPod []string
	for i, d := range dirs {
		rel := filepath.Join(InPodDir(app), strconv.Itoa(i))
		target := filepath.Join(stage1Rootfs, rel)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup of app %s in the pod: %w", app, err)
		}
		if err := unix.Mount(d, target, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("cgroup of app %s in the pod: bind %s: %w", app, d, err)
		}
		inPod = append(inPod, rel)
	}
	return inPod, nil
}

// SystemdProperties are the unit settings that give l to a service run
// by a systemd that owns a delegated cgroup v2 subtree.
func (l Limits) SystemdProperties() []string {
	var p []string
	if l.MemoryBytes > 0 {
		p = append(p, fmt.Sprintf("MemoryMax=%d", l.MemoryBytes), "MemorySwapMax=0")
	}
	if l.CPUMilli > 0 {
		p = append(p, fmt.Sprintf("CPUQuota=%d%%", (l.CPUMilli+9)/10))
	}
	if l.CPUShares > 0 {
		p = append(p, fmt.Sprintf("CPUWeight=%d", SharesToWeight(l.CPUShares)))
	}
	return p
}
