package pod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/lock"
	"golang.org/x/sys/unix"
)

// Sentinel errors of pod lookups, matched with errors.Is.
var (
	// ErrNotFound: no pod has that UUID or UUID prefix.
	ErrNotFound = errors.New("no such pod")
	// ErrAmbiguous: a UUID prefix matches several pods.
	ErrAmbiguous = errors.New("ambiguous pod UUID prefix")
)

// Status is a pod's state as users see it: its directory plus whether its
// lock is held. The names are rkt's.
type Status string

// The statuses `rkt list` and `rkt status` print.
const (
	StatusEmbryo         Status = "embryo"
	StatusPreparing      Status = "preparing"
	StatusAbortedPrepare Status = "aborted prepare"
	StatusPrepared       Status = "prepared"
	StatusRunning        Status = "running"
	StatusExited         Status = "exited"
	StatusDeleting       Status = "deleting"
	StatusExitedGarbage  Status = "exited garbage"
	StatusGarbage        Status = "garbage"
)

// Pod is one pod directory found under DIR/pods, as it was when looked at:
// another process may move it to another state at any time.
type Pod struct {
	DataDir string
	UUID    string
	State   State
	// Dir is DIR/pods/STATE/UUID.
	Dir string
}

// Open finds the pod whose UUID is uuid or starts with it, in any state.
func Open(dataDir, uuid string) (*Pod, error) {
	uuid = strings.ToLower(strings.TrimSpace(uuid))
	if uuid == "" {
		return nil, fmt.Errorf("empty pod UUID: %w", ErrNotFound)
	}
	// A pod moves between states by rename; look twice before giving up
	// so that a pod renamed while we scanned is still found.
	for attempt := 0; attempt < 2; attempt++ {
		var found []*Pod
		for _, s := range States {
			if len(uuid) == 36 {
				d := Dir(dataDir, s, uuid)
				if _, err := os.Lstat(d); err == nil {
					found = append(found, &Pod{DataDir: dataDir, UUID: uuid, State: s, Dir: d})
				}
				continue
			}
			names, _ := readDirNames(StateDir(dataDir, s))
			for _, n := range names {
				if strings.HasPrefix(n, uuid) {
					found = append(found, &Pod{DataDir: dataDir, UUID: n, State: s, Dir: Dir(dataDir, s, n)})
				}
			}
		}
		uniq := map[string]bool{}
		for _, p := range found {
			uniq[p.UUID] = true
		}
		switch {
		case len(uniq) == 1:
			return found[len(found)-1], nil
		case len(uniq) > 1:
			return nil, fmt.Errorf("%s: %w", uuid, ErrAmbiguous)
		}
	}
	return nil, fmt.Errorf("%s: %w", uuid, ErrNotFound)
}

// OpenUUIDFile opens the pod whose UUID is written in file (--uuid-file).
func OpenUUIDFile(dataDir, file string) (*Pod, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read UUID file: %w", err)
	}
	return Open(dataDir, strings.TrimSpace(string(data)))
}

// List returns every pod in the given states (all states when none given),
// sorted by creation time.
func List(dataDir string, states ...State) ([]*Pod, error) {
	if len(states) == 0 {
		states = States
	}
	var pods []*Pod
	seen := map[string]bool{}
	for _, s := range states {
		names, err := readDirNames(StateDir(dataDir, s))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			pods = append(pods, &Pod{DataDir: dataDir, UUID: n, State: s, Dir: Dir(dataDir, s, n)})
		}
	}
	created := map[string]time.Time{}
	for _, p := range pods {
		created[p.UUID] = p.Created()
	}
	sort.SliceStable(pods, func(i, j int) bool { return created[pods[i].UUID].Before(created[pods[j].UUID]) })
	return pods, nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", dir, err)
	}
	return names, nil
}

// Refresh finds the pod again after it may have changed state.
func (p *Pod) Refresh() error {
	np, err := Open(p.DataDir, p.UUID)
	if err != nil {
		return err
	}
	*p = *np
	return nil
}

// Locked reports whether some process holds the pod directory's lock.
func (p *Pod) Locked() bool {
	l, err := lock.Open(p.Dir)
	if err != nil {
		return false
	}
	defer l.Close()
	return l.TryShared() != nil
}

