package main

import (
	"fmt"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var o podOptions
		var quiet bool
		cmd := &cobra.Command{
			Use:   "prepare [flags] IMAGE [app flags] [-- ARGS] [--- IMAGE ...]",
			Short: "Prepare a pod for run-prepared and print its UUID",
			Long:  "Prepare a pod from images without running it; `rkt run-prepared UUID` runs it.\n\n" + appFlagsUsage(),
			RunE: func(cmd *cobra.Command, args []string) error {
				apps, err := parseApps(args, cmd.Flags(), true)
				if err != nil {
					return err
				}
				p, _, err := preparePod(cmd.Context(), &o, apps, pod.Prepared)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), p.UUID)
				return nil
			},
		}
		cmd.Flags().SetInterspersed(false)
		addPodFlags(cmd.Flags(), &o, false)
		addMisplacedAppFlags(cmd.Flags())
		cmd.Flags().BoolVar(&quiet, "quiet", false, "print only the UUID (the default here)")
		return cmd
	})
}
