package cri

import (
	"context"
	"sort"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container events (GetContainerEvents, the kubelet's evented PLEG) come
// from comparing what every container's state is with what it was a
// moment before, rather than from the calls that change it: an app also
// exits on its own, and the rkt command line changes pods too. The
// kubelet relists anyway, much less often, as it does for every runtime.

// eventInterval is how often states are compared while a client listens.
const eventInterval = 250 * time.Millisecond

// containerSnapshot is where a container stood at one look.
type containerSnapshot struct {
	sandbox string
	state   runtimeapi.ContainerState
}

// snapshot reads every container's state.
func (s *Server) snapshot() map[string]containerSnapshot {
	all, err := s.containers()
	if err != nil {
		return nil
	}
	out := make(map[string]containerSnapshot, len(all))
	for _, c := range all {
		st, err := c.state()
		if err != nil {
			continue
		}
		out[c.id] = containerSnapshot{sandbox: c.sb.p.UUID, state: criState(st)}
	}
	return out
}

// containerEvent is one change of a container, found by comparing two
// snapshots.
type containerEvent struct {
	id, sandbox string
	kind        runtimeapi.ContainerEventType
}

// containerEvents are the events that take prev to cur, in container ID
// order.
func containerEvents(prev, cur map[string]containerSnapshot) []containerEvent {
	var out []containerEvent
	ids := make([]string, 0, len(prev)+len(cur))
	for id := range cur {
		ids = append(ids, id)
	}
	for id := range prev {
		if _, ok := cur[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		p, had := prev[id]
		c, has := cur[id]
		switch {
		case !has:
			out = append(out, containerEvent{id, p.sandbox, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT})
			continue
		case !had:
			out = append(out, containerEvent{id, c.sandbox, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT})
			p.state = runtimeapi.ContainerState_CONTAINER_CREATED
		}
		if c.state == p.state {
			continue
		}
		switch c.state {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			out = append(out, containerEvent{id, c.sandbox, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT})
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			if p.state == runtimeapi.ContainerState_CONTAINER_CREATED {
				// It ran between two looks.
				out = append(out, containerEvent{id, c.sandbox, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT})
			}
			out = append(out, containerEvent{id, c.sandbox, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT})
		}
	}
	return out
}

// GetContainerEvents streams the containers' lifecycle events, each with
// its sandbox's status and the statuses of the sandbox's containers, until
// the client goes.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ctx := stream.Context()
	prev := s.snapshot()
	tick := time.NewTicker(eventInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur := s.snapshot()
		if cur == nil {
			continue
		}
		for _, e := range containerEvents(prev, cur) {
			resp := &runtimeapi.ContainerEventResponse{ContainerId: e.id, ContainerEventType: e.kind,
				CreatedAt: time.Now().UnixNano()}
			resp.PodSandboxStatus, resp.ContainersStatuses = s.sandboxStatuses(ctx, e.sandbox)
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		prev = cur
	}
}

// sandboxStatuses are a sandbox's status and its containers', as far as
// they can still be read.
func (s *Server) sandboxStatuses(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, []*runtimeapi.ContainerStatus) {
	var sbs *runtimeapi.PodSandboxStatus
	if r, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); err == nil {
		sbs = r.Status
	}
	all, err := s.containers()
	if err != nil {
		return sbs, nil
	}
	var out []*runtimeapi.ContainerStatus
	for _, c := range all {
		if c.sb.p.UUID != id {
			continue
		}
		if r, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id}); err == nil {
			out = append(out, r.Status)
		}
	}
	return sbs, out
}
