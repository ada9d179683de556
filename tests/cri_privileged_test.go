package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A privileged container through the CRI: its sandbox is privileged (the
// kubelet says so when one of the pod's containers is), and commands run
// in it (ExecSync, `kubectl exec`) are as unrestricted as it is; a plain
// container of the same pod keeps its restrictions, and a privileged
// container in a sandbox that is not is refused.
func TestCRIPrivileged(t *testing.T) {
	netNeedStage1(t)
	dev := hostDevice()
	if dev == "" {
		t.Skip("no usual host device node to look for")
	}
	rt, img, ctx := criWithBusybox(t)
	container := func(sb string, sbCfg *runtimeapi.PodSandboxConfig, name string, privileged bool) (string, error) {
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: sbCfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: img,
				Args: []string{"-c", "exec sleep 600"},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: privileged,
					Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}}}}})
		if err != nil {
			return "", err
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s: %v", name, err)
		}
		return cc.ContainerId, nil
	}
	probe := func(id string) string {
		t.Helper()
		r, err := execWhenRunning(t, rt, ctx, id, "/bin/sh", "-c", strings.ReplaceAll(privProbe, "HOSTDEV", dev))
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("ExecSync: %v %v", r, err)
		}
		return string(r.Stdout)
	}

	sb, sbCfg := nodeSandbox(t, rt, ctx, "priv", true)
	priv, err := container(sb, sbCfg, "priv", true)
	if err != nil {
		t.Fatalf("CreateContainer privileged: %v", err)
	}
	plain, err := container(sb, sbCfg, "plain", false)
	if err != nil {
		t.Fatalf("CreateContainer plain: %v", err)
	}
	out := probe(priv)
	for _, l := range []string{"hostdev=yes", "CapEff:" + ownCapEff(t), "Seccomp:0", "sys=rw"} {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("privileged container: no %q in %q", l, out)
		}
	}
	out = probe(plain)
	for _, l := range []string{"hostdev=no", "CapEff:0000000000000000", "Seccomp:2", "sys=ro"} {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("plain container (capabilities dropped): no %q in %q", l, out)
		}
	}

	other, otherCfg := nodeSandbox(t, rt, ctx, "plain", false)
	if _, err := container(other, otherCfg, "priv", true); err == nil || !strings.Contains(err.Error(), "not started privileged") {
		t.Errorf("privileged container in a sandbox that is not: %v", err)
	}
}

// A Localhost seccomp profile (a file on the node, as the kubelet names
// it) replaces the default filter for the container and for the commands
// run in it; a missing, relative or bad profile is the kubelet's
// InvalidArgument, and no container is made.
func TestCRISeccompLocalhost(t *testing.T) {
	netNeedStage1(t)
	rt, img, ctx := criWithBusybox(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_NOTIFY"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	sb, sbCfg := nodeSandbox(t, rt, ctx, "seccomp", false)
	create := func(name, ref string) (string, error) {
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, SandboxConfig: sbCfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: img,
				Args: []string{"-c", "hostname pod-name-from-app; exec sleep 600"},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}},
					Seccomp:      &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}}}}})
		if err != nil {
			return "", err
		}
		return cc.ContainerId, nil
	}
	for ref, want := range map[string]string{
		"profile.json":                  "absolute path",
		filepath.Join(dir, "none.json"): "no such file",
		bad:                             "SCMP_ACT_NOTIFY",
	} {
		if _, err := create("bad", ref); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) {
			t.Errorf("profile %s: %v, want InvalidArgument mentioning %q", ref, err, want)
		}
	}
	id, err := create("filtered", profile)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	// CAP_SYS_ADMIN would let sethostname through; the profile refuses
	// it with EROFS, to the app and to what is run in it.
	r, err := execWhenRunning(t, rt, ctx, id, "/bin/sh", "-c", "hostname; hostname other-name; grep ^Seccomp: /proc/self/status")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("ExecSync: %v %v", r, err)
	}
	if out, errOut := string(r.Stdout), string(r.Stderr); strings.Contains(out, "pod-name-from-app") || !strings.Contains(errOut, "Read-only file system") || !strings.Contains(out, "Seccomp:\t2") {
		t.Fatalf("under the profile: stdout %q stderr %q", out, errOut)
	}
}
