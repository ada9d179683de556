package main

// CRI figure: a kubelet's pod start through rkt-cri (RunPodSandbox,
// CreateContainer, StartContainer) until the app answers, beside `rkt run`
// of the same app until it answers: what the CRI layer costs over the
// command line.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	addFigure(figure{name: "cri: RunPodSandbox + CreateContainer + StartContainer until the app answers (node network)", order: 345,
		goal: "close to rkt run (the CRI adds rkt commands, not work)", run: criFigure})
}

// benchCRI is rkt-cri serving for a bench, and a client of it.
type benchCRI struct {
	srv *exec.Cmd
	rt  runtimeapi.RuntimeServiceClient
	is  runtimeapi.ImageServiceClient
	cc  *grpc.ClientConn
}

func (c *benchCRI) close() {
	c.cc.Close()
	_ = c.srv.Process.Signal(os.Interrupt)
	_ = c.srv.Wait()
}

// startBenchCRI starts rkt-cri on f's data directory.
func startBenchCRI(b *bench, f *flyBench, stage1 string) (*benchCRI, error) {
	sock := filepath.Join(f.dir, "cri.sock")
	srv := exec.Command(filepath.Join(b.buildDir, "bin", "rkt-cri"), "--rkt="+b.rkt(), "--dir="+f.dir, "--local-config="+f.dir+"/lc",
		"--system-config="+f.dir+"/sc", "--user-config="+f.dir+"/uc", "--insecure-options=image",
		"--listen="+sock, "--state-dir="+filepath.Join(f.dir, "cri"), "--sandbox-flag="+stage1)
	var out bytes.Buffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = srv.Process.Kill()
			_ = srv.Wait()
			return nil, fmt.Errorf("rkt-cri did not start: %s", out.String())
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		return nil, err
	}
	return &benchCRI{srv: srv, cc: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), is: runtimeapi.NewImageServiceClient(conn)}, nil
}

func criFigure(b *bench) (sample, sample, error) {
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer nspawnDone(f)
	stage1 := "--stage1-path=" + b.image("stage1.aci")
	c, err := startBenchCRI(b, f, stage1)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer c.close()
	rt, is := c.rt, c.is
	ctx := context.Background()
	img, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: b.image("inspect.aci")}})
	if err != nil {
		return sample{}, sample{}, err
	}
	node := &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
	var runs []time.Duration
	for i := 0; i < b.runs; i++ {
		port, err := appFreePort()
		if err != nil {
			return sample{}, sample{}, err
		}
		cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "bench", Uid: fmt.Sprint(i), Namespace: "default"}, Linux: node}
		start := time.Now()
		sb, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			return sample{}, sample{}, err
		}
		cc, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
				Image: &runtimeapi.ImageSpec{Image: img.ImageRef}, Args: []string{"-serve-http=127.0.0.1:" + port}}})
		if err == nil {
			_, err = rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId})
		}
		if err == nil {
			err = appWaitHTTP("127.0.0.1:" + port)
		}
		runs = append(runs, time.Since(start))
		// Not measured: the next run starts a pod afresh.
		if _, rerr := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err == nil {
			err = rerr
		}
		if err != nil {
			return sample{}, sample{}, err
		}
	}
	d := medianOf(runs)
	ref, err := runUntilAnswers(b, f, stage1)
	return sample{value: d}, sample{label: "rkt run of the same app until it answers", value: ref}, err
}

func init() {
	addFigure(figure{name: "cri: ExecSync of a command in a running container (a kubelet's exec probe)", order: 346,
		goal: "< 50 ms median (every restriction of the app, through rkt enter; a probe every 10 s then costs < 0.5% of a CPU)", run: criExecFigure})
}

// criExecFigure times ExecSync of `/inspect -exit=0` in a running
// container, beside nsenter running the same binary in the pod's
// namespaces with none of the app's restrictions.
func criExecFigure(b *bench) (sample, sample, error) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		return sample{}, sample{}, fmt.Errorf("nsenter not installed")
	}
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer nspawnDone(f)
	c, err := startBenchCRI(b, f, "--stage1-path="+b.image("stage1.aci"))
	if err != nil {
		return sample{}, sample{}, err
	}
	defer c.close()
	ctx := context.Background()
	img, err := c.is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: b.image("inspect.aci")}})
	if err != nil {
		return sample{}, sample{}, err
	}
	cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "exec", Uid: "exec", Namespace: "default"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}}
	sb, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return sample{}, sample{}, err
	}
	defer func() {
		_, _ = c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId})
	}()
	cc, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image: &runtimeapi.ImageSpec{Image: img.ImageRef}, Args: []string{"-sleep=600s"}}})
	if err != nil {
		return sample{}, sample{}, err
	}
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		return sample{}, sample{}, err
	}
	probe := func() error {
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId, Cmd: []string{"/inspect", "-exit=0"}, Timeout: 10})
		if err == nil && r.ExitCode != 0 {
			err = fmt.Errorf("exit %d: %s", r.ExitCode, r.Stderr)
		}
		return err
	}
	// Until the app runs, exec is refused.
	for deadline := time.Now().Add(20 * time.Second); probe() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return sample{}, sample{}, fmt.Errorf("ExecSync: %v", probe())
		}
	}
	pid, err := os.ReadFile(filepath.Join(f.dir, "pods", "run", sb.PodSandboxId, "pid"))
	if err != nil {
		return sample{}, sample{}, err
	}
	bin := "/opt/stage2/" + "app-0" + "/rootfs/inspect"
	raw := func() error {
		out, err := exec.Command("nsenter", "--target", string(bytes.TrimSpace(pid)), "--mount", "--uts", "--ipc", "--pid",
			"--", bin, "-exit=0").CombinedOutput()
		if err != nil {
			return fmt.Errorf("nsenter: %v: %s", err, out)
		}
		return nil
	}
	var ours, ref []time.Duration
	for i := 0; i < b.runs; i++ {
		for _, s := range []struct {
			fn   func() error
			into *[]time.Duration
		}{{probe, &ours}, {raw, &ref}} {
			start := time.Now()
			if err := s.fn(); err != nil {
				return sample{}, sample{}, err
			}
			*s.into = append(*s.into, time.Since(start))
		}
	}
	return sample{value: medianOf(ours)}, sample{label: "nsenter into the pod's namespaces, same binary", value: medianOf(ref)}, nil
}
