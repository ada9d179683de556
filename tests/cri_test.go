package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// inspectDockerImage is the inspect test image as a Docker image: the
// ACI's rootfs as one layer, /inspect as its entrypoint.
func inspectDockerImage(t *testing.T) v1.Image {
	t.Helper()
	return aciAsDockerImage(t, "inspect.aci", v1.Config{Entrypoint: []string{"/inspect"}, Cmd: []string{"-exit=0"}, Env: []string{"FROM_IMAGE=yes"}})
}

// aciAsDockerImage is a test ACI as a Docker image: its rootfs as one
// layer, with config cfg.
func aciAsDockerImage(t *testing.T, aci string, cfg v1.Config) v1.Image {
	t.Helper()
	f, err := os.Open(testImage(aci))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(h.Name, "rootfs/")
		if !ok || name == "" {
			continue
		}
		h.Name = name
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := layer.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// criServer starts rkt-cri for e and returns a connected client.
func criServer(t *testing.T, e *env) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	rt, is, _ := startCRI(t, e)
	return rt, is
}

// startCRI starts rkt-cri for e and returns a connected client and a
// function that stops the server (SIGINT, as a service manager would;
// SIGKILL if it hangs). Stopping twice is harmless.
func startCRI(t *testing.T, e *env) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient, func()) {
	t.Helper()
	sock := filepath.Join(e.root, "cri.sock")
	args := append(e.globalArgs(), "--rkt="+rktBin(), "--insecure-options=image,http", "--listen="+sock,
		"--state-dir="+filepath.Join(e.root, "cri"), "--sandbox-flag=--stage1-path="+testImage("stage1.aci"))
	cmd := exec.Command(filepath.Join(buildDir, "bin", "rkt-cri"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("rkt-cri output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rkt-cri did not listen on %s:\n%s", sock, out.String())
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn), stop
}

// A pod's life through the CRI, as a kubelet drives it: pull, sandbox on
// the default network, a container with env, a host mount and labels,
// started, answering on the pod's IP, exec'd into, stopped, removed; a
// second container whose command replaces the image's entrypoint; the
// sandbox stopped and removed, leaving nothing on the host. Refusals are
// gRPC errors with the right code.
func TestCRIPodLifecycle(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	reg := newDkRegistry(t, nil, "", "")
	reg.push("test/inspect:v1", inspectDockerImage(t))
	rt, is := criServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := hostNetState(t)

	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "rkt" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version: %v %v", v, err)
	}
	ref := reg.Host + "/test/inspect:v1"
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || !strings.HasPrefix(pulled.ImageRef, "sha512-") {
		t.Fatalf("PullImage: %v %v", pulled, err)
	}
	ist, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || ist.Image == nil || ist.Image.Id != pulled.ImageRef || len(ist.Image.RepoTags) != 1 || ist.Image.RepoTags[0] != ref {
		t.Errorf("ImageStatus: %v %v", ist, err)
	}
	if absent, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.Host + "/test/none:v1"}}); err != nil || absent.Image != nil {
		t.Errorf("ImageStatus of an image never pulled: %v %v, want no image", absent, err)
	}

	logDir := filepath.Join(e.root, "pod-logs")
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Uid: "uid-1", Namespace: "default"},
		Hostname:     "web-pod",
		Labels:       map[string]string{"app": "web"},
		LogDirectory: logDir,
	}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sbCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	t.Cleanup(func() {
		_, _ = rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	})
	pst, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	if err != nil || pst.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || pst.Status.Metadata.Name != "web" || pst.Status.Network.GetIp() == "" {
		t.Fatalf("PodSandboxStatus: %v %v", pst, err)
	}
	ip := pst.Status.Network.Ip
	if l, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}}); err != nil || len(l.Items) != 1 || l.Items[0].Id != sb.PodSandboxId {
		t.Errorf("ListPodSandbox by label: %v %v", l, err)
	}

	data := filepath.Join(e.root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "in"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "server"},
			Image:    &runtimeapi.ImageSpec{Image: ref},
			Args:     []string{"-serve-http=:8080", "-print-env=GREETING", "-print-msg-stderr=to-stderr"},
			Envs:     []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hi")}},
			Mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: data, Readonly: true}},
			Labels:   map[string]string{"tier": "front"},
			LogPath:  "server/0.log",
		}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	cst := func(id string) *runtimeapi.ContainerStatus {
		t.Helper()
		r, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		return r.Status
	}
	waitState := func(id string, want runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s := cst(id)
			if s.State == want {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("container %s: state %v, want %v", id, s.State, want)
			}
		}
	}
	if s := cst(cc.ContainerId); s.State != runtimeapi.ContainerState_CONTAINER_CREATED || s.Metadata.Name != "server" || s.ImageRef != pulled.ImageRef {
		t.Errorf("created container: %v", s)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	waitState(cc.ContainerId, runtimeapi.ContainerState_CONTAINER_RUNNING)
	if got := netHTTPGet(t, "http://"+ip+":8080/"); !strings.Contains(got, "web-pod") {
		t.Errorf("the container on the pod's IP answered %q, want its hostname", got)
	}
	// Its output lands in the file the kubelet named, in the CRI format.
	logFile := filepath.Join(logDir, "server", "0.log")
	waitLogLine := func(stream, what string) {
		t.Helper()
		re := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ` + stream + ` F ` + regexp.QuoteMeta(what))
		var text string
		for deadline := time.Now().Add(15 * time.Second); !re.MatchString(text) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			text = readFileOr(logFile)
		}
		if !re.MatchString(text) {
			t.Errorf("CRI log %s: %q, want a line \"TIME %s F %s\"; the journal has: %s", logFile, text, stream, what,
				e.Run("logs", "--output=short-precise", sb.PodSandboxId))
		}
	}
	waitLogLine("stdout", "env:GREETING=hi")
	waitLogLine("stderr", "to-stderr")
	waitLogLine("stdout", "http.listening=")
	// Rotation: the kubelet renames the file away and asks for a new one.
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Errorf("ReopenContainerLog: %v", err)
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Errorf("no new log file after ReopenContainerLog: %v", err)
	}
	if !strings.Contains(readFileOr(logFile+".1"), "stdout F http.listening=") {
		t.Errorf("the rotated file lost its lines")
	}
	ex, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId, Timeout: 30,
		Cmd: []string{"/inspect", "-read-file=/data/in", "-write-file=/data/x", "-print-env=GREETING", "-exit=3"}})
	if err != nil || ex.ExitCode != 3 {
		t.Fatalf("ExecSync: %v %v", ex, err)
	}
	m := parseInspect(string(ex.Stdout))
	if m["file:/data/in"] != "from-host" || m["env:GREETING"] != "hi" || !strings.Contains(m["write:/data/x.error"], "read-only") {
		t.Errorf("ExecSync output: %q", ex.Stdout)
	}
	if l, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sb.PodSandboxId, LabelSelector: map[string]string{"tier": "front"}}}); err != nil || len(l.Containers) != 1 || l.Containers[0].Id != cc.ContainerId {
		t.Errorf("ListContainers: %v %v", l, err)
	}
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cc.ContainerId, Timeout: 10}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if s := waitState(cc.ContainerId, runtimeapi.ContainerState_CONTAINER_EXITED); s.ExitCode != 143 || s.FinishedAt == 0 {
		t.Errorf("stopped container: exit %d finished %d, want 143 (SIGTERM)", s.ExitCode, s.FinishedAt)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cc.ContainerId}); status.Code(err) != codes.NotFound {
		t.Errorf("status of a removed container: %v, want NotFound", err)
	}

	// Command replaces the entrypoint; the next attempt of a name is a
	// container of its own.
	cc2, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "server", Attempt: 1},
			Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}, Command: []string{"/inspect", "-exit=7"}}})
	if err != nil {
		t.Fatalf("CreateContainer by image ID: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc2.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if s := waitState(cc2.ContainerId, runtimeapi.ContainerState_CONTAINER_EXITED); s.ExitCode != 7 || s.Reason != "Error" {
		t.Errorf("second container: exit %d reason %q, want 7", s.ExitCode, s.Reason)
	}
	// Stopping a container that has exited changes nothing.
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cc2.ContainerId}); err != nil {
		t.Errorf("StopContainer of an exited container: %v", err)
	}

	// Refusals.
	_, err = rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "x"}, Image: &runtimeapi.ImageSpec{Image: reg.Host + "/test/none:v1"}}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("container of an image never pulled: %v, want NotFound", err)
	}
	if _, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("sandbox without metadata: %v, want InvalidArgument", err)
	}
	if _, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Errorf("status of an unknown sandbox: %v, want NotFound", err)
	}

	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if pst, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId}); err != nil || pst.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("stopped sandbox: %v %v", pst, err)
	}
	// The kubelet removes a stopped sandbox's dead containers first.
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cc2.ContainerId}); err != nil {
		t.Errorf("RemoveContainer in a stopped sandbox: %v", err)
	}
	if l, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil || len(l.Containers) != 0 {
		t.Errorf("ListContainers after removing the last one: %v %v", l, err)
	}
	for i := 0; i < 2; i++ { // the second time, it is gone: still no error
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Fatalf("RemovePodSandbox %d: %v", i+1, err)
		}
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Fatalf("StopPodSandbox of a removed sandbox: %v", err)
		}
	}
	if l, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(l.Items) != 0 {
		t.Errorf("ListPodSandbox after removal: %v %v", l, err)
	}
	expectNothingLeft(t, before, hostNetState(t), []string{sb.PodSandboxId})
	// No log copy (rkt logs, journalctl) outlives its container.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		procs := processesMentioning(sb.PodSandboxId)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left for the removed sandbox: %v", procs)
			break
		}
	}
	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Errorf("RemoveImage: %v", err)
	}
	if l, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{}); err != nil || len(l.Images) != 0 {
		t.Errorf("ListImages after RemoveImage: %v %v", l, err)
	}
}

// A sandbox on the node's network, and one on the default network whose
// port mapping forwards a host port: both reachable from the host.
func TestCRIHostNetworkAndPorts(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	rt, is := criServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := hostNetState(t)
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: testImage("inspect.aci")}})
	if err != nil {
		t.Fatalf("PullImage of an ACI file: %v", err)
	}
	run := func(cfg *runtimeapi.PodSandboxConfig, args ...string) string {
		t.Helper()
		sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
		}
		t.Cleanup(func() {
			_, _ = rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		})
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
				Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}, Args: args}})
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		return sb.PodSandboxId
	}
	nodePort := freePort(t)
	node := run(&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "on-node", Uid: "u1", Namespace: "kube-system"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}},
		"-serve-http=127.0.0.1:"+strconv.Itoa(nodePort))
	netHTTPGet(t, "http://127.0.0.1:"+strconv.Itoa(nodePort)+"/")
	if st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: node}); err != nil ||
		st.Status.Network != nil || st.Status.Linux.Namespaces.Options.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("node-network sandbox status: %v %v", st, err)
	}
	hostPort := freePort(t)
	podNet := run(&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "mapped", Uid: "u2", Namespace: "default"},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: int32(hostPort)}}},
		"-serve-http=:8080")
	netHTTPGet(t, "http://127.0.0.1:"+strconv.Itoa(hostPort)+"/")
	// Statistics of the running containers: a Go program's resident set
	// is megabytes; its writable layer is the app's overlay upper dir.
	ls, err := rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil || len(ls.Stats) != 2 {
		t.Fatalf("ListContainerStats: %v %v", ls, err)
	}
	for _, st := range ls.Stats {
		if st.Memory.GetWorkingSetBytes().GetValue() < 1<<20 || st.Cpu.GetUsageCoreNanoSeconds() == nil || st.WritableLayer.GetFsId().GetMountpoint() == "" {
			t.Errorf("stats of %s: %v", st.Attributes.GetMetadata().GetName(), st)
		}
	}
	one, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: ls.Stats[0].Attributes.Id})
	if err != nil || one.Stats.Memory.GetWorkingSetBytes().GetValue() < 1<<20 {
		t.Errorf("ContainerStats: %v %v", one, err)
	}
	ps, err := rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil || len(ps.Stats) != 2 {
		t.Fatalf("ListPodSandboxStats: %v %v", ps, err)
	}
	for _, st := range ps.Stats {
		if len(st.Linux.GetContainers()) != 1 || st.Linux.GetMemory().GetWorkingSetBytes().GetValue() != st.Linux.Containers[0].Memory.GetWorkingSetBytes().GetValue() {
			t.Errorf("sandbox stats of %s: %v", st.Attributes.GetId(), st)
		}
	}
	for _, id := range []string{node, podNet} {
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
	}
	expectNothingLeft(t, before, hostNetState(t), []string{node, podNet})
}

// processesMentioning lists the command lines that contain s.
func processesMentioning(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// A restarted server finds its sandboxes and containers where they were
// (they run on without it), and the container log resumes where it
// stopped: no line lost, none repeated.
func TestCRIServerRestart(t *testing.T) {
	netNeedStage1(t)
	e := newEnv(t)
	rt, is, stop := startCRI(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pulled, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: testImage("inspect.aci")}})
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(e.root, "logs")
	cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "kept", Uid: "u", Namespace: "default"},
		LogDirectory: logDir, Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}}
	sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	// The app prints two lines as it starts, then serves.
	port := freePort(t)
	cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, LogPath: "web.log",
			Image: &runtimeapi.ImageSpec{Image: pulled.ImageRef}, Args: []string{"-print-msg=before-restart", "-serve-http=127.0.0.1:" + strconv.Itoa(port)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logDir, "web.log")
	waitFor := func(what string) string {
		t.Helper()
		var text string
		for deadline := time.Now().Add(15 * time.Second); !strings.Contains(text, what) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			text = readFileOr(logFile)
		}
		if !strings.Contains(text, what) {
			t.Fatalf("log %s: %q, want %q", logFile, text, what)
		}
		return text
	}
	waitFor("http.listening=")

	stop()
	netHTTPGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/") // still serving without the server
	rt, _, _ = startCRI(t, e)
	l, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(l.Containers) != 1 || l.Containers[0].Id != cc.ContainerId || l.Containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("containers after the restart: %v %v", l, err)
	}
	// Stopping the container makes it print nothing more; what counts is
	// that the resumed copy did not write the first lines again.
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the copy's drain after the exit
	text := readFileOr(logFile)
	for _, line := range []string{"before-restart", "http.listening="} {
		if n := strings.Count(text, "stdout F "+line); n != 1 {
			t.Errorf("%q appears %d times in the log after the restart, want once:\n%s", line, n, text)
		}
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
}
