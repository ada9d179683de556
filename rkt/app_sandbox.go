package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// sandboxFlags are the pod flags of run that a sandbox takes: everything
// about the pod itself, nothing about its (not yet given) apps.
var sandboxFlags = []string{"stage1-path", "stage1-url", "stage1-name", "stage1-hash", "stage1-from-dir",
	"uuid-file-save", "net", "dns", "dns-search", "dns-opt", "dns-domain", "hosts-entry", "hostname", "ipc", "private-users",
	"mds-register", "mds-socket", "user-annotation", "user-label"}

func init() {
	registerApp(func() *cobra.Command {
		var o podOptions
		var ports, annotations []string
		var privileged bool
		cmd := &cobra.Command{
			Use:   "sandbox [flags]",
			Short: "Run an empty mutable pod in the foreground, for `rkt app add`; it runs until `rkt stop`",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return sandboxPod(cmd.Context(), &o, ports, annotations, privileged)
			},
		}
		// run's own definitions of the pod flags, only those that apply.
		all := pflag.NewFlagSet("run", pflag.ContinueOnError)
		addPodFlags(all, &o, false)
		for _, n := range sandboxFlags {
			cmd.Flags().AddFlag(all.Lookup(n))
		}
		cmd.Flags().StringArrayVar(&ports, "port", nil, "NAME:PROTO:PODPORT:[HOSTIP:]HOSTPORT: forward a host port to a port of the pod")
		cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "NAME=VALUE: an annotation of the pod")
		cmd.Flags().BoolVar(&privileged, "privileged", false, "the pod may take privileged apps (rkt app add --privileged): it gets the host's devices, writable /sys and /proc/sys, every capability")
		return cmd
	})
}

// sandboxPod is `rkt app sandbox`: a mutable pod with no apps, prepared
// straight into run/ and handed to stage1, which keeps it up until it is
// stopped.
func sandboxPod(ctx context.Context, o *podOptions, ports, annotations []string, privileged bool) error {
	if err := checkStage1Flags(o.Stage1); err != nil {
		return err
	}
	if err := checkNetFlags(o); err != nil {
		return err
	}
	cfg := stage0.PrepareConfig{DataDir: globals.Dir}
	for _, p := range ports {
		ep, err := parseSandboxPort(p)
		if err != nil {
			return fmt.Errorf("--port=%s: %w", p, err)
		}
		cfg.Ports = append(cfg.Ports, ep)
	}
	for _, kv := range annotations {
		k, v, err := parseKeyValue(kv)
		if err != nil {
			return fmt.Errorf("--annotation=%s: %w", kv, err)
		}
		id, err := types.NewACIdentifier(k)
		if err != nil {
			return fmt.Errorf("--annotation=%s: %w", kv, err)
		}
		cfg.Annotations.Set(*id, v)
	}
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(globals.Dir)
	if err != nil {
		return err
	}
	if cfg.Stage1, err = resolveStage1(ctx, st, o.Stage1, fetch.PullNew); err != nil {
		return err
	}
	if v, err := stage0.InterfaceVersion(cfg.Stage1.Manifest); err != nil || v < 5 {
		return fmt.Errorf("stage1 %s cannot run mutable pods (interface version 5 needed)", cfg.Stage1.Manifest.Name)
	}
	if _, err := stage0.Entrypoint(cfg.Stage1.Manifest, "app/add"); err != nil {
		return fmt.Errorf("stage1 %s cannot run mutable pods: %w", cfg.Stage1.Manifest.Name, err)
	}
	if err := podConfig(o, &cfg); err != nil {
		return err
	}
	cfg.RuntimeConfig.Mutable = true
	cfg.RuntimeConfig.Privileged = privileged
	p, err := stage0.Prepare(ctx, cfg, pod.Run)
	if err != nil {
		return err
	}
	if o.UUIDFileSave != "" {
		if err := os.WriteFile(o.UUIDFileSave, []byte(p.UUID), 0o644); err != nil {
			p.Discard()
			return fmt.Errorf("--uuid-file-save: %w", err)
		}
	}
	stop()
	return execPod(p, st, o.MDSSocket)
}

// parseSandboxPort reads a sandbox's --port, which names the pod's port
// itself since there is no app manifest yet to name it:
// NAME:PROTO:PODPORT:[HOSTIP:]HOSTPORT.
func parseSandboxPort(s string) (types.ExposedPort, error) {
	var ep types.ExposedPort
	parts := strings.Split(s, ":")
	if len(parts) != 4 && len(parts) != 5 {
		return ep, errors.New("want NAME:PROTO:PODPORT:[HOSTIP:]HOSTPORT")
	}
	name, err := types.NewACName(parts[0])
	if err != nil {
		return ep, err
	}
	if parts[1] != "tcp" && parts[1] != "udp" {
		return ep, fmt.Errorf("protocol %q: want tcp or udp", parts[1])
	}
	podPort, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil || podPort == 0 {
		return ep, fmt.Errorf("bad pod port %q", parts[2])
	}
	hostPort, err := strconv.ParseUint(parts[len(parts)-1], 10, 16)
	if err != nil || hostPort == 0 {
		return ep, fmt.Errorf("bad host port %q", parts[len(parts)-1])
	}
	ep.Name = *name
	ep.HostPort = uint(hostPort)
	ep.PodPort = &types.Port{Name: *name, Protocol: parts[1], Port: uint(podPort), Count: 1}
	if len(parts) == 5 {
		ip := net.ParseIP(parts[3])
		if ip == nil {
			return ep, fmt.Errorf("bad host IP %q", parts[3])
		}
		ep.HostIP = ip
	}
	return ep, nil
}
