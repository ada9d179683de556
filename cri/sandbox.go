package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxMeta is what the CRI said of a sandbox, kept in its pod's
// manifest (annSandbox).
type sandboxMeta struct {
	Name        string            `json:"name"`
	UID         string            `json:"uid"`
	Namespace   string            `json:"namespace"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// NodeNetwork: the sandbox shares the node's network namespace.
	NodeNetwork bool `json:"nodeNetwork,omitempty"`
	// NodeIPC: the sandbox shares the node's IPC namespace.
	NodeIPC bool `json:"nodeIPC,omitempty"`
	// UsernsHostID and UsernsLength are the host IDs the sandbox's user
	// namespace maps from 0 (hostUsers: false); 0 and 0 for none.
	UsernsHostID uint32 `json:"usernsHostID,omitempty"`
	UsernsLength uint32 `json:"usernsLength,omitempty"`
	// LogDirectory is where the kubelet wants its containers' logs.
	LogDirectory string `json:"logDirectory,omitempty"`
}

// sandbox is one pod made by this server, as its directory tells.
type sandbox struct {
	p    *pod.Pod
	pm   *schema.PodManifest
	meta sandboxMeta
}

func (sb *sandbox) running() bool { return sb.p.Status() == pod.StatusRunning }

// sandboxes lists the pods made by this server, running or exited.
func (s *Server) sandboxes() ([]*sandbox, error) {
	pods, err := pod.List(s.cfg.DataDir, pod.Run, pod.ExitedGarbage)
	if err != nil {
		return nil, err
	}
	var out []*sandbox
	for _, p := range pods {
		pm, err := p.Manifest()
		if err != nil {
			continue // being removed
		}
		v, ok := pm.Annotations.Get(annSandbox)
		if !ok {
			continue
		}
		sb := &sandbox{p: p, pm: pm}
		if err := json.Unmarshal([]byte(v), &sb.meta); err != nil {
			continue
		}
		out = append(out, sb)
	}
	return out, nil
}

// sandbox finds the sandbox with ID id (its pod's UUID).
func (s *Server) sandbox(id string) (*sandbox, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "no pod sandbox ID")
	}
	all, err := s.sandboxes()
	if err != nil {
		return nil, internal(err)
	}
	for _, sb := range all {
		if sb.p.UUID == id {
			return sb, nil
		}
	}
	return nil, notFound("pod sandbox %q not found", id)
}

// RunPodSandbox starts `rkt app sandbox` for the pod, in the background
// and in a session of its own (it outlives this server), and returns once
// the pod is ready for containers.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "pod sandbox config without metadata")
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		// nspawn pods always have a PID namespace of their own, whose
		// PID 1 is the pod's systemd: running in the host's instead
		// would be a different pod, not a weaker one.
		return nil, status.Error(codes.InvalidArgument, "hostPID: a pod in the host's PID namespace is not supported (each pod's systemd is its PID 1)")
	}
	hostID, length, err := usernsMapping(ns.GetUsernsOptions())
	if err != nil {
		return nil, err
	}
	meta := sandboxMeta{Name: md.Name, UID: md.Uid, Namespace: md.Namespace, Attempt: md.Attempt,
		UsernsHostID: hostID, UsernsLength: length,
		Labels: cfg.Labels, Annotations: cfg.Annotations,
		NodeNetwork:  ns.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		NodeIPC:      ns.GetIpc() == runtimeapi.NamespaceMode_NODE,
		LogDirectory: cfg.LogDirectory}
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, internal(err)
	}
	f, err := os.CreateTemp(s.cfg.StateDir, "sandbox-*")
	if err != nil {
		return nil, internal(err)
	}
	log := f.Name()
	uuidFile := log + ".uuid"
	defer os.Remove(uuidFile)
	args := append([]string{"app", "sandbox", "--uuid-file-save=" + uuidFile, "--annotation=" + annSandbox + "=" + string(mj)}, s.cfg.SandboxArgs...)
	if meta.NodeNetwork {
		args = append(args, "--net=host")
	} else {
		for _, n := range s.cfg.Nets {
			args = append(args, "--net="+n)
		}
	}
	if meta.UsernsLength > 0 {
		args = append(args, fmt.Sprintf("--private-users=%d:%d", meta.UsernsHostID, meta.UsernsLength))
	}
	if meta.NodeIPC {
		args = append(args, "--ipc=parent")
	}
	if cfg.GetLinux().GetSecurityContext().GetPrivileged() {
		// The kubelet marks the sandbox of a pod with a privileged
		// container privileged.
		args = append(args, "--privileged")
	}
	if cfg.Hostname != "" {
		args = append(args, "--hostname="+cfg.Hostname)
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		for _, d := range dns.Servers {
			args = append(args, "--dns="+d)
		}
		for _, d := range dns.Searches {
			args = append(args, "--dns-search="+d)
		}
		for _, d := range dns.Options {
			args = append(args, "--dns-opt="+d)
		}
	}
	for _, pm := range cfg.PortMappings {
		if pm.HostPort == 0 {
			continue // nothing to forward from
		}
		proto := strings.ToLower(pm.Protocol.String())
		host := strconv.Itoa(int(pm.HostPort))
		if pm.HostIp != "" {
			host = pm.HostIp + ":" + host
		}
		args = append(args, fmt.Sprintf("--port=%s-%d:%s:%d:%s", proto, pm.ContainerPort, proto, pm.ContainerPort, host))
	}
	cmd := exec.Command(s.cfg.Rkt, append(append([]string{}, s.cfg.GlobalArgs...), args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	f.Close()
	if err != nil {
		os.Remove(log)
		return nil, internal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	uuid, err := waitUUID(ctx, uuidFile, exited)
	if err == nil {
		_, err = s.rkt(ctx, "status", "--wait-ready=60s", uuid)
	}
	if err != nil {
		if uuid != "" {
			_, _ = s.rkt(context.Background(), "stop", "--force", uuid)
			<-exited
			_, _ = s.rkt(context.Background(), "rm", uuid)
		}
		msg := lastLine(log)
		os.Remove(log)
		if msg != "" {
			err = errors.New(strings.TrimPrefix(msg, "rkt: "))
		}
		return nil, internal(fmt.Errorf("run pod sandbox %s: %w", md.Name, err))
	}
	_ = os.Rename(log, filepath.Join(s.cfg.StateDir, uuid+".log"))
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: uuid}, nil
}

// waitUUID waits for the sandbox to write its UUID, or to exit first.
func waitUUID(ctx context.Context, path string, exited <-chan struct{}) (string, error) {
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
		select {
		case <-exited:
			if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				return strings.TrimSpace(string(b)), errors.New("the sandbox exited")
			}
			return "", errors.New("the sandbox exited")
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", errors.New("no pod after 60 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lastLine is the last non-empty line of the file at path.
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// StopPodSandbox stops the pod and so every container in it: as `rkt
// stop`, then forced if it has not ended after 30 s. A sandbox already
// stopped or gone is not an error.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopPod(ctx, sb); err != nil {
		return nil, internal(err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *Server) stopPod(ctx context.Context, sb *sandbox) error {
	if !sb.running() {
		return nil
	}
	if _, err := s.rkt(ctx, "stop", sb.p.UUID); err != nil && sb.running() {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sb.p.WaitExited(wctx); err == nil {
		return nil
	}
	if _, err := s.rkt(ctx, "stop", "--force", sb.p.UUID); err != nil && sb.running() {
		return err
	}
	return sb.p.WaitExited(ctx)
}

// RemovePodSandbox stops the pod if it runs and removes it (rkt rm): its
// containers go with it. A sandbox already gone is not an error.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopPod(ctx, sb); err != nil {
		return nil, internal(err)
	}
	if _, err := s.rkt(ctx, "rm", sb.p.UUID); err != nil {
		if _, gone := s.sandbox(sb.p.UUID); status.Code(gone) != codes.NotFound {
			return nil, internal(err)
		}
	}
	os.Remove(filepath.Join(s.cfg.StateDir, sb.p.UUID+".log"))
	for i := range sb.pm.Apps {
		id := containerID(sb.p.UUID, sb.pm.Apps[i].Name.String())
		s.stopLogs(id)
		os.Remove(s.removedMark(id))
		os.Remove(s.cursorPath(id))
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (sb *sandbox) state() runtimeapi.PodSandboxState {
	if sb.running() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func (sb *sandbox) metadata() *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: sb.meta.Name, Uid: sb.meta.UID, Namespace: sb.meta.Namespace, Attempt: sb.meta.Attempt}
}

// ip is the pod's address on its first network, "" on the node's.
func (sb *sandbox) ip() string {
	var nets []struct {
		IP string `json:"ip"`
	}
	b, err := os.ReadFile(sb.p.Path(pod.NetInfoFile))
	if err != nil || json.Unmarshal(b, &nets) != nil {
		return ""
	}
	for _, n := range nets {
		if n.IP != "" {
			return n.IP
		}
	}
	return ""
}

// PodSandboxStatus reports the sandbox's state, address and metadata.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	mode := func(node bool) runtimeapi.NamespaceMode {
		if node {
			return runtimeapi.NamespaceMode_NODE
		}
		return runtimeapi.NamespaceMode_POD
	}
	opts := &runtimeapi.NamespaceOption{Network: mode(sb.meta.NodeNetwork), Ipc: mode(sb.meta.NodeIPC), Pid: runtimeapi.NamespaceMode_POD}
	if m := sb.meta; m.UsernsLength > 0 {
		ids := []*runtimeapi.IDMapping{{HostId: m.UsernsHostID, ContainerId: 0, Length: m.UsernsLength}}
		opts.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}
	}
	st := &runtimeapi.PodSandboxStatus{
		Id: sb.p.UUID, Metadata: sb.metadata(), State: sb.state(), CreatedAt: sb.p.Created().UnixNano(),
		Linux:  &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: opts}},
		Labels: sb.meta.Labels, Annotations: sb.meta.Annotations,
	}
	if ip := sb.ip(); ip != "" && sb.running() {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ip}
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st}, nil
}

