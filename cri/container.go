package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"github.com/rktng/rkt/pkg/cgroup"
	"github.com/rktng/rkt/pkg/ociconv"
	"github.com/rktng/rkt/stage0"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerMeta is what the CRI said of a container, kept on its app in
// the pod manifest (annContainer).
type containerMeta struct {
	Name        string            `json:"name"`
	Attempt     uint32            `json:"attempt"`
	Image       string            `json:"image"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	LogPath     string            `json:"logPath,omitempty"`
}

// container is one app of a sandbox that this server added.
type container struct {
	sb   *sandbox
	app  string
	id   string
	meta containerMeta
	ra   *schema.RuntimeApp
}

// containers lists the containers of every sandbox.
func (s *Server) containers() ([]*container, error) {
	sbs, err := s.sandboxes()
	if err != nil {
		return nil, err
	}
	var out []*container
	for _, sb := range sbs {
		for i := range sb.pm.Apps {
			ra := &sb.pm.Apps[i]
			v, ok := ra.Annotations.Get(annContainer)
			if !ok {
				continue
			}
			c := &container{sb: sb, app: ra.Name.String(), ra: ra}
			if err := json.Unmarshal([]byte(v), &c.meta); err != nil {
				continue
			}
			c.id = containerID(sb.p.UUID, c.app)
			if _, err := os.Stat(s.removedMark(c.id)); err == nil {
				continue
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Server) container(id string) (*container, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "no container ID")
	}
	all, err := s.containers()
	if err != nil {
		return nil, internal(err)
	}
	for _, c := range all {
		if c.id == id {
			return c, nil
		}
	}
	return nil, notFound("container %q not found", id)
}

// CreateContainer adds the container to its sandbox as an app, not
// started (`rkt app add`).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	if !sb.running() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sb.p.UUID)
	}
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "container config without metadata")
	}
	app, err := appName(md.Name, md.Attempt)
	if err != nil {
		return nil, err
	}
	ref := cfg.GetImage().GetImage()
	imageID, err := s.findImage(ref)
	if err != nil {
		return nil, err
	}
	meta := containerMeta{Name: md.Name, Attempt: md.Attempt, Image: ref, Labels: cfg.Labels, Annotations: cfg.Annotations, LogPath: cfg.LogPath}
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, internal(err)
	}
	args := []string{"app", "add", sb.p.UUID, imageID, "--name=" + app, "--annotation=" + annContainer + "=" + string(mj)}
	flags, err := s.appFlags(imageID, cfg)
	if err != nil {
		return nil, err
	}
	args = append(args, flags...)
	if _, err := s.rkt(ctx, args...); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: containerID(sb.p.UUID, app)}, nil
}

// appFlags turns a container config into rkt's per-app flags, the
// command line last.
func (s *Server) appFlags(imageID string, cfg *runtimeapi.ContainerConfig) ([]string, error) {
	var f []string
	for _, kv := range cfg.Envs {
		f = append(f, "--environment="+kv.Key+"="+string(kv.Value))
	}
	if cfg.WorkingDir != "" {
		f = append(f, "--working-dir="+cfg.WorkingDir)
	}
	// Every container's output can be attached to (kubectl attach); its
	// input only when the CRI asks for one. A terminal takes all three
	// streams, as the CRI's tty does (stderr joins stdout).
	switch {
	case cfg.Tty:
		f = append(f, "--stdin=tty", "--stdout=tty", "--stderr=tty")
	case cfg.Stdin:
		f = append(f, "--stdin=stream", "--stdout=stream", "--stderr=stream")
	default:
		f = append(f, "--stdout=stream", "--stderr=stream")
	}
	if cfg.StdinOnce && (cfg.Stdin || cfg.Tty) {
		f = append(f, "--stdin-once")
	}
	for i, m := range cfg.Mounts {
		f = append(f, fmt.Sprintf("--mnt-volume=name=cri-%d,kind=host,source=%s,target=%s,readOnly=%t", i, m.HostPath, m.ContainerPath, m.Readonly))
	}
	if lx := cfg.GetLinux(); lx != nil {
		sc := lx.GetSecurityContext()
		// The kubelet's PID namespace modes: CONTAINER (its default) a
		// namespace of the container's own; POD (shareProcessNamespace)
		// the pod's, which all its containers share. TARGET (an
		// ephemeral container's view of another) gets the pod's too.
		if sc.GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_CONTAINER {
			f = append(f, "--pid-namespace=private")
		}
		// Seccomp: RuntimeDefault and Unconfined (the kubelet's default
		// when a pod names no profile, so not a request for none) get
		// the launcher's default filter; a Localhost profile, a file on
		// the node, replaces it (rkt reads and checks it).
		if sp := sc.GetSeccomp(); sp.GetProfileType() == runtimeapi.SecurityProfile_Localhost {
			ref := sp.GetLocalhostRef()
			if !filepath.IsAbs(ref) {
				return nil, status.Errorf(codes.InvalidArgument, "seccomp profile %q: a Localhost profile must be an absolute path", ref)
			}
			// Checked here too, so that a missing or bad profile is the
			// kubelet's InvalidArgument rather than a failed rkt.
			data, err := os.ReadFile(ref)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "seccomp profile: %v", err)
			}
			if _, err := seccomp.ParseProfile(data); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "seccomp profile %s: %v", ref, err)
			}
			f = append(f, "--seccomp-profile="+ref)
		}
		if sc.GetPrivileged() {
			// Every capability, no seccomp filter, the host's devices:
			// what capabilities, seccomp and masked paths say below
			// no longer applies.
			f = append(f, "--privileged")
		}
		switch {
		case sc.GetRunAsUser() != nil:
			f = append(f, "--user="+strconv.FormatInt(sc.GetRunAsUser().Value, 10))
		case sc.GetRunAsUsername() != "":
			f = append(f, "--user="+sc.GetRunAsUsername())
		}
		if sc.GetRunAsGroup() != nil {
			f = append(f, "--group="+strconv.FormatInt(sc.GetRunAsGroup().Value, 10))
		}
		if gids := sc.GetSupplementalGroups(); len(gids) > 0 {
			var s []string
			for _, g := range gids {
				s = append(s, strconv.FormatInt(g, 10))
			}
			f = append(f, "--supplementary-gids="+strings.Join(s, ","))
		}
		if sc.GetReadonlyRootfs() {
			f = append(f, "--readonly-rootfs")
		}
		if sc.GetNoNewPrivs() {
			f = append(f, "--no-new-privileges")
		}
		if c := sc.GetCapabilities(); !sc.GetPrivileged() && c != nil && (len(c.AddCapabilities) > 0 || len(c.DropCapabilities) > 0) {
			if set := capSet(c.AddCapabilities, c.DropCapabilities); len(set) > 0 {
				f = append(f, "--caps-retain="+strings.Join(set, ","))
			} else {
				// drop: [ALL] (the restricted Pod Security Standard): an
				// appc retain set may not be empty, a remove set of the
				// whole default set leaves none.
				f = append(f, "--caps-remove="+strings.Join(caps.Default(), ","))
			}
		}
		l := limits(lx.GetResources())
		if l.MemoryBytes > 0 {
			f = append(f, "--memory="+strconv.FormatInt(l.MemoryBytes, 10))
		}
		if l.CPUMilli > 0 {
			f = append(f, fmt.Sprintf("--cpu=%dm", l.CPUMilli))
		}
		if l.CPUShares > 0 {
			f = append(f, "--cpu-shares="+strconv.FormatUint(l.CPUShares, 10))
		}
	}
	// Kubernetes' command replaces the image's entrypoint and its args
	// the image's cmd; an image converted from Docker keeps its
	// entrypoint apart (ociconv's annotation), an ACI has one exec line.
	cmd := cfg.Command
	if len(cmd) == 0 && len(cfg.Args) > 0 {
		cmd = s.entrypoint(imageID)
	}
	switch {
	case len(cmd) > 0:
		f = append(f, "--exec="+cmd[0], "--")
		f = append(append(f, cmd[1:]...), cfg.Args...)
	case len(cfg.Args) > 0:
		f = append(append(f, "--"), cfg.Args...)
	}
	return f, nil
}

// capSet is the runtime's default capability set with add added and drop
// removed, as Kubernetes means them ("ALL" in drop empties it first).
func capSet(add, drop []string) []string {
	norm := func(c string) string {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	have := map[string]bool{}
	var out []string
	for _, c := range caps.Default() {
		have[c] = true
	}
	for _, c := range drop {
		if strings.EqualFold(c, "ALL") {
			have = map[string]bool{}
			break
		}
		delete(have, norm(c))
	}
	for _, c := range add {
		have[norm(c)] = true
	}
	for c := range have {
		out = append(out, c)
	}
	return out
}

// entrypoint is the Docker entrypoint an image converted by ociconv
// recorded, if any.
func (s *Server) entrypoint(imageID string) []string {
	st, err := s.openStore()
	if err != nil {
		return nil
	}
	im, err := st.Manifest(imageID)
	if err != nil {
		return nil
	}
	v, ok := im.Annotations.Get(ociconv.AnnotationEntrypoint)
	if !ok {
		return nil
	}
	var ep []string
	_ = json.Unmarshal([]byte(v), &ep)
	return ep
}

// StartContainer starts the container's app (`rkt app start`).
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	// The log file first: a container whose output has nowhere to go
	// does not start.
	if err := s.startLogs(c); err != nil {
		return nil, internal(err)
	}
	if _, err := s.rkt(ctx, "app", "start", c.sb.p.UUID, "--app="+c.app); err != nil {
		s.stopLogs(c.id)
		return nil, internal(err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops the container's app (`rkt app stop`: SIGTERM, then
// SIGKILL after its own 10 s). A container already stopped is not an
// error.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if !c.sb.running() {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if _, err := s.rkt(ctx, "app", "stop", c.sb.p.UUID, "--app="+c.app); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes the container's app from its sandbox (`rkt app
// rm`, which stops it first). A container already gone is not an error.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.container(req.ContainerId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	s.stopLogs(c.id)
	defer os.Remove(s.cursorPath(c.id))
	if !c.sb.running() {
		// Nothing runs to remove the app from, and its files go with
		// the pod: the container is only forgotten (the kubelet
		// removes dead containers of a stopped sandbox before the
		// sandbox itself).
		if err := os.WriteFile(s.removedMark(c.id), nil, 0o600); err != nil {
			return nil, internal(err)
		}
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if _, err := s.rkt(ctx, "app", "rm", c.sb.p.UUID, "--app="+c.app); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// removedDir, in the state directory, marks the containers removed from
// sandboxes that had stopped.
const removedDir = "removed"

func (s *Server) removedMark(id string) string { return filepath.Join(s.cfg.StateDir, removedDir, id) }

// state reads the container's app state as `rkt app status` would.
func (c *container) state() (stage0.AppState, error) {
	states, err := stage0.AppStates(c.sb.p)
	if err != nil {
		return stage0.AppState{}, err
	}
	for _, st := range states {
		if st.Name == c.app {
			return st, nil
		}
	}
	return stage0.AppState{}, errors.New("app gone")
}

func criState(st stage0.AppState) runtimeapi.ContainerState {
	switch st.State {
	case stage0.AppCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case stage0.AppRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case stage0.AppExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *container) metadata() *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: c.meta.Name, Attempt: c.meta.Attempt}
}

// ContainerStatus reports the container's state, times and exit code.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	st, err := c.state()
	if err != nil {
		return nil, notFound("container %q: %v", req.ContainerId, err)
	}
	cs := &runtimeapi.ContainerStatus{
		Id: c.id, Metadata: c.metadata(), State: criState(st),
		CreatedAt: nanos(st.Created), StartedAt: nanos(st.Started), FinishedAt: nanos(st.Finished),
		Image: &runtimeapi.ImageSpec{Image: c.meta.Image}, ImageRef: st.ImageID, ImageId: st.ImageID,
		Labels: c.meta.Labels, Annotations: c.meta.Annotations, LogPath: c.meta.LogPath,
	}
	if st.ExitCode != nil {
		cs.ExitCode = int32(*st.ExitCode)
		cs.Reason = "Completed"
		if *st.ExitCode != 0 {
			cs.Reason = "Error"
		}
	}
	for _, m := range c.ra.Mounts {
		if v := m.AppVolume; v != nil && v.Kind == "host" {
			cs.Mounts = append(cs.Mounts, &runtimeapi.Mount{ContainerPath: m.Path, HostPath: v.Source, Readonly: v.ReadOnly != nil && *v.ReadOnly})
		}
	}
	// The limits in force (after UpdateContainerResources too), read back
	// from the container's cgroups while it runs.
	if cs.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		if l, err := cgroup.AppLimits(c.sb.p.Dir, c.app); err == nil && !l.Empty() {
			cs.Resources = &runtimeapi.ContainerResources{Linux: resources(l)}
		}
	}
	return &runtimeapi.ContainerStatusResponse{Status: cs}, nil
}

