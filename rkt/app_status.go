package main

import (
	"fmt"
	"strconv"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	registerApp(func() *cobra.Command {
		var app string
		var format outputFormat
		cmd := &cobra.Command{
			Use:   "status UUID --app=NAME",
			Short: "Show the state of an app of a pod: state, exit code, start and finish times",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := pod.Open(globals.Dir, args[0])
				if err != nil {
					return err
				}
				states, err := stage0.AppStates(p)
				if err != nil {
					return err
				}
				for _, s := range states {
					if s.Name != app {
						continue
					}
					w := cmd.OutOrStdout()
					if format != formatTable {
						return writeJSON(w, format, appJSON(s))
					}
					fmt.Fprintf(w, "name=%s\nstate=%s\nimage_id=%s\n", s.Name, s.State, s.ImageID)
					for _, kv := range [][2]string{{"created", fmtTime(s.Created)}, {"started", fmtTime(s.Started)}, {"finished", fmtTime(s.Finished)}} {
						if kv[1] != "" {
							fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
						}
					}
					if s.ExitCode != nil {
						fmt.Fprintf(w, "exit_code=%s\n", strconv.Itoa(*s.ExitCode))
					}
					return nil
				}
				return fmt.Errorf("pod %s has no app %q", p.UUID, app)
			},
		}
		appNameFlag(cmd, &app)
		cmd.Flags().Var(&format, "format", "output format: json or json-pretty (default: key=value lines)")
		return cmd
	})
}
