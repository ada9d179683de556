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
