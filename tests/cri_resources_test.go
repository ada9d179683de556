package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCRIUpdateResources: UpdateContainerResources changes a running
// container's memory limit, CPU shares and CPU quota in the cgroup it was
// started with (read back from the host's cgroup files), and refuses a
// kind of limit the container was started without.
func TestCRIUpdateResources(t *testing.T) {
	netNeedStage1(t)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		// The nspawn stage1 has the pod's systemd apply an app's limits
		// on cgroup v2 hosts (Documentation/cri.md).
		t.Skip("UpdateContainerResources does not reach app limits on cgroup v2 hosts yet")
	}
	e := newEnv(t)
	rt, is, stop := startCRI(t, e)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: testImage("inspect.aci")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "limits", Uid: "u", Namespace: "default"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	start := func(name string, res *runtimeapi.LinuxContainerResources) string {
		t.Helper()
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name},
				Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}, Args: []string{"-serve-http=127.0.0.1:" + strconv.Itoa(freePort(t))},
				Linux: &runtimeapi.LinuxContainerConfig{Resources: res}}})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", name, err)
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		return cc.ContainerId
	}
	limited := start("limited", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 256})
	shares := start("shares", &runtimeapi.LinuxContainerResources{CpuShares: 300})

	if _, err := rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: limited,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000}}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	// The cgroups rkt made for the pod, as it recorded them for gc; the
	// app's is the leaf directory below them that holds its limits.
	b, err := os.ReadFile(filepath.Join(e.Dir, "pods", "run", sb.PodSandboxId, "cgroups"))
	if err != nil {
		t.Fatal(err)
	}
	var podCgroups []string
	if err := json.Unmarshal(b, &podCgroups); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, d := range podCgroups {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max", "cpu.shares", "cpu.weight", "cpu.cfs_quota_us", "cpu.max"} {
			matches, _ := filepath.Glob(filepath.Join(d, "*", "*", f))
			for _, m := range matches {
				v, _ := os.ReadFile(m)
				values[filepath.Base(filepath.Dir(m))+"/"+f] = strings.TrimSpace(string(v))
			}
		}
	}
	t.Logf("app cgroups: %v", values)
	found := 0
	for k, v := range values {
		app, file, _ := strings.Cut(k, "/")
		if !strings.HasPrefix(app, "limited") {
			continue
		}
		found++
		want := map[string]string{"memory.limit_in_bytes": strconv.Itoa(96 << 20), "memory.max": strconv.Itoa(96 << 20),
			"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.max": "50000 100000"}[file]
		if want != "" && v != want {
			t.Errorf("%s = %s, want %s", k, v, want)
		}
	}
	if found == 0 {
		t.Fatalf("no cgroup of the limited container among %v", values)
	}
	// ContainerStatus reports the limits now in force.
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: limited})
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Status.GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuShares() != 512 || r.GetCpuQuota() != 50000 || r.GetCpuPeriod() != 100000 {
		t.Errorf("ContainerStatus resources: %v", r)
	}
	// A memory limit for a container started with CPU shares only.
	_, err = rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: shares,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "without that limit") {
		t.Fatalf("adding a memory limit: %v", err)
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
}
