package main

import (
	"context"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
)

func init() {
	registerApp(appAction("rm", "Remove an app from a running mutable pod, stopping it first if it runs",
		func(ctx context.Context, dataDir, uuid, app string, debug bool) error {
			if err := stage0.RemoveApp(ctx, dataDir, uuid, app, debug); err != nil {
				return err
			}
			p, err := pod.Open(dataDir, uuid)
			if err != nil {
				return err
			}
			return refreshMDS(ctx, p)
		}))
}