// Status combines the pod's directory with its lock into rkt's status.
func (p *Pod) Status() Status {
	switch p.State {
	case Embryo:
		return StatusEmbryo
	case Preparing:
		if p.Locked() {
			return StatusPreparing
		}
		return StatusAbortedPrepare
	case Prepared:
		return StatusPrepared
	case Run:
		if p.Locked() {
			return StatusRunning
		}
		return StatusExited
	case ExitedGarbage:
		if p.Locked() {
			return StatusDeleting
		}
		return StatusExitedGarbage
	}
	return StatusGarbage
}

// Path is a file inside the pod directory.
func (p *Pod) Path(name string) string { return filepath.Join(p.Dir, name) }

// ManifestBytes returns the pod manifest as stored.
func (p *Pod) ManifestBytes() ([]byte, error) {
	b, err := os.ReadFile(p.Path(ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("pod %s manifest: %w", p.UUID, err)
	}
	return b, nil
}

// Manifest returns the parsed pod manifest.
func (p *Pod) Manifest() (*schema.PodManifest, error) {
	b, err := p.ManifestBytes()
	if err != nil {
		return nil, err
	}
	var m schema.PodManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("pod %s manifest: %w", p.UUID, err)
	}
	return &m, nil
}

// RuntimeConfig reads the pod's runtime-config file.
func (p *Pod) RuntimeConfig() (*RuntimeConfig, error) {
	return ReadRuntimeConfig(p.Dir)
}

// ReadRuntimeConfig reads podDir/runtime-config.
func ReadRuntimeConfig(podDir string) (*RuntimeConfig, error) {
	b, err := os.ReadFile(filepath.Join(podDir, RuntimeConfigFile))
	if err != nil {
		return nil, fmt.Errorf("runtime config: %w", err)
	}
	var rc RuntimeConfig
	if err := json.Unmarshal(b, &rc); err != nil {
		return nil, fmt.Errorf("runtime config %s: %w", podDir, err)
	}
	return &rc, nil
}

