// Package cgroup owns the resource limits of apps: it detects whether the
// host has cgroup v1 (including the hybrid layout) or v2, creates a cgroup
// per app below the caller's own cgroup, writes the memory and CPU limits
// (memory.limit_in_bytes, cpu.cfs_quota_us, cpu.shares on v1; memory.max,
// cpu.max, cpu.weight on v2), lets processes join it, and removes it at gc.
//
// It writes the cgroup filesystem directly, so limits are enforced with or
// without systemd as the host's PID 1 and without D-Bus: rkt v1.30 left
// them to systemd inside the pod, which on a cgroup v1 host without a
// delegating systemd enforced nothing.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinel errors.
var (
	// ErrNoController: a limit needs a controller the host does not
	// offer (not mounted on v1, not delegated on v2).
	ErrNoController = errors.New("cgroup controller not available")
	// ErrBadLimit: a limit outside what the kernel accepts.
	ErrBadLimit = errors.New("invalid cgroup limit")
)

// Root is where cgroup filesystems are mounted.
const Root = "/sys/fs/cgroup"

// Limits are an app's resource limits; zero values mean "no limit".
type Limits struct {
	// MemoryBytes is the memory limit (resource/memory limit).
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// CPUMilli is the CPU limit in thousandths of a CPU (resource/cpu
	// limit: "500m" is half a CPU).
	CPUMilli int64 `json:"cpuMilli,omitempty"`
	// CPUShares is the relative weight (os/linux/cpu-shares, 2..262144,
	// 1024 the kernel's default).
	CPUShares uint64 `json:"cpuShares,omitempty"`
}

// Empty reports whether l sets no limit at all.
func (l Limits) Empty() bool { return l == Limits{} }

// Validate checks the ranges the kernel accepts.
func (l Limits) Validate() error {
	if l.MemoryBytes < 0 {
		return fmt.Errorf("%w: memory %d bytes", ErrBadLimit, l.MemoryBytes)
	}
	if l.MemoryBytes > 0 && l.MemoryBytes < 1<<20 {
		return fmt.Errorf("%w: memory limit %d bytes is below 1 MiB", ErrBadLimit, l.MemoryBytes)
	}
	if l.CPUMilli < 0 {
		return fmt.Errorf("%w: cpu %dm", ErrBadLimit, l.CPUMilli)
	}
	if l.CPUMilli > 0 && l.CPUMilli < 10 {
		return fmt.Errorf("%w: cpu limit %dm is below 10m (the kernel's 1ms per 100ms period)", ErrBadLimit, l.CPUMilli)
	}
	if l.CPUShares != 0 && (l.CPUShares < 2 || l.CPUShares > 262144) {
		return fmt.Errorf("%w: cpu shares %d outside 2..262144", ErrBadLimit, l.CPUShares)
	}
	return nil
}

// Version is the cgroup layout of the host.
type Version int

// The layouts: V1 covers the hybrid one (v1 controllers, with a v2
// hierarchy holding no controllers next to them).
const (
	V1 Version = 1
	V2 Version = 2
)

