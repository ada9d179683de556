package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rktng/rkt/cri"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var listen, stateDir string
		var nets, stage1 []string
		cmd := &cobra.Command{
			Use:   "cri",
			Short: "Serve the Kubernetes Container Runtime Interface (CRI v1) on a unix socket",
			Long: `Serve the Kubernetes Container Runtime Interface (CRI v1) on a unix socket,
for a kubelet (--container-runtime-endpoint=unix://SOCKET) or crictl.

A pod sandbox is a mutable pod (rkt app sandbox) and a container an app
added to it (rkt app add/start/stop/rm), under the default stage1. A bare
image reference is a Docker one (docker://); pulling an image that is not
pulled by digest needs --insecure-options=image, as rkt fetch does.
Sandboxes keep running when the server stops. See Documentation/cri.md.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				global := []string{"--dir=" + globals.Dir, "--local-config=" + globals.LocalConfig,
					"--system-config=" + globals.SystemConfig, "--user-config=" + globals.UserConfig}
				if s := globals.Insecure.String(); s != "" {
					global = append(global, "--insecure-options="+s)
				}
				if globals.Debug {
					global = append(global, "--debug")
				}
				var sandboxArgs []string
				for _, n := range nets {
					sandboxArgs = append(sandboxArgs, "--net="+n)
				}
				sandboxArgs = append(sandboxArgs, stage1...)
				srv, err := cri.New(cri.Config{Rkt: self, GlobalArgs: global, DataDir: globals.Dir,
					SandboxArgs: sandboxArgs, StateDir: stateDir, Version: version})
				if err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Dir(listen), 0o755); err != nil {
					return err
				}
				// A socket left by a server that died is not in use.
				if c, err := net.Dial("unix", listen); err == nil {
					c.Close()
					return fmt.Errorf("%s: another server is listening", listen)
				}
				_ = os.Remove(listen)
				l, err := net.Listen("unix", listen)
				if err != nil {
					return err
				}
				defer os.Remove(listen)
				if err := os.Chmod(listen, 0o660); err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(ctxOrBackground(cmd.Context()), os.Interrupt, syscall.SIGTERM)
				defer stop()
				fmt.Fprintf(cmd.ErrOrStderr(), "rkt cri: serving on %s (pid %s)\n", listen, strconv.Itoa(os.Getpid()))
				if err := srv.Serve(ctx, l); err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&listen, "listen", "/run/rkt/cri.sock", "unix socket to serve on")
		f.StringVar(&stateDir, "state-dir", "/run/rkt/cri", "where the server keeps each sandbox's own output")
		f.StringArrayVar(&nets, "net", nil, "networks of sandboxes that do not share the node's (rkt run --net; default: default)")
		f.StringArrayVar(&stage1, "sandbox-flag", nil, "a flag for every rkt app sandbox, such as --stage1-path=PATH")
		return cmd
	})
}
