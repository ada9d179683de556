package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/rktng/rkt/pkg/mds"
	"github.com/spf13/cobra"
)

// metadataServiceConfig is what `rkt metadata-service` is told.
type metadataServiceConfig struct {
	Port     int
	Socket   string
	StateDir string
}

func init() {
	register(func() *cobra.Command {
		var cfg metadataServiceConfig
		cmd := &cobra.Command{
			Use:   "metadata-service",
			Short: "Run the appc metadata service that pods registered with --mds-register query",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runMetadataService(cmd.Context(), cfg)
			},
		}
		f := cmd.Flags()
		f.IntVar(&cfg.Port, "listen-port", mds.DefaultPort, "TCP port apps reach the service on")
		f.StringVar(&cfg.Socket, "socket", mds.DefaultSocket, "unix socket stage0 registers pods on")
		f.StringVar(&cfg.StateDir, "state-dir", "/run/rkt/metadata", "where registrations and the HMAC key are kept across restarts")
		return cmd
	})
}

func runMetadataService(ctx context.Context, cfg metadataServiceConfig) error {
	logger := log.New(os.Stderr, "metadata-service: ", 0)
	svc, err := mds.NewService(cfg.StateDir, logger)
	if err != nil {
		return err
	}
	unixL, tcpL, activated, err := metadataListeners(cfg)
	if err != nil {
		return err
	}
	port := tcpL.Addr().(*net.TCPAddr).Port
	metaSrv := &http.Server{Handler: svc.MetadataHandler(), ReadHeaderTimeout: 10 * time.Second}
	regSrv := &http.Server{Handler: svc.RegistrationHandler(port), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- metaSrv.Serve(tcpL) }()
	go func() { errc <- regSrv.Serve(unixL) }()
	logger.Printf("serving on port %d, registrations on %s", port, unixL.Addr())

	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Pods that died without unregistering are dropped within seconds.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			for _, uuid := range svc.Prune() {
				logger.Printf("dropped pod %s: no longer running", uuid)
			}
		case err := <-errc:
			return fmt.Errorf("metadata service: %w", err)
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			metaSrv.Shutdown(shut)
			regSrv.Shutdown(shut)
			if !activated {
				os.Remove(cfg.Socket)
			}
			return nil
		}
	}
}

// metadataListeners takes the sockets systemd passed, or opens its own.
func metadataListeners(cfg metadataServiceConfig) (unixL, tcpL net.Listener, activated bool, err error) {
	passed, err := activation.Listeners()
	if err != nil {
		return nil, nil, false, fmt.Errorf("socket activation: %w", err)
	}
	for _, l := range passed {
		switch {
		case l == nil:
		case l.Addr().Network() == "unix":
			unixL = l
		case l.Addr().Network() == "tcp":
			tcpL = l
		}
	}
	activated = len(passed) > 0
	if unixL == nil {
		if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o755); err != nil {
			return nil, nil, false, err
		}
		// A socket left by a crashed service would make Listen fail.
		if c, err := net.Dial("unix", cfg.Socket); err == nil {
			c.Close()
			return nil, nil, false, fmt.Errorf("a metadata service is already listening on %s", cfg.Socket)
		}
		if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, false, err
		}
		if unixL, err = net.Listen("unix", cfg.Socket); err != nil {
			return nil, nil, false, fmt.Errorf("listen on %s: %w", cfg.Socket, err)
		}
		// Only root may register pods.
		if err := os.Chmod(cfg.Socket, 0o600); err != nil {
			return nil, nil, false, err
		}
	}
	if tcpL == nil {
		if tcpL, err = net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port)); err != nil {
			unixL.Close()
			return nil, nil, false, fmt.Errorf("listen on port %d: %w", cfg.Port, err)
		}
	}
	return unixL, tcpL, activated, nil
}
