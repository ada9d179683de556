package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var app string
		var overwrite bool
		cmd := &cobra.Command{
			Use:   "export [--app=NAME] UUID FILE.aci",
			Short: "Export an app of an exited pod as an ACI",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := pod.Open(globals.Dir, args[0])
				if err != nil {
					return err
				}
				switch st := p.Status(); st {
				case pod.StatusExited, pod.StatusExitedGarbage, pod.StatusPrepared:
				default:
					return fmt.Errorf("pod %s is %s: export needs a pod that is not running", p.UUID, st)
				}
				pm, err := p.Manifest()
				if err != nil {
					return err
				}
				if app == "" {
					if len(pm.Apps) != 1 {
						return fmt.Errorf("pod %s has %d apps: choose one with --app", p.UUID, len(pm.Apps))
					}
					app = pm.Apps[0].Name.String()
				}
				if pm.Apps.Get(types.ACName(app)) == nil {
					return fmt.Errorf("pod %s has no app %q", p.UUID, app)
				}
				out := args[1]
				if _, err := os.Stat(out); err == nil && !overwrite {
					return fmt.Errorf("%s exists: use --overwrite", out)
				}
				st, err := store.Open(globals.Dir)
				if err != nil {
					return err
				}
				// Write beside the target and rename, so that a failed
				// export leaves no partial image.
				f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				err = stage0.ExportApp(ctxOrBackground(cmd.Context()), p.Dir, app, treeRoot(st), f)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				return os.Rename(f.Name(), out)
			},
		}
		cmd.Flags().StringVar(&app, "app", "", "the app to export (needed when the pod has several)")
		cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace FILE if it exists")
		return cmd
	})
}
