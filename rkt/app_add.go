package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	registerApp(func() *cobra.Command {
		var pullPolicy string
		cmd := &cobra.Command{
			Use:   "add UUID IMAGE [app flags] [-- ARGS]",
			Short: "Add an app to a running mutable pod (not started: see rkt app start)",
			Long:  "Add an app to a running mutable pod (not started: see rkt app start).\n\n" + appFlagsUsage(),
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				apps, err := parseApps(args[1:], cmd.Flags(), true)
				if err != nil {
					return err
				}
				if len(apps) != 1 {
					return errors.New("give exactly one image: rkt app add UUID IMAGE [app flags] [-- ARGS]")
				}
				return addApp(cmd, args[0], apps[0], pullPolicy)
			},
		}
		cmd.Flags().SetInterspersed(false)
		cmd.Flags().StringVar(&pullPolicy, "pull-policy", string(fetch.PullNew), "when to fetch the image: new, update or never")
		return cmd
	})
}

func addApp(cmd *cobra.Command, uuid string, a *appConfig, pullPolicy string) error {
	ctx, stop := signal.NotifyContext(ctxOrBackground(cmd.Context()), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := openPod(uuid, "")
	if err != nil {
		return err
	}
	policy, err := fetch.ParsePullPolicy(pullPolicy)
	if err != nil {
		return err
	}
	st, err := store.Open(globals.Dir)
	if err != nil {
		return err
	}
	id, err := resolveImageRef(ctx, st, a.Image, a.Signature, policy)
	if err != nil {
		return fmt.Errorf("image %s: %w", a.Image, err)
	}
	img, err := storeImage(ctx, st, id)
	if err != nil {
		return fmt.Errorf("image %s: %w", a.Image, err)
	}
	if _, err = stage0.AddApp(ctx, stage0.AddAppConfig{DataDir: globals.Dir, UUID: p.UUID, App: a.App, Image: img, Debug: globals.Debug}); err != nil {
		return err
	}
	return refreshMDS(ctx, p)
}
