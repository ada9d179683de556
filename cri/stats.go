package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container statistics come from the app's processes, not from cgroups:
// on a cgroup v1 host an app without resource limits has no memory or cpu
// cgroup of its own (it shares its pod's, or the host's), so cgroup
// figures would not be the container's. CPU is the user and system time
// of the app's process tree (the live processes and the children they
// have reaped), memory the sum of their resident sets, the writable layer
// the app's overlay upper directory.

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// appPIDs returns the host PIDs of app's processes in sandbox sb: the one
// its launcher recorded (found among the children of the pod's PID 1 by
// its PID in the pod, as `rkt enter` finds it) and its descendants.
func (sb *sandbox) appPIDs(app string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(pod.Stage1UpperDir(sb.p.Dir), "rkt", "pids", app))
	if err != nil {
		return nil, fmt.Errorf("app %s is not running", app)
	}
	inner := strings.TrimSpace(string(b))
	podPID, err := sb.p.Pid()
	if err != nil {
		return nil, err
	}
	main := pod.ChildByNSPid(podPID, inner)
	if main == 0 {
		return nil, fmt.Errorf("app %s (pid %s in the pod) not found", app, inner)
	}
	pids := []int{main}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, children(pids[i])...)
	}
	return pids, nil
}

// children lists the child processes of pid (of all its threads).
func children(pid int) []int {
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

// processUsage returns the CPU time (its own and its reaped children's)
// and resident set of one process.
func processUsage(pid int) (time.Duration, uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (field 3, state, is rest[0]).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	rest := strings.Fields(s[i+1:])
	if len(rest) < 15 {
		return 0, 0, errors.New("malformed stat")
	}
	var ticks int64
	for _, f := range rest[11:15] { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	var rss uint64
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				rss = kb * 1024
			}
		}
	}
	return time.Duration(ticks) * clockTick, rss, nil
}

// stats measures container c; a container that does not run has only
// its attributes and writable layer.
func (s *Server) stats(c *container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	cs := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.id, Metadata: c.metadata(), Labels: c.meta.Labels, Annotations: c.meta.Annotations}}
	upper := pod.AppUpperDir(c.sb.p.Dir, c.app)
	var used, inodes uint64
	_ = filepath.WalkDir(upper, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		inodes++
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			used += uint64(fi.Size())
		}
		return nil
	})
	cs.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: upper},
		UsedBytes: &runtimeapi.UInt64Value{Value: used}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes}}
	if st, err := c.state(); err != nil || criState(st) != runtimeapi.ContainerState_CONTAINER_RUNNING || !c.sb.running() {
		return cs
	}
	pids, err := c.sb.appPIDs(c.app)
	if err != nil {
		return cs
	}
	var cpu time.Duration
	var rss uint64
	for _, pid := range pids {
		if t, r, err := processUsage(pid); err == nil {
			cpu += t
			rss += r
		}
	}
	cs.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: uint64(cpu)}}
	cs.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: rss},
		UsageBytes: &runtimeapi.UInt64Value{Value: rss}, RssBytes: &runtimeapi.UInt64Value{Value: rss}}
	return cs
}

// ContainerStats reports one container's CPU time, memory and writable
// layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.stats(c)}, nil
}

// ListContainerStats reports the containers the filter lets through.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	all, err := s.containers()
	if err != nil {
		return nil, internal(err)
	}
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range all {
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.id, f.Id) {
				continue
			}
			if f.PodSandboxId != "" && !strings.HasPrefix(c.sb.p.UUID, f.PodSandboxId) {
				continue
			}
			if !labelsMatch(c.meta.Labels, f.LabelSelector) {
				continue
			}
		}
		out = append(out, s.stats(c))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// sandboxStats sums the statistics of the sandbox's containers: the
// pod's own processes (its systemd, journald) are the runtime's, not the
// pod's workload.
func (s *Server) sandboxStats(sb *sandbox, all []*container) *runtimeapi.PodSandboxStats {
	now := time.Now().UnixNano()
	lx := &runtimeapi.LinuxPodSandboxStats{}
	var cpu, mem uint64
	running := false
	for _, c := range all {
		if c.sb.p.UUID != sb.p.UUID {
			continue
		}
		cs := s.stats(c)
		lx.Containers = append(lx.Containers, cs)
		if cs.Cpu != nil {
			running = true
			cpu += cs.Cpu.UsageCoreNanoSeconds.GetValue()
			mem += cs.Memory.WorkingSetBytes.GetValue()
		}
	}
	if running {
		lx.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}}
		lx.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: mem},
			UsageBytes: &runtimeapi.UInt64Value{Value: mem}, RssBytes: &runtimeapi.UInt64Value{Value: mem}}
	}
	return &runtimeapi.PodSandboxStats{Linux: lx, Attributes: &runtimeapi.PodSandboxAttributes{
		Id: sb.p.UUID, Metadata: sb.metadata(), Labels: sb.meta.Labels, Annotations: sb.meta.Annotations}}
}

// PodSandboxStats reports a sandbox's containers and their sum.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	all, err := s.containers()
	if err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.sandboxStats(sb, all)}, nil
}

// ListPodSandboxStats reports the sandboxes the filter lets through.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	sbs, err := s.sandboxes()
	if err != nil {
		return nil, internal(err)
	}
	all, err := s.containers()
	if err != nil {
		return nil, internal(err)
	}
	f := req.GetFilter()
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range sbs {
		if f != nil && (f.Id != "" && !strings.HasPrefix(sb.p.UUID, f.Id) || !labelsMatch(sb.meta.Labels, f.LabelSelector)) {
			continue
		}
		out = append(out, s.sandboxStats(sb, all))
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}
