package cgroup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// StateFile, in a pod directory, lists the cgroup directories made for
// the pod, so that gc removes them whatever cgroup gc itself runs in.
const StateFile = "cgroups"

// PodName is the cgroup, below the creator's own, that holds a pod's
// app cgroups.
func PodName(uuid string) string { return "rkt-" + uuid }

// CreateApp makes the cgroup of one app of pod uuid with limits l,
// "rkt-UUID/APP" below the caller's own cgroup, records the pod's cgroup
// directories in podDir/StateFile (before writing any limit, so that gc
// finds even a half-made cgroup), and returns the app's cgroup. Empty
// limits make nothing.
func CreateApp(podDir, uuid, app string, l Limits) (*Cgroup, error) {
	return CreateAppAt(podDir, filepath.Join(PodName(uuid), app), l)
}

// CreateAppAt is CreateApp for an app cgroup at rel, a relative path below
// the caller's cgroup whose first element is the pod's (PodName): a stage1
// whose pod runs in a cgroup of its own puts its apps below it.
func CreateAppAt(podDir, rel string, l Limits) (*Cgroup, error) {
	app := filepath.Base(rel)
	if l.Empty() {
		v, err := Detect()
		return &Cgroup{Version: v}, err
	}
	cg, err := Create(rel, l)
	if err != nil {
		return nil, fmt.Errorf("cgroup of app %s: %w", app, err)
	}
	depth := len(strings.Split(filepath.Clean(rel), "/"))
	var podDirs []string
	for _, d := range cg.Dirs {
		top := d
		for i := 1; i < depth; i++ {
			top = filepath.Dir(top)
		}
		podDirs = append(podDirs, top)
	}
	if err := record(podDir, podDirs); err != nil {
		_ = RemoveDirs(podDirs)
		return nil, err
	}
	return cg, nil
}

func readState(podDir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(podDir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var dirs []string
	if err := json.Unmarshal(data, &dirs); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(podDir, StateFile), err)
	}
	return dirs, nil
}

