package main

import (
	"time"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

// appStatusJSON is one app in `rkt app list/status --format=json`, with
// rkt's field names; times are Unix nanoseconds, absent when unknown.
type appStatusJSON struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	ImageID    string `json:"image_id"`
	CreatedAt  *int64 `json:"created_at,omitempty"`
	StartedAt  *int64 `json:"started_at,omitempty"`
	FinishedAt *int64 `json:"finished_at,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`
}

func unixNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func appJSON(s stage0.AppState) appStatusJSON {
	return appStatusJSON{Name: s.Name, State: s.State, ImageID: s.ImageID,
		CreatedAt: unixNanos(s.Created), StartedAt: unixNanos(s.Started),
		FinishedAt: unixNanos(s.Finished), ExitCode: s.ExitCode}
}

func init() {
	registerApp(func() *cobra.Command {
		var noLegend bool
		var format outputFormat
		cmd := &cobra.Command{
			Use:   "list UUID",
			Short: "List the apps of a pod",
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
				w := cmd.OutOrStdout()
				if format != formatTable {
					out := []appStatusJSON{}
					for _, s := range states {
						out = append(out, appJSON(s))
					}
					return writeJSON(w, format, out)
				}
				var rows [][]string
				for _, s := range states {
					rows = append(rows, []string{s.Name, s.State, fmtTime(s.Created), fmtTime(s.Started)})
				}
				return writeTable(w, []string{"name", "state", "created", "started"}, rows, noLegend)
			},
		}
		cmd.Flags().BoolVar(&noLegend, "no-legend", false, "suppress the legend")
		cmd.Flags().Var(&format, "format", "output format: json or json-pretty (default: a table)")
		return cmd
	})
}
