package main

import (
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	registerApp(func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   "start UUID --app=NAME",
			Short: "Start an added app of a running mutable pod",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := openPod(args[0], "")
				if err != nil {
					return err
				}
				return stage0.StartApp(ctxOrBackground(cmd.Context()), globals.Dir, p.UUID, app, globals.Debug)
			},
		}
		appNameFlag(cmd, &app)
		return cmd
	})
}
