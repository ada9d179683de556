package cri

import (
	"context"
	"errors"

	"github.com/rktng/rkt/pkg/cgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources changes a running container's memory limit,
// CPU quota and CPU shares in place (the kubelet's CPU manager and in-place
// resize), in the cgroup the container was started with: a kind of limit it
// was started without cannot be added (FailedPrecondition). CPU sets,
// hugepages and the rest are not applied.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	r := req.GetLinux()
	if r == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	l := limits(r)
	if !c.sb.running() {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s: its sandbox is not running", c.id)
	}
	switch err := cgroup.UpdateApp(c.sb.p.Dir, c.app, l); {
	case errors.Is(err, cgroup.ErrNotLimited), errors.Is(err, cgroup.ErrBadLimit):
		return nil, status.Errorf(codes.FailedPrecondition, "container %s: %v", c.id, err)
	case err != nil:
		return nil, internal(err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// limits are the parts of a container's resources that rkt applies: the
// memory limit, the CPU quota (in thousandths of a CPU) and CPU shares.
func limits(r *runtimeapi.LinuxContainerResources) cgroup.Limits {
	l := cgroup.Limits{MemoryBytes: r.GetMemoryLimitInBytes()}
	if r.GetCpuQuota() > 0 && r.GetCpuPeriod() > 0 {
		l.CPUMilli = r.GetCpuQuota() * 1000 / r.GetCpuPeriod()
	}
	if r.GetCpuShares() >= 2 {
		l.CPUShares = uint64(r.GetCpuShares())
	}
	return l
}

// resources are limits l as the CRI reports them (a 100 ms CPU period,
// as rkt sets).
func resources(l cgroup.Limits) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: l.MemoryBytes, CpuShares: int64(l.CPUShares)}
	if l.CPUMilli > 0 {
		r.CpuPeriod, r.CpuQuota = 100000, l.CPUMilli*100
	}
	return r
}
