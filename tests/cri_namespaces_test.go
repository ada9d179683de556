package tests

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostIPC: a sandbox in the node's IPC namespace, which its containers
// (and commands run in them) share, and which its status reports; hostPID
// is refused in one line, not silently turned into a pod PID namespace.
func TestCRIHostNamespaces(t *testing.T) {
	netNeedStage1(t)
	rt, img, ctx := criWithBusybox(t)
	host, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	sandbox := func(name string, ns *runtimeapi.NamespaceOption) (*runtimeapi.PodSandboxConfig, string, error) {
		cfg := sandboxConfig(name, ns)
		id, err := runSandbox(t, rt, ctx, cfg)
		return cfg, id, err
	}

	_, _, err = sandbox("hostpid", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "hostPID") {
		t.Errorf("hostPID sandbox: %v, want InvalidArgument naming hostPID", err)
	}

	cfg, sb, err := sandbox("hostipc", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb})
	if err != nil || st.Status.GetLinux().GetNamespaces().GetOptions().GetIpc() != runtimeapi.NamespaceMode_NODE {
		t.Errorf("PodSandboxStatus: %v %v, want IPC mode NODE", st, err)
	}
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: img, Args: []string{"-c", "exec sleep 600"}}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	r, err := execWhenRunning(t, rt, ctx, cc.ContainerId, "readlink", "/proc/self/ns/ipc")
	if err != nil || strings.TrimSpace(string(r.Stdout)) != host {
		t.Errorf("the container's IPC namespace: %v %v, want the host's %s", r, err, host)
	}
}

// hostUsers: false: the kubelet's user namespace for a sandbox (one range
// from 0) is the pod's --private-users; its containers run as the
// namespace's root, mapped to the kubelet's host IDs. The runtime says
// it can; a mapping nspawn cannot make is refused.
func TestCRIUserNamespace(t *testing.T) {
	netNeedStage1(t)
	rt, img, ctx := criWithBusybox(t)
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || len(st.RuntimeHandlers) == 0 || !st.RuntimeHandlers[0].GetFeatures().GetUserNamespaces() {
		t.Errorf("Status: %v %v, want a handler with user namespaces", st, err)
	}
	ids := func(host, length uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{HostId: host, ContainerId: 0, Length: length}}
	}
	ns := func(u *runtimeapi.UserNamespace) *runtimeapi.NamespaceOption {
		return &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: u}
	}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"two-ranges": {Mode: runtimeapi.NamespaceMode_POD, Uids: append(ids(1<<27, 65536), ids(1<<28, 65536)...), Gids: ids(1<<27, 65536)},
		"other-gids": {Mode: runtimeapi.NamespaceMode_POD, Uids: ids(1<<27, 65536), Gids: ids(1<<28, 65536)},
	} {
		cfg := sandboxConfig(name, ns(u))
		if _, err := runSandbox(t, rt, ctx, cfg); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	const base = 3000 * 65536
	cfg := sandboxConfig("userns", ns(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids(base, 65536), Gids: ids(base, 65536)}))
	sb, err := runSandbox(t, rt, ctx, cfg)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	sst, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb})
	if u := sst.GetStatus().GetLinux().GetNamespaces().GetOptions().GetUsernsOptions(); err != nil || u.GetMode() != runtimeapi.NamespaceMode_POD || u.Uids[0].HostId != base {
		t.Errorf("PodSandboxStatus: %v %v", sst, err)
	}
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: img, Args: []string{"-c", "exec sleep 600"},
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}}}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	r, err := execWhenRunning(t, rt, ctx, cc.ContainerId, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; touch /written && echo wrote")
	if f := strings.Fields(string(r.GetStdout())); err != nil || len(f) != 5 || f[0] != "0" || f[1] != "0" || f[2] != "196608000" || f[4] != "wrote" {
		t.Errorf("in the container: %v %v", r, err)
	}
}
