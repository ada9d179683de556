package cgroup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
