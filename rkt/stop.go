package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var force bool
		var uuidFile string
		cmd := &cobra.Command{
			Use:   "stop [--force] UUID...",
			Short: "Stop running pods (SIGTERM to the apps; --force: SIGKILL)",
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
				var errs []error
				for _, a := range args {
					p, err := openPod(a, uuidFile)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if st := p.Status(); st != pod.StatusRunning {
						errs = append(errs, fmt.Errorf("pod %s is %s, not running", p.UUID, st))
						continue
					}
					sargs := []string{p.UUID}
					if force {
						sargs = []string{"--force", p.UUID}
					}
					if err := stage0.RunEntrypoint(p, "stop", sargs); err != nil {
						errs = append(errs, fmt.Errorf("stop pod %s: %w", p.UUID, err))
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), p.UUID)
				}
				return joinErrors(errs)
			},
		}
		cmd.Flags().BoolVar(&force, "force", false, "kill the apps (SIGKILL) instead of asking them to stop")
		cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod's UUID from this file")
		return cmd
	})
}

// joinErrors reports several per-pod failures: all but the last go to
// stderr, so that rkt still prints one final line.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, e := range errs[:len(errs)-1] {
		fmt.Fprintf(os.Stderr, "rkt: %v\n", e)
	}
	return errs[len(errs)-1]
}
