package stage1

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rktng/rkt/pkg/cgroup"
)

// cgroupsFile, in the pod directory, lists the cgroup directories the run
// entrypoint made for the pod's systemd, for gc.
const cgroupsFile = "stage1-cgroups"

// podCgroup is the cgroup the pod's nspawn and systemd run in:
// OWN/rkt-UUID/stage1 in every hierarchy the run entrypoint is in, where
// OWN is its own cgroup. On a host without systemd (this one) nobody else
// would give the pod a cgroup of its own, and systemd inside needs one it
// may write.
type podCgroup struct {
	// dirs are the stage1 cgroup directories to join.
	dirs []string
}

// hierarchies maps each cgroup hierarchy of this process to its mount
// point joined with the process's own path in it.
func ownCgroupDirs() ([]string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		key := parts[1]
		if parts[0] == "0" && key == "" {
			key = "cgroup2"
		}
		// Only the hierarchies nspawn and the pod's systemd manage: moving
		// a process between v1 controller cgroups costs milliseconds each,
		// and resource limits are the apps' own cgroups (pkg/cgroup).
		if key != "cgroup2" && key != "name=systemd" {
			continue
		}
		mp, ok := mounts[key]
		if !ok {
			continue
		}
		dirs = append(dirs, filepath.Join(mp, parts[2]))
	}
	return dirs, s.Err()
}

// cgroupMounts maps "cpu,cpuacct", "name=systemd" or "cgroup2" to the
// mount point of that hierarchy.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		i := 0
		for i < len(fields) && fields[i] != "-" {
			i++
		}
		if i+3 >= len(fields) {
			continue
		}
		fstype, super := fields[i+1], fields[i+3]
		switch fstype {
		case "cgroup2":
			if _, ok := out["cgroup2"]; !ok {
				out["cgroup2"] = fields[4]
			}
		case "cgroup":
			var keys []string
			for _, o := range strings.Split(super, ",") {
				if o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent") || o == "clone_children" || o == "xattr" || o == "noprefix" {
					continue
				}
				keys = append(keys, o)
			}
			k := strings.Join(keys, ",")
			if _, ok := out[k]; !ok {
				out[k] = fields[4]
			}
		}
	}
	return out, s.Err()
}

// createPodCgroup makes the pod's stage1 cgroups and records them before
// anything else, so that gc removes even half-made ones.
func createPodCgroup(podDir, uuid string) (*podCgroup, error) {
	own, err := ownCgroupDirs()
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	var podDirs, dirs []string
	for _, d := range own {
		podDirs = append(podDirs, filepath.Join(d, cgroup.PodName(uuid)))
		dirs = append(dirs, filepath.Join(d, cgroup.PodName(uuid), "stage1"))
	}
	b, _ := json.Marshal(podDirs)
	if err := writeFile(filepath.Join(podDir, cgroupsFile), string(b)); err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	for _, d := range dirs {
		if err := mkdirCgroup(d); err != nil {
			return nil, fmt.Errorf("pod cgroup: %w", err)
		}
	}
	return &podCgroup{dirs: dirs}, nil
}

// mkdirCgroup makes dir and its parent; a new cpuset cgroup is empty
// until it gets its parent's CPUs and memory nodes.
func mkdirCgroup(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(d, f))
			if err != nil || strings.TrimSpace(string(cur)) != "" {
				continue
			}
			if parent, err := os.ReadFile(filepath.Join(filepath.Dir(d), f)); err == nil {
				_ = os.WriteFile(filepath.Join(d, f), parent, 0o644)
			}
		}
	}
	return nil
}

// join moves the calling process into the pod's cgroups; nspawn, started
// next, inherits them.
func (p *podCgroup) join() error {
	return cgroup.JoinDirs(p.dirs, 0)
}

// removePodCgroups removes every cgroup the run entrypoint recorded, with
// whatever systemd made below them.
func removePodCgroups(podDir string) error {
	b, err := os.ReadFile(filepath.Join(podDir, cgroupsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var dirs []string
	if err := json.Unmarshal(b, &dirs); err != nil {
		return fmt.Errorf("%s: %w", cgroupsFile, err)
	}
	if err := cgroup.RemoveDirs(dirs); err != nil {
		return err
	}
	return os.Remove(filepath.Join(podDir, cgroupsFile))
}

func readSelfCgroup() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	return string(b)
}

// inSystemdService says whether a process whose /proc/PID/cgroup is
// procCgroup runs inside a system service unit: the deepest unit in its
// path in systemd's hierarchy (the unified one, or name=systemd on a v1
// host), below which it may have sub-cgroups of its own, is NAME.service.
// A scope (a login session, a terminal under a user manager) is not a
// service, and neither is a user manager (user@UID.service) itself.
func inSystemdService(procCgroup string) bool {
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !(parts[0] == "0" && parts[1] == "" || parts[1] == "name=systemd") {
			continue
		}
		unit := ""
		for _, c := range strings.Split(parts[2], "/") {
			if strings.HasSuffix(c, ".service") || strings.HasSuffix(c, ".scope") {
				unit = c
			}
		}
		return strings.HasSuffix(unit, ".service") && !strings.HasPrefix(unit, "user@")
	}
	return false
}
