package main

import (
	"errors"
	"fmt"

	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var uuidFile string
		cmd := &cobra.Command{
			Use:   "rm UUID...",
			Short: "Remove exited or prepared pods",
			RunE: func(cmd *cobra.Command, args []string) error {
				if uuidFile != "" {
					if len(args) > 0 {
						return errors.New("conflicting arguments: give UUIDs or --uuid-file, not both")
					}
					args = []string{""}
				}
				if len(args) == 0 {
					return errors.New("give at least one pod UUID")
				}
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				cfg := stage0.GCConfig{DataDir: globals.Dir, TreeRoot: treeRoot(st), Debug: globals.Debug,
					LocalConfig: globals.LocalConfig, Warn: cmd.ErrOrStderr()}
				var errs []error
				for _, a := range args {
					p, err := openPod(a, uuidFile)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if err := stage0.Remove(p, cfg); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", p.UUID)
				}
				return joinErrors(errs)
			},
		}
		cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod's UUID from this file")
		return cmd
	})
}
