package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/rktng/rkt/pkg/mds"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var interactive, mdsRegister bool
		var nets []string
		var mdsSocket string
		cmd := &cobra.Command{
			Use:   "run-prepared UUID",
			Short: "Run a prepared pod",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				p, err := stage0.OpenPrepared(globals.Dir, args[0])
				if err != nil {
					return err
				}
				f := cmd.Flags()
				if f.Changed("interactive") || f.Changed("net") || f.Changed("mds-register") {
					// Flags of the run itself override what prepare recorded.
					rc, err := pod.ReadRuntimeConfig(p.Dir)
					if err != nil {
						p.Discard()
						return err
					}
					if f.Changed("interactive") {
						rc.Interactive = interactive
					}
					if f.Changed("net") {
						rc.Nets = nets
					}
					if f.Changed("mds-register") && mdsRegister && rc.MDSToken == "" {
						var o podOptions
						o.MDSRegister = true
						var c stage0.PrepareConfig
						if err := podConfig(&o, &c); err != nil {
							p.Discard()
							return err
						}
						rc.MDSToken = c.RuntimeConfig.MDSToken
					}
					b, err := json.Marshal(rc)
					if err == nil {
						err = os.WriteFile(filepath.Join(p.Dir, pod.RuntimeConfigFile), b, 0o640)
					}
					if err != nil {
						p.Discard()
						return err
					}
				}
				return execPod(p, st, mdsSocket)
			},
		}
		f := cmd.Flags()
		f.BoolVar(&interactive, "interactive", false, "run the pod interactively")
		f.BoolVar(&mdsRegister, "mds-register", false, "register the pod with the metadata service")
		f.StringSliceVar(&nets, "net", nil, "networks to join (overrides what prepare recorded)")
		f.StringVar(&mdsSocket, "mds-socket", mds.DefaultSocket, "the metadata service's registration socket")
		_ = f.MarkHidden("mds-socket")
		return cmd
	})
}
