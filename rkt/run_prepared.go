package main

import (
	"context"
	"encoding/json"
	"fmt"
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
				// A typo in --net must not cost the prepared pod: checked
				// before the pod leaves prepared/.
				if cmd.Flags().Changed("net") {
					if err := checkNets(nets); err != nil {
						return err
					}
				}
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				if err := checkPreparedTrees(ctxOrBackground(cmd.Context()), st, args[0]); err != nil {
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

// checkPreparedTrees makes sure the trees a prepared pod will overlay are
// still what was rendered, as rkt run checks them before use (unless
// --insecure-options=ondisk): time may have passed since prepare. A pod
// prepared with --no-overlay holds copies and is not checked. A failure
// leaves the pod prepared.
func checkPreparedTrees(ctx context.Context, st *store.Store, uuid string) error {
	if globals.Insecure.Has(insecureOnDisk) {
		return nil
	}
	pp, err := pod.Open(globals.Dir, uuid)
	if err != nil || pp.State != pod.Prepared {
		return nil // OpenPrepared says what is wrong with it
	}
	if _, err := os.Stat(filepath.Join(pp.Dir, pod.OverlayPrepared)); err != nil {
		return nil
	}
	cfg, _, err := stage0.RunConfigFor(pp.Dir, treeRoot(st))
	if err != nil {
		return err
	}
	ids := []string{cfg.Stage1Tree}
	for _, id := range cfg.AppTreeIDs {
		ids = append(ids, id)
	}
	for _, id := range ids {
		if err := st.CheckTree(ctx, id); err != nil {
			return fmt.Errorf("pod %s: %w", pp.UUID, err)
		}
	}
	return nil
}
