package main

import (
	"time"

	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var cfg stage0.GCConfig
		cmd := &cobra.Command{
			Use:   "gc",
			Short: "Collect exited and abandoned pods",
			Long: `Move exited pods, abandoned preparations and expired prepared pods to the
garbage directories, then (after the grace period) run their stage1's gc and
remove them.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				cfg.DataDir = globals.Dir
				cfg.TreeRoot = treeRoot(st)
				cfg.Debug = globals.Debug
				cfg.LocalConfig = globals.LocalConfig
				cfg.Log = cmd.OutOrStdout()
				cfg.Warn = cmd.ErrOrStderr()
				return stage0.GC(ctxOrBackground(cmd.Context()), cfg)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&cfg.GracePeriod, "grace-period", 30*time.Minute, "how long exited pods stay before they are removed")
		f.DurationVar(&cfg.ExpirePrepared, "expire-prepared", 24*time.Hour, "how long prepared pods may wait to be run")
		f.BoolVar(&cfg.MarkOnly, "mark-only", false, "only move pods to the garbage directories; remove nothing")
		return cmd
	})
}
