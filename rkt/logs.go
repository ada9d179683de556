package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var app string
		var follow bool
		var lines int
		var output, afterCursor string
		cmd := &cobra.Command{
			Use:   "logs [--app=NAME] [--follow] UUID",
			Short: "Print the output of a pod's apps, kept in the pod's journal",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := pod.Open(globals.Dir, args[0])
				if err != nil {
					return err
				}
				pm, err := p.Manifest()
				if err != nil {
					return err
				}
				var apps []string
				for _, ra := range pm.Apps {
					if app == "" || ra.Name.String() == app {
						apps = append(apps, ra.Name.String())
					}
				}
				if len(apps) == 0 {
					return fmt.Errorf("pod %s has no app %q", p.UUID, app)
				}
				if output != "" && !logOutputs[output] {
					return fmt.Errorf("--output=%s: not one of %s", output, strings.Join(logOutputNames(), ", "))
				}
				if follow && p.Status() != pod.StatusRunning {
					follow = false
				}
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				err = stage0.Logs(cmd.Context(), p, stage0.LogsConfig{
					TreeRoot:    treeRoot(st),
					Apps:        apps,
					Prefix:      len(apps) > 1,
					Follow:      follow,
					Lines:       lines,
					Output:      output,
					AfterCursor: afterCursor,
					Stdout:      os.Stdout,
					Stderr:      os.Stderr,
				})
				var ee *exec.ExitError
				switch {
				case errors.Is(err, stage0.ErrNoLogs):
					return fmt.Errorf("pod %s: %w", p.UUID, err)
				case errors.As(err, &ee):
					// The entrypoint said why on stderr.
					return exitError{code: errExitCode}
				}
				return err
			},
		}
		cmd.Flags().StringVar(&app, "app", "", "only this app's output")
		cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output while the pod runs")
		cmd.Flags().IntVarP(&lines, "lines", "n", 0, "only the last N lines")
		cmd.Flags().StringVarP(&output, "output", "o", "", "journalctl's output mode: "+strings.Join(logOutputNames(), ", ")+" (default: the messages as written)")
		cmd.Flags().StringVar(&afterCursor, "after-cursor", "", "start after this journal cursor (as --output=json gives)")
		return cmd
	})
}

// logOutputs are the journalctl output modes rkt logs passes on.
var logOutputs = map[string]bool{"short": true, "short-iso": true, "short-precise": true, "short-monotonic": true,
	"verbose": true, "cat": true, "json": true, "json-pretty": true, "export": true}

func logOutputNames() []string {
	var n []string
	for k := range logOutputs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
