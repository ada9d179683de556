package main

import (
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	registerApp(func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   "stop UUID --app=NAME",
			Short: "Stop an app of a running mutable pod (SIGTERM, then SIGKILL after 10 s)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := openPod(args[0], "")
				if err != nil {
					return err
				}
				return stage0.StopApp(ctxOrBackground(cmd.Context()), globals.Dir, p.UUID, app, globals.Debug)
			},
		}
		appNameFlag(cmd, &app)
		return cmd
	})
}