// Detect tells v1 from v2 by the filesystem mounted at Root.
func Detect() (Version, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(Root, &st); err != nil {
		return 0, fmt.Errorf("cgroup: statfs %s: %w", Root, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return V2, nil
	}
	return V1, nil
}

// Cgroup is one app's cgroup: one directory on v2, one per controller on v1.
type Cgroup struct {
	Version Version `json:"version"`
	// Dirs are absolute directories; joining all of them puts a process
	// under every limit.
	Dirs []string `json:"dirs"`
}

// processCgroups parses /proc/PID/cgroup into controller → path; the v2
// entry is under "".
func processCgroups(pid string) (map[string]string, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, s.Err()
}

// v1Dir returns the mount point of a v1 controller ("memory", "cpu"),
// which may be co-mounted ("cpu,cpuacct").
func v1Dir(controller string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || fields[sep+1] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if opt == controller {
				return fields[4], nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s is not mounted", ErrNoController, controller)
}

// Create makes the cgroup NAME (a relative path such as
// "rkt-UUID/APP") below the calling process's own cgroup, for the
// controllers l needs, and writes l. A cgroup that exists already is
// reused and its limits rewritten. With an empty l, Create makes nothing
// and returns an empty Cgroup.
func Create(name string, l Limits) (*Cgroup, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if name == "" || filepath.IsAbs(name) || strings.Contains(name, "..") {
		return nil, fmt.Errorf("cgroup: bad name %q", name)
	}
	v, err := Detect()
	if err != nil {
		return nil, err
	}
	cg := &Cgroup{Version: v}
	if l.Empty() {
		return cg, nil
	}
	own, err := processCgroups("self")
	if err != nil {
		return nil, fmt.Errorf("cgroup: own cgroups: %w", err)
	}
	if v == V2 {
		err = cg.createV2(own[""], name, l)
	} else {
		err = cg.createV1(own, name, l)
	}
	if err != nil {
		_ = cg.Remove()
		return nil, err
	}
	return cg, nil
}

// write is one file of a cgroup and the value it gets.
type write struct{ file, value string }

// controllers are the controllers rkt limits, in the order it sets them.
var controllers = []string{"memory", "cpu"}

// limitWrites are the files that carry l on a host of cgroup version v,
// by controller. Each controller's files are in every cgroup that has
// the controller, so the first of them tells whether a cgroup has it.
func limitWrites(v Version, l Limits) map[string][]write {
	w := map[string][]write{}
	if v == V2 {
		if l.MemoryBytes > 0 {
			w["memory"] = []write{{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)}}
		}
		if l.CPUMilli > 0 {
			w["cpu"] = append(w["cpu"], write{"cpu.max", fmt.Sprintf("%d 100000", l.CPUMilli*100)})
		}
		if l.CPUShares > 0 {
			w["cpu"] = append(w["cpu"], write{"cpu.weight", strconv.FormatUint(SharesToWeight(l.CPUShares), 10)})
		}
		return w
	}
	if l.MemoryBytes > 0 {
		w["memory"] = []write{{"memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)}}
	}
	if l.CPUMilli > 0 {
		// A 100 ms period; the quota is the share of it the app may use.
		w["cpu"] = append(w["cpu"], write{"cpu.cfs_period_us", "100000"},
			write{"cpu.cfs_quota_us", strconv.FormatInt(l.CPUMilli*100, 10)})
	}
	if l.CPUShares > 0 {
		w["cpu"] = append(w["cpu"], write{"cpu.shares", strconv.FormatUint(l.CPUShares, 10)})
	}
	return w
}

// applyWrites writes ws into the cgroup dir.
func applyWrites(dir string, ws []write) error {
	for _, w := range ws {
		var err error
		if w.file == "memory.limit_in_bytes" {
			err = setMemoryV1(dir, w.value)
		} else {
			err = writeFile(dir, w.file, w.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setMemoryV1 sets a v1 memory limit. With swap accounting on,
// memory+swap gets the same limit, so that the app is killed rather than
// swapped out; it may never be below the memory limit, so it moves first
// when the limit rises and last when it falls.
func setMemoryV1(dir, limit string) error {
	const memsw = "memory.memsw.limit_in_bytes"
	if _, err := os.Stat(filepath.Join(dir, memsw)); err != nil {
		return writeFile(dir, "memory.limit_in_bytes", limit)
	}
	order := []string{"memory.limit_in_bytes", memsw}
	cur, err := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
	n, perr := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
	if want, werr := strconv.ParseInt(limit, 10, 64); err == nil && perr == nil && werr == nil && want > n {
		order[0], order[1] = order[1], order[0]
	}
	for _, f := range order {
		if err := writeFile(dir, f, limit); err != nil {
			return err
		}
	}
	return nil
}

func (cg *Cgroup) createV1(own map[string]string, name string, l Limits) error {
	want := limitWrites(V1, l)
	for _, ctrl := range controllers {
		writes, ok := want[ctrl]
		if !ok {
			continue
		}
		mnt, err := v1Dir(ctrl)
		if err != nil {
			return err
		}
		dir := filepath.Join(mnt, own[ctrl], name)
		if err := mkdirCgroup(dir); err != nil {
			return err
		}
		cg.Dirs = append(cg.Dirs, dir)
		if err := applyWrites(dir, writes); err != nil {
			return err
		}
	}
	return nil
}

func (cg *Cgroup) createV2(own, name string, l Limits) error {
	base := filepath.Join(Root, own)
	// v2 lets a cgroup hand controllers to its children only while it
	// holds no process itself, and ours holds us: the pod's cgroup goes
	// next to ours instead, below our parent.
	if own != "/" && !emptyV2(base) {
		base = filepath.Dir(base)
	}
	dir := filepath.Join(base, name)
	want := limitWrites(V2, l)
	var ctrls []string
	for _, ctrl := range controllers {
		if _, ok := want[ctrl]; ok {
			ctrls = append(ctrls, ctrl)
		}
	}
	if err := mkdirCgroup(dir); err != nil {
		return err
	}
	cg.Dirs = []string{dir}
	// Each level below our own cgroup must hand the controllers down.
	rel, _ := filepath.Rel(base, dir)
	parent := base
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if err := enableV2(parent, ctrls); err != nil {
			return err
		}
		parent = filepath.Join(parent, part)
	}
	for _, ctrl := range ctrls {
		if err := applyWrites(dir, want[ctrl]); err != nil {
			return err
		}
	}
	if l.MemoryBytes > 0 {
		// Without swap accounting off, the limit would only push the
		// app into swap instead of killing it.
		_ = writeFile(dir, "memory.swap.max", "0")
	}
	return nil
}

// emptyV2 reports whether a v2 cgroup holds no process.
func emptyV2(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return err == nil && strings.TrimSpace(string(data)) == ""
}

// SharesToWeight maps v1 cpu.shares (2..262144) onto v2 cpu.weight
// (1..10000) linearly, as the kernel documentation and systemd do, so that
// the default 1024 becomes the default 100.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// enableV2 makes the controllers available to dir's children.
func enableV2(dir string, ctrls []string) error {
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	avail := strings.Fields(string(have))
	for _, c := range ctrls {
		found := false
		for _, a := range avail {
			found = found || a == c
		}
		if !found {
			return fmt.Errorf("%w: %s is not delegated to %s", ErrNoController, c, dir)
		}
		if err := writeFile(dir, "cgroup.subtree_control", "+"+c); err != nil {
			return err
		}
	}
	return nil
}

func mkdirCgroup(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cgroup: create %s: %w", dir, err)
	}
	return nil
}

func writeFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %s to %s: %w", value, filepath.Join(dir, name), err)
	}
	return nil
}

// JoinDirs moves process pid (0: the caller) into each cgroup directory.
// On v1 all threads move with the process; on v2 the process must not
// be multi-threaded across domains, which it is not for fresh processes.
func JoinDirs(dirs []string, pid int) error {
	for _, d := range dirs {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Join moves process pid (0: the caller) into the cgroup.
func (cg *Cgroup) Join(pid int) error { return JoinDirs(cg.Dirs, pid) }

// JoinProcess moves the calling process into the cgroups of process pid
// (ProcessDirs), skipping those it is in already: a write to cgroup.procs
// waits for an RCU grace period (10-15 ms on cgroup v1 here) even when it
// moves nothing, and `rkt enter` from the pod's own cgroup (rkt-cri's
// exec probes, on a host without systemd) would pay it for nothing.
func JoinProcess(pid int) error {
	dirs, err := ProcessDirs(pid)
	if err != nil {
		return err
	}
	own, err := ProcessDirs(os.Getpid())
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, d := range own {
		in[d] = true
	}
	var move []string
	for _, d := range dirs {
		if !in[d] {
			move = append(move, d)
		}
	}
	return JoinDirs(move, 0)
}

// ProcessDirs returns the cgroup directories of a running process, for
// the controllers that limit apps (memory, cpu on v1; the one unified
// directory on v2), as seen from the caller's mount namespace. `rkt
// enter` joins these so that an entered command is under the app's limits.
func ProcessDirs(pid int) ([]string, error) {
	v, err := Detect()
	if err != nil {
		return nil, err
	}
	own, err := processCgroups(strconv.Itoa(pid))
	if err != nil {
		return nil, fmt.Errorf("cgroup of process %d: %w", pid, err)
	}
	if v == V2 {
		return []string{filepath.Join(Root, own[""])}, nil
	}
	var dirs []string
	for _, ctrl := range []string{"memory", "cpu", "pids"} {
		p, ok := own[ctrl]
		if !ok {
			continue
		}
		mnt, err := v1Dir(ctrl)
		if err != nil {
			continue
		}
		dirs = append(dirs, filepath.Join(mnt, p))
	}
	return dirs, nil
}

// Remove deletes the cgroup directories, deepest first. Processes still
// inside (an app that outlived its pod) are killed first: Remove is only
// called for pods that have exited.
func (cg *Cgroup) Remove() error { return RemoveDirs(cg.Dirs) }

// RemoveDirs deletes each directory and every cgroup below it.
func RemoveDirs(dirs []string) error {
	var firstErr error
	for _, d := range dirs {
		if err := removeTree(d); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func removeTree(dir string) error {
	// Removing kills what is inside: never a hierarchy's root (which
	// holds every process of the host), never outside /sys/fs/cgroup.
	if !strings.HasPrefix(dir, Root+"/") {
		return fmt.Errorf("cgroup: refusing to remove %s: not below %s", dir, Root)
	}
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("cgroup: %w", err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil || parent.Dev != st.Dev {
		return fmt.Errorf("cgroup: refusing to remove %s: a hierarchy's root", dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for attempt := 0; ; attempt++ {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || attempt == 50 {
			return fmt.Errorf("cgroup: remove %s: %w", dir, err)
		}
		if holdsSelf(dir) {
			return fmt.Errorf("cgroup: refusing to empty %s: it holds this process", dir)
		}
		killAll(dir)
		time.Sleep(20 * time.Millisecond)
	}
}

// holdsSelf reports whether the calling process is in cgroup dir.
func holdsSelf(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return true // cannot tell: do not kill
	}
	self := strconv.Itoa(os.Getpid())
	for _, f := range strings.Fields(string(data)) {
		if f == self {
			return true
		}
	}
	return false
}

func killAll(dir string) {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
