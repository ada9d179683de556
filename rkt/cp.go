package main

import (
	"fmt"
	"strings"

	"github.com/rktng/rkt/stage0"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var app string
		cmd := &cobra.Command{
			Use:   "cp [--app=NAME] SRC DST",
			Short: "Copy files between the host and a running app (UUID:PATH names the app's side)",
			Long: `Copy files between the host and a running app: one of SRC and DST is
UUID:PATH (a UUID prefix will do), a path in the app's root as the app
sees it, volumes included; the other a host path. Directories are copied
whole, with their files, directories and symbolic links, modes kept.
Like cp -r, a copy into an existing directory lands inside it. What is
copied into an app belongs to its root user; a path or link in the app
that leads out of its root is refused.`,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				src, dst := args[0], args[1]
				srcPod, srcPath, srcIn := splitPodPath(src)
				dstPod, dstPath, dstIn := splitPodPath(dst)
				if srcIn == dstIn {
					return fmt.Errorf("one of %q and %q must be UUID:PATH, the other a host path", src, dst)
				}
				uuid, appPath := srcPod, srcPath
				if dstIn {
					uuid, appPath = dstPod, dstPath
				}
				p, pm, err := openRunningPod(uuid)
				if err != nil {
					return err
				}
				name, err := appOf(p.UUID, pm, app)
				if err != nil {
					return err
				}
				if dstIn {
					return stage0.CopyIn(p, name, src, appPath)
				}
				return stage0.CopyOut(p, name, appPath, dst)
			},
		}
		cmd.Flags().StringVar(&app, "app", "", "the app (needed when the pod has several)")
		return cmd
	})
}

// splitPodPath splits "UUID:PATH"; a host path has no colon before its
// first slash.
func splitPodPath(s string) (uuid, p string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.Contains(s[:i], "/") {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}
