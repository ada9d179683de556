// Package cri serves the Kubernetes Container Runtime Interface (CRI v1)
// over rkt's mutable pods, for rkt-cri. A pod sandbox is a pod started by
// `rkt app sandbox`; a container is an app added to it (`rkt app add`,
// `start`, `stop`, `rm`); an image is an image in rkt's store, pulled by
// `rkt fetch` (a bare reference is a docker:// one). Changes go through
// the rkt binary, so that they take the same locks, checks and stage1
// entrypoints as the command line; reads (lists and statuses) come from the
// pod directories and the store directly.
package cri

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
)

// Config is what the server needs; the CLI fills it from its flags.
type Config struct {
	// Rkt is the rkt binary that makes every change (normally the one
	// serving).
	Rkt string
	// GlobalArgs go before every rkt command: --dir, the configuration
	// directories, --insecure-options, --debug.
	GlobalArgs []string
	// DataDir is rkt's --dir, read for pod and image state.
	DataDir string
	// SandboxArgs are added to every `rkt app sandbox` (--stage1-*).
	SandboxArgs []string
	// Nets are the networks of sandboxes that do not share the node's
	// (rkt's --net; none means rkt's default).
	Nets []string
	// StateDir keeps each sandbox's own output (rkt app sandbox's
	// stdout and stderr).
	StateDir string
	// Version is the runtime version Version reports.
	Version string
	// StreamingAddr is where the server for exec, attach and
	// port-forward streams listens (host:port; port 0 for any).
	StreamingAddr string
}

// Server implements the CRI runtime and image services.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	cfg Config
	mu  sync.Mutex
	// logs are the copies of running containers' output to their CRI
	// log files, by container ID.
	logs map[string]*logFollower
	// streaming serves exec, attach and port-forward streams.
	streaming     streaming.Server
	streamingAddr string
}

// DefaultStreamingAddr: the loopback, any free port. The kubelet, on the
// same node, forwards the user's streams there.
const DefaultStreamingAddr = "127.0.0.1:0"

// StreamingAddr is where exec, attach and port-forward streams are
// served, once Serve has started.
func (s *Server) StreamingAddr() string { return s.streamingAddr }

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Rkt == "" || cfg.DataDir == "" || cfg.StateDir == "" {
		return nil, errors.New("cri: the rkt binary, data directory and state directory are required")
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, removedDir), 0o700); err != nil {
		return nil, fmt.Errorf("cri: state directory: %w", err)
	}
	return &Server{cfg: cfg, logs: map[string]*logFollower{}}, nil
}

// Serve answers CRI requests on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	addr := s.cfg.StreamingAddr
	if addr == "" {
		addr = DefaultStreamingAddr
	}
	stopStreaming, err := s.startStreaming(addr)
	if err != nil {
		return err
	}
	defer stopStreaming()
	g := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	go func() {
		<-ctx.Done()
		g.GracefulStop()
	}()
	s.resumeLogs()
	defer func() {
		s.mu.Lock()
		ids := make([]string, 0, len(s.logs))
		for id := range s.logs {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		for _, id := range ids {
			s.stopLogs(id)
		}
	}()
	return g.Serve(l)
}

// rkt runs the rkt binary with args after the global ones and returns its
// stdout; a failure carries rkt's own one-line message.
func (s *Server) rkt(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.cfg.Rkt, append(append([]string{}, s.cfg.GlobalArgs...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		msg = strings.TrimPrefix(msg, "rkt: ")
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("rkt %s: %s", args[0], msg)
	}
	return stdout.String(), nil
}

// Annotations under which the CRI's own data is kept in pod manifests.
const (
	// annSandbox marks a pod made by this server; its value is the
	// sandbox's metadata, labels and annotations as JSON.
	annSandbox = "rktng.io/cri/sandbox"
	// annContainer, on an app, is the container's, as JSON.
	annContainer = "rktng.io/cri/container"
)

// containerID is the CRI ID of app in pod uuid: a digest, so that IDs
// differ in their first characters (crictl shows 13) and say nothing a
// client could take apart.
func containerID(uuid, app string) string {
	sum := sha256.Sum256([]byte(uuid + "/" + app))
	return hex.EncodeToString(sum[:])
}

func notFound(format string, a ...any) error {
	return status.Errorf(codes.NotFound, format, a...)
}

// internal wraps an error from rkt as a CRI error: the message is rkt's.
func internal(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

// Version answers with the runtime's name and version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "rkt", RuntimeVersion: s.cfg.Version, RuntimeApiVersion: "v1"}, nil
}

// Status reports the runtime and its networking ready: both are there
// for as long as the server runs.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}},
		// The kubelet runs a pod with hostUsers: false only on a
		// runtime that says it can (sandboxes with --private-users).
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Features: &runtimeapi.RuntimeHandlerFeatures{UserNamespaces: true}}},
	}, nil
}

// UpdateRuntimeConfig accepts the kubelet's pod CIDR and ignores it: the
// pods' addresses come from the CNI configuration of their networks.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// RuntimeConfig tells the kubelet which cgroup driver to use: systemd's
// where the node runs systemd (nspawn then registers pods with
// systemd-machined, under machine.slice), cgroupfs elsewhere.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}