// ListContainers lists the containers the filter lets through (an ID or
// its prefix, a sandbox, a state, labels).
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	all, err := s.containers()
	if err != nil {
		return nil, internal(err)
	}
	f := req.GetFilter()
	var out []*runtimeapi.Container
	for _, c := range all {
		st, err := c.state()
		if err != nil {
			continue
		}
		state := criState(st)
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.id, f.Id) {
				continue
			}
			if f.PodSandboxId != "" && !strings.HasPrefix(c.sb.p.UUID, f.PodSandboxId) {
				continue
			}
			if f.State != nil && f.State.State != state {
				continue
			}
			if !labelsMatch(c.meta.Labels, f.LabelSelector) {
				continue
			}
		}
		out = append(out, &runtimeapi.Container{Id: c.id, PodSandboxId: c.sb.p.UUID, Metadata: c.metadata(),
			Image: &runtimeapi.ImageSpec{Image: c.meta.Image}, ImageRef: st.ImageID, ImageId: st.ImageID, State: state,
			CreatedAt: nanos(st.Created), Labels: c.meta.Labels, Annotations: c.meta.Annotations})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ExecSync runs a command in the container (`rkt enter`: with exactly
// the app's restrictions) and returns its output and exit code.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.container(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command")
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	args := append(append([]string{}, s.cfg.GlobalArgs...), "enter", "--app="+c.app, c.sb.p.UUID)
	cmd := exec.CommandContext(ctx, s.cfg.Rkt, append(args, req.Cmd...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, status.Errorf(codes.DeadlineExceeded, "command timed out after %d s", req.Timeout)
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return nil, internal(err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}
