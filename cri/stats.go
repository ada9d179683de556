package cri

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/appstats"
	"github.com/rktng/rkt/pkg/pod"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container statistics come from the app's processes (pkg/appstats), the
// writable layer from the app's overlay upper directory.

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
	u, err := appstats.Of(c.sb.p, c.app)
	if err != nil {
		return cs
	}
	cpu, rss := u.CPU, u.RSS
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
