// Command rkt-cri serves the Kubernetes Container Runtime Interface (CRI
// v1) for rkt on a unix socket (package cri). It is a binary of its own,
// not an rkt subcommand, so that every rkt invocation does not load and
// initialize gRPC and the CRI's protocol buffers (8 MB more binary, 1.3 ms
// more start-up per command here).
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rktng/rkt/cri"
	"github.com/spf13/cobra"
)

// version is set at link time.
var version = "0.0.0-dev"

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "rkt-cri: %v\n", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var rkt, dir, localConfig, systemConfig, userConfig, insecure, listen, stateDir, streamingAddr string
	var debug bool
	var nets, sandboxFlags []string
	home, _ := os.UserHomeDir()
	cmd := &cobra.Command{
		Use:   "rkt-cri",
		Short: "Serve the Kubernetes Container Runtime Interface (CRI v1) for rkt on a unix socket",
		Long: `Serve the Kubernetes Container Runtime Interface (CRI v1) for rkt on a unix
socket, for a kubelet (--container-runtime-endpoint=unix://SOCKET) or crictl.

A pod sandbox is a mutable pod (rkt app sandbox) and a container an app
added to it (rkt app add/start/stop/rm), under the default stage1. A bare
image reference is a Docker one (docker://); pulling an image that is not
pulled by digest needs --insecure-options=image, as rkt fetch does.
Sandboxes keep running when the server stops. The data and configuration
flags are rkt's and are passed to every rkt command it runs.
See Documentation/cri.md.`,
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rkt == "" {
				var err error
				if rkt, err = findRkt(); err != nil {
					return err
				}
			}
			global := []string{"--dir=" + dir, "--local-config=" + localConfig,
				"--system-config=" + systemConfig, "--user-config=" + userConfig}
			if insecure != "" {
				global = append(global, "--insecure-options="+insecure)
			}
			if debug {
				global = append(global, "--debug")
			}
			srv, err := cri.New(cri.Config{Rkt: rkt, GlobalArgs: global, DataDir: dir,
				SandboxArgs: sandboxFlags, Nets: nets, StateDir: stateDir, Version: version, StreamingAddr: streamingAddr})
			if err != nil {
				return err
			}
			l, err := listenUnix(listen)
			if err != nil {
				return err
			}
			defer os.Remove(listen)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "rkt-cri: serving on %s with %s (pid %d)\n", listen, rkt, os.Getpid())
			// Under a service of Type=notify: ready, since the socket
			// listens. NOTIFY_SOCKET goes from the environment either
			// way: the sandboxes this server starts are not the service.
			_, _ = daemon.SdNotify(true, daemon.SdNotifyReady)
			if err := srv.Serve(ctx, l); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rkt, "rkt", "", "the rkt binary (default: rkt beside this binary, else in PATH)")
	f.StringVar(&dir, "dir", "/var/lib/rkt", "rkt data directory")
	f.StringVar(&localConfig, "local-config", "/etc/rkt", "rkt local configuration directory")
	f.StringVar(&systemConfig, "system-config", "/usr/lib/rkt", "rkt system configuration directory")
	f.StringVar(&userConfig, "user-config", filepath.Join(home, ".config", "rkt"), "rkt user configuration directory")
	f.StringVar(&insecure, "insecure-options", "", "rkt's --insecure-options for every command (image: pull Docker images by tag)")
	f.BoolVar(&debug, "debug", false, "pass --debug to rkt")
	f.StringVar(&listen, "listen", "/run/rkt/cri.sock", "unix socket to serve on")
	f.StringVar(&stateDir, "state-dir", "/run/rkt/cri", "where the server keeps each sandbox's own output")
	f.StringVar(&streamingAddr, "streaming-address", cri.DefaultStreamingAddr, "host:port of the server for exec, attach and port-forward streams (port 0: any free one)")
	f.StringArrayVar(&nets, "net", nil, "networks of sandboxes that do not share the node's (rkt run --net; default: default)")
	f.StringArrayVar(&sandboxFlags, "sandbox-flag", nil, "a flag for every rkt app sandbox, such as --stage1-path=PATH")
	return cmd
}

// findRkt is the rkt installed beside this binary, else the one in PATH.
func findRkt() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "rkt")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("rkt")
	if err != nil {
		return "", errors.New("no rkt binary beside rkt-cri or in PATH: give --rkt")
	}
	return p, nil
}

// listenUnix listens on the socket at path, replacing one left by a
// server that died but never one still answering.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another server is listening", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
