package main

import (
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	registerApp(func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   "rm UUID --app=NAME",
			Short: "Remove an app from a running mutable pod, stopping it first if it runs",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := openPod(args[0], "")
				if err != nil {
					return err
				}
				return stage0.RemoveApp(ctxOrBackground(cmd.Context()), globals.Dir, p.UUID, app, globals.Debug)
			},
		}
		appNameFlag(cmd, &app)
		return cmd
	})
}