// Created is the pod's creation time, the mtime of pod-created.
func (p *Pod) Created() time.Time {
	fi, err := os.Stat(p.Path(CreatedFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Started is when stage1 reported the pod's process, the mtime of the pid
// (or ppid) file; zero when it never started.
func (p *Pod) Started() time.Time {
	for _, n := range []string{PIDFile, PPIDFile} {
		if fi, err := os.Stat(p.Path(n)); err == nil {
			return fi.ModTime()
		}
	}
	return time.Time{}
}

// Pid returns the pod's process as stage1 recorded it in pid.
func (p *Pod) Pid() (int, error) { return readInt(p.Path(PIDFile)) }

// Ppid returns the process stage1 recorded in ppid.
func (p *Pod) Ppid() (int, error) { return readInt(p.Path(PPIDFile)) }

// NamespacePid is a process in the mount namespace holding the pod's
// mounts (the private namespace stage0 made before exec'ing stage1): the
// holder of the pod's lock, which is stage0 itself become stage1's run
// entrypoint; failing that, ppid, then pid.
func (p *Pod) NamespacePid() (int, error) {
	if pid, err := p.LockHolder(); err == nil && ProcessAlive(pid) {
		return pid, nil
	}
	if pid, err := p.Ppid(); err == nil {
		return pid, nil
	}
	return p.Pid()
}

// LockHolder finds, in /proc/locks, the process holding the flock on the
// pod directory.
func (p *Pod) LockHolder() (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(p.Dir, &st); err != nil {
		return 0, err
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; waiters
		// are listed with "->" and hold nothing.
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("pod %s: no process holds its lock", p.UUID)
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Stage1TreeID reads stage1TreeStoreID.
func (p *Pod) Stage1TreeID() (string, error) {
	b, err := os.ReadFile(p.Path(Stage1TreeIDFile))
	if err != nil {
		return "", fmt.Errorf("pod %s: %w", p.UUID, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Stage1UpperDir is where the stage1 root's writes land: the overlay's
// upper directory, or the stage1 root itself when it is a copy. From the
// host, files that stage1 writes (rkt/status, rkt/env) are read here,
// since the overlay itself is only mounted inside the pod's namespace.
func Stage1UpperDir(podDir string) string {
	if _, err := os.Stat(filepath.Join(podDir, OverlayPrepared)); err == nil {
		if b, err := os.ReadFile(filepath.Join(podDir, Stage1TreeIDFile)); err == nil {
			return filepath.Join(OverlayDir(podDir, strings.TrimSpace(string(b))), "upper")
		}
	}
	return Stage1RootfsPath(podDir)
}

// AppUpperDir is where app's writes to its root land, seen from the host.
func AppUpperDir(podDir, app string) string {
	if _, err := os.Stat(filepath.Join(podDir, OverlayPrepared)); err == nil {
		if b, err := os.ReadFile(AppTreeStoreIDPath(podDir, app)); err == nil {
			return filepath.Join(OverlayDir(podDir, strings.TrimSpace(string(b))), "upper", app)
		}
	}
	return AppRootfsPath(podDir, app)
}

// AppExitCode returns the exit code stage1 recorded for app.
func (p *Pod) AppExitCode(app string) (int, error) {
	return readInt(filepath.Join(Stage1UpperDir(p.Dir), "rkt", "status", app))
}

// AppExitTime is when stage1 recorded app's exit; zero when it has not.
func (p *Pod) AppExitTime(app string) time.Time {
	fi, err := os.Stat(filepath.Join(Stage1UpperDir(p.Dir), "rkt", "status", app))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Ready reports whether stage1 said its supervisor is up:
// rkt/supervisor-status links to "ready".
func (p *Pod) Ready() bool {
	t, err := os.Readlink(filepath.Join(Stage1UpperDir(p.Dir), "rkt", "supervisor-status"))
	return err == nil && t == "ready"
}

// WaitExited blocks until the pod has run and its lock is free, or ctx ends.
func (p *Pod) WaitExited(ctx context.Context) error {
	for {
		if err := p.Refresh(); err != nil {
			return err
		}
		switch p.State {
		case Run, ExitedGarbage, Garbage:
			l, err := lock.Open(p.Dir)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // renamed under us: look again
				}
				return err
			}
			err = waitLock(ctx, l)
			l.Close()
			return err
		}
		// Not running yet (embryo, prepare, prepared): poll.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLock takes and drops a shared lock, giving up when ctx ends. A
// blocking flock cannot be interrupted by a context, so poll.
func waitLock(ctx context.Context, l *lock.FileLock) error {
	delay := time.Millisecond
	for {
		err := l.TryShared()
		if err == nil {
			return l.Unlock()
		}
		if !errors.Is(err, lock.ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// WaitReady blocks until the pod runs and stage1 reported ready (or, for a
// stage1 that never reports, wrote its pid), or ctx ends.
func (p *Pod) WaitReady(ctx context.Context) error {
	for {
		if err := p.Refresh(); err != nil {
			return err
		}
		if p.State == Run {
			if p.Ready() {
				return nil
			}
			if _, err := p.Pid(); err == nil {
				return nil
			}
			if !p.Locked() {
				return fmt.Errorf("pod %s exited before it was ready", p.UUID)
			}
		} else if p.State != Embryo && p.State != Preparing && p.State != Prepared {
			return fmt.Errorf("pod %s is %s", p.UUID, p.Status())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ProcessAlive reports whether pid exists.
func ProcessAlive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) != unix.ESRCH
}

// DescendantByNSPid returns the host PID of the descendant of process
// root whose PID in root's PID namespace is nsPid (as an app's launcher
// records it inside the pod), or 0 when none has it. It maps an app's
// recorded PID to the host's from the pod's PID 1; the app may be a
// grandchild, in a PID namespace of its own.
func DescendantByNSPid(root int, nsPid string) int {
	depth := len(nsPIDs(root)) - 1
	if depth < 0 {
		return 0
	}
	queue := ChildPIDs(root)
	for i := 0; i < len(queue) && i < 100000; i++ {
		if ns := nsPIDs(queue[i]); len(ns) > depth && ns[depth] == nsPid {
			return queue[i]
		}
		queue = append(queue, ChildPIDs(queue[i])...)
	}
	return 0
}

// nsPIDs is process pid's NSpid line: its PIDs from the host's namespace
// down to its own.
func nsPIDs(pid int) []string {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return f[1:]
		}
	}
	return nil
}

// ChildPIDs lists the children of process pid (of all its threads).
func ChildPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
