package main

import (
	"context"

	"github.com/spf13/cobra"
)

// appCommands collects the `rkt app` subcommands (mutable pods), each
// registered from its own file's init.
var appCommands []func() *cobra.Command

func registerApp(newCmd func() *cobra.Command) { appCommands = append(appCommands, newCmd) }

func init() {
	register(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "app",
			Short: "Operate on the apps of a mutable pod (rkt app sandbox)",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		}
		for _, add := range appCommands {
			cmd.AddCommand(add())
		}
		return cmd
	})
}

// appNameFlag registers --app, required by the commands acting on one app.
func appNameFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "app", "", "name of the app in the pod")
	_ = cmd.MarkFlagRequired("app")
}

// appAction makes `rkt app start|stop|rm UUID --app=NAME`: the same
// command line for each, acting through one stage0 function.
func appAction(use, short string, act func(ctx context.Context, dataDir, uuid, app string, debug bool) error) func() *cobra.Command {
	return func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   use + " UUID --app=NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := openPod(args[0], "")
				if err != nil {
					return err
				}
				return act(ctxOrBackground(cmd.Context()), globals.Dir, p.UUID, app, globals.Debug)
			},
		}
		appNameFlag(cmd, &app)
		return cmd
	}
}
