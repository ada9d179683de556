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
	l := cgroup.Limits{MemoryBytes: r.MemoryLimitInBytes}
	if r.CpuQuota > 0 && r.CpuPeriod > 0 {
		l.CPUMilli = r.CpuQuota * 1000 / r.CpuPeriod
	}
	if r.CpuShares >= 2 {
		l.CPUShares = uint64(r.CpuShares)
	}
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
