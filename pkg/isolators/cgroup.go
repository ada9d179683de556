package isolators

import (
	"fmt"
	"path/filepath"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/cgroup"
)

// CreateCgroup makes the cgroup of app (named name in pod uuid, whose
// directory is podDir) with the resource limits of its isolators, below
// the caller's own cgroup, and records it for gc (cgroup.RemovePod). It
// returns the directories the app must join (appexec.Config.CgroupDirs),
// none when the app has no resource isolator. A stage1 calls it on the
// host side, before the app starts.
func CreateCgroup(podDir, uuid, name string, app *types.App) ([]string, error) {
	s, err := parse(app.Isolators, 0, "app "+name)
	if err != nil {
		return nil, err
	}
	if s.Limits.Empty() {
		return nil, nil
	}
	cg, err := cgroup.CreateApp(podDir, uuid, name, s.Limits)
	if err != nil {
		return nil, fmt.Errorf("app %s: resource limits: %w", name, err)
	}
	return cg.Dirs, nil
}

// PodAppLimits is CreateCgroup for a stage1 whose apps run inside a pod
// root with a systemd of its own (nspawn), called host-side in the pod's
// private mount namespace before the pod boots. podCgroup is the pod's
// own cgroup relative to the caller's ("rkt-UUID/stage1"): the app's goes
// below it, so that inside the pod's cgroup namespace the app sees its
// cgroup (/sys/fs/cgroup/memory/APP) and reads its limits back.
//
// On cgroup v1 the app's cgroup is made on the host and bind-mounted
// into stage1Rootfs (cgroup.BindInto): the returned cgroupDirs go to the
// app's appexec.Config, whose launcher joins them; the pod's systemd does
// not manage the v1 memory and cpu hierarchies, so it never notices. On
// cgroup v2, where a process cannot leave its cgroup namespace, the
// returned unitProperties (MemoryMax=, CPUQuota=, CPUWeight=) go to the
// app's service for the pod's systemd to apply in its delegated subtree.
// Both are empty for an app without resource isolators.
func PodAppLimits(podDir, podCgroup, name string, app *types.App, stage1Rootfs string) (cgroupDirs, unitProperties []string, err error) {
	s, err := parse(app.Isolators, 0, "app "+name)
	if err != nil {
		return nil, nil, err
	}
	if s.Limits.Empty() {
		return nil, nil, nil
	}
	v, err := cgroup.Detect()
	if err != nil {
		return nil, nil, err
	}
	if v == cgroup.V2 {
		return nil, s.Limits.SystemdProperties(), nil
	}
	cg, err := cgroup.CreateAppAt(podDir, filepath.Join(podCgroup, name), s.Limits)
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: resource limits: %w", name, err)
	}
	inPod, err := cgroup.BindInto(cg.Dirs, stage1Rootfs, name)
	if err != nil {
		return nil, nil, err
	}
	return inPod, nil, nil
}
