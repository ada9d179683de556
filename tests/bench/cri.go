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

func criFigure(b *bench) (sample, sample, error) {
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer nspawnDone(f)
	stage1 := "--stage1-path=" + b.image("stage1.aci")
	sock := filepath.Join(f.dir, "cri.sock")
	srv := exec.Command(filepath.Join(b.buildDir, "bin", "rkt-cri"), "--rkt="+b.rkt(), "--dir="+f.dir, "--local-config="+f.dir+"/lc",
		"--system-config="+f.dir+"/sc", "--user-config="+f.dir+"/uc", "--insecure-options=image",
		"--listen="+sock, "--state-dir="+filepath.Join(f.dir, "cri"), "--sandbox-flag="+stage1)
	var out bytes.Buffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		return sample{}, sample{}, err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return sample{}, sample{}, fmt.Errorf("rkt-cri did not start: %s", out.String())
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return sample{}, sample{}, err
	}
	defer conn.Close()
	rt, is := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
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
