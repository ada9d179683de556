package main

import (
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	registerImage(func() *cobra.Command { return newImageCopyCommand(false) })
	registerImage(func() *cobra.Command { return newImageCopyCommand(true) })
}

// newImageCopyCommand builds `image extract` (the image's own tar) and
// `image render` (with dependencies, as a pod sees it): both write
// DIR/manifest and DIR/rootfs, or with --rootfs-only the rootfs at DIR.
func newImageCopyCommand(render bool) *cobra.Command {
	var o store.CopyOptions
	o.Render = render
	cmd := &cobra.Command{
		Use:   "extract IMAGE OUTPUT_DIR",
		Short: "Extract an image from the store to a directory",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := openStoredImage(args[0])
			if err != nil {
				return err
			}
			verb := "Extracting"
			if render {
				verb = "Rendering"
			}
			bar := newBarProgress(verb + " " + store.ShortID(id))
			defer bar.finish()
			o.Progress = bar.callback()
			return s.ExtractTo(cmd.Context(), id, args[1], o)
		},
	}
	if render {
		cmd.Use = "render IMAGE OUTPUT_DIR"
		cmd.Short = "Render an image with its dependencies to a directory, as a pod would see it"
	}
	cmd.Flags().BoolVar(&o.RootfsOnly, "rootfs-only", false, "write only the rootfs")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "replace the output directory if it exists")
	return cmd
}