// record adds dirs to the pod's state file (temp file + rename; callers
// hold the pod's lock).
func record(podDir string, dirs []string) error {
	for _, d := range dirs {
		if !strings.HasPrefix(filepath.Base(d), "rkt-") {
			return fmt.Errorf("record cgroups: %s is not a pod cgroup", d)
		}
	}
	have, err := readState(podDir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, d := range append(have, dirs...) {
		seen[d] = true
	}
	all := make([]string, 0, len(seen))
	for d := range seen {
		all = append(all, d)
	}
	sort.Strings(all)
	data, _ := json.Marshal(all)
	tmp := filepath.Join(podDir, "."+StateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("record cgroups: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(podDir, StateFile)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("record cgroups: %w", err)
	}
	return nil
}

// RemovePod removes every cgroup recorded for the pod in podDir, killing
// any process left in them; gc calls it for exited pods. A pod without a
// state file made no cgroup.
func RemovePod(podDir string) error {
	dirs, err := readState(podDir)
	if err != nil {
		return fmt.Errorf("remove pod cgroups: %w", err)
	}
	// Only pod cgroups: removing one kills what is left inside, so a
	// wrong entry must never name the caller's own cgroup or the root.
	for _, d := range dirs {
		if !strings.HasPrefix(filepath.Base(d), "rkt-") || !strings.HasPrefix(d, Root+"/") {
			return fmt.Errorf("remove pod cgroups: %s in %s is not a pod cgroup", d, filepath.Join(podDir, StateFile))
		}
	}
	if err := RemoveDirs(dirs); err != nil {
		return fmt.Errorf("remove pod cgroups: %w", err)
	}
	if err := os.Remove(filepath.Join(podDir, StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ErrNotLimited: a limit cannot change because the app was started
// without that kind of limit: its processes have no cgroup for it, and
// moving a running app's processes is not something rkt does.
var ErrNotLimited = errors.New("the app was started without that limit")

// UpdateApp changes the resource limits of a running app whose host
// cgroups CreateApp or CreateAppAt made (rkt-cri's
// UpdateContainerResources): each limit set in l is written to the app's
// cgroup, which must already hold one of that kind. The app's cgroup is
// the directory named app, one or two levels below a cgroup recorded for
// the pod, that has no cgroup below it (the pod's own levels all do).
func UpdateApp(podDir, app string, l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if l.Empty() {
		return nil
	}
	dirs, err := readState(podDir)
	if err != nil {
		return err
	}
	v, err := Detect()
	if err != nil {
		return err
	}
	appDirs := findApp(dirs, app)
	want := limitWrites(v, l)
	for _, ctrl := range controllers {
		writes, ok := want[ctrl]
		if !ok {
			continue
		}
		dir := ""
		for _, d := range appDirs {
			if _, err := os.Stat(filepath.Join(d, writes[0].file)); err == nil {
				dir = d
				break
			}
		}
		if dir == "" {
			return fmt.Errorf("app %s: %s: %w", app, ctrl, ErrNotLimited)
		}
		if err := applyWrites(dir, writes); err != nil {
			return fmt.Errorf("app %s: %w", app, err)
		}
	}
	return nil
}

// findApp returns the app's cgroup directories: below each of the pod's
// recorded cgroups, the directory named app one or two levels down that
// has no cgroup below it (the pod's own levels all do).
func findApp(podCgroups []string, app string) []string {
	var appDirs []string
	for _, d := range podCgroups {
		for _, c := range []string{filepath.Join(d, app), filepath.Join(d, "*", app)} {
			matches, _ := filepath.Glob(c)
			for _, m := range matches {
				if isLeaf(m) {
					appDirs = append(appDirs, m)
				}
			}
		}
	}
	return appDirs
}

// AppLimits reads back the limits in force for an app whose cgroups
// CreateApp or CreateAppAt made: what UpdateApp last wrote, or what the
// app started with. A limit the app has no cgroup for is zero.
func AppLimits(podDir, app string) (Limits, error) {
	var l Limits
	dirs, err := readState(podDir)
	if err != nil {
		return l, err
	}
	read := func(dir, file string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(dir, file))
		return strings.TrimSpace(string(b)), err == nil
	}
	for _, d := range findApp(dirs, app) {
		// v1
		if s, ok := read(d, "memory.limit_in_bytes"); ok {
			// The kernel's "unlimited" is a page-rounded maximum.
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n < 1<<62 {
				l.MemoryBytes = n
			}
		}
		if s, ok := read(d, "cpu.shares"); ok {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				l.CPUShares = n
			}
		}
		if q, ok := read(d, "cpu.cfs_quota_us"); ok {
			p, _ := read(d, "cpu.cfs_period_us")
			quota, err1 := strconv.ParseInt(q, 10, 64)
			period, err2 := strconv.ParseInt(p, 10, 64)
			if err1 == nil && err2 == nil && quota > 0 && period > 0 {
				l.CPUMilli = quota * 1000 / period
			}
		}
		// v2
		if s, ok := read(d, "memory.max"); ok && s != "max" {
			l.MemoryBytes, _ = strconv.ParseInt(s, 10, 64)
		}
		if s, ok := read(d, "cpu.max"); ok {
			if q, p, found := strings.Cut(s, " "); found && q != "max" {
				quota, err1 := strconv.ParseInt(q, 10, 64)
				period, err2 := strconv.ParseInt(p, 10, 64)
				if err1 == nil && err2 == nil && period > 0 {
					l.CPUMilli = quota * 1000 / period
				}
			}
		}
		if s, ok := read(d, "cpu.weight"); ok {
			if w, err := strconv.ParseUint(s, 10, 64); err == nil {
				l.CPUShares = weightToShares(w)
			}
		}
	}
	return l, nil
}

// weightToShares inverts SharesToWeight (to within its rounding).
func weightToShares(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 2 + (w-1)*262142/9999
}

// isLeaf is whether dir is a cgroup directory with no cgroup below it.
func isLeaf(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() {
			return false
		}
	}
	return true
}