// ListPodSandbox lists the sandboxes the filter lets through (an ID or
// its prefix, a state, labels).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	all, err := s.sandboxes()
	if err != nil {
		return nil, internal(err)
	}
	f := req.GetFilter()
	var items []*runtimeapi.PodSandbox
	for _, sb := range all {
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(sb.p.UUID, f.Id) {
				continue
			}
			if f.State != nil && f.State.State != sb.state() {
				continue
			}
			if !labelsMatch(sb.meta.Labels, f.LabelSelector) {
				continue
			}
		}
		items = append(items, &runtimeapi.PodSandbox{Id: sb.p.UUID, Metadata: sb.metadata(), State: sb.state(),
			CreatedAt: sb.p.Created().UnixNano(), Labels: sb.meta.Labels, Annotations: sb.meta.Annotations})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// appName is the app name for a container: its CRI name made a valid
// ACName, and its attempt, since the kubelet creates the next attempt
// while the last one is still there.
func appName(name string, attempt uint32) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-") + "-" + strconv.FormatUint(uint64(attempt), 10)
	if _, err := types.NewACName(n); err != nil {
		return "", status.Errorf(codes.InvalidArgument, "container name %q: %v", name, err)
	}
	return n, nil
}

// usernsMapping reads the kubelet's user namespace of a sandbox
// (hostUsers: false) as nspawn takes it: one range, from 0, the same for
// users and groups. None (or NODE) is 0, 0.
func usernsMapping(u *runtimeapi.UserNamespace) (uint32, uint32, error) {
	if u == nil || u.Mode == runtimeapi.NamespaceMode_NODE {
		return 0, 0, nil
	}
	if u.Mode != runtimeapi.NamespaceMode_POD {
		return 0, 0, status.Errorf(codes.InvalidArgument, "user namespace mode %v: only POD and NODE are supported", u.Mode)
	}
	if len(u.Uids) != 1 || len(u.Gids) != 1 {
		return 0, 0, status.Error(codes.InvalidArgument, "user namespace: want one UID and one GID mapping")
	}
	uid, gid := u.Uids[0], u.Gids[0]
	if uid.ContainerId != 0 || gid.ContainerId != 0 || uid.HostId != gid.HostId || uid.Length != gid.Length || uid.Length == 0 {
		return 0, 0, status.Errorf(codes.InvalidArgument, "user namespace: UIDs %d:%d:%d and GIDs %d:%d:%d: want one range from 0, the same for both",
			uid.ContainerId, uid.HostId, uid.Length, gid.ContainerId, gid.HostId, gid.Length)
	}
	return uid.HostId, uid.Length, nil
}
