package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

func init() {
	registerImage(func() *cobra.Command {
		return &cobra.Command{
			Use:   "verify [IMAGE...]",
			Short: "Check rendered trees against the hash recorded when they were rendered",
			Long: `Check rendered trees in the tree store: every file's content and
metadata is hashed again and compared with the hash recorded at render time.
Without arguments, every tree is checked; with images, the trees that
contain them.`,
			RunE: func(cmd *cobra.Command, args []string) error { return runImageVerify(cmd, args) },
		}
	})
}

func runImageVerify(cmd *cobra.Command, refs []string) error {
	s, err := openStore()
	if err != nil {
		return err
	}
	var trees []store.Tree
	if len(refs) == 0 {
		if trees, err = s.Trees(); err != nil {
			return err
		}
	} else {
		byImage, err := imageTrees(s)
		if err != nil {
			return err
		}
		for _, ref := range refs {
			id, err := resolveStored(s, ref)
			if err != nil {
				return err
			}
			if len(byImage[id]) == 0 {
				fmt.Fprintf(os.Stderr, "rkt: image %s has no rendered tree to verify\n", store.ShortID(id))
			}
			trees = append(trees, byImage[id]...)
		}
	}
	bad := 0
	w := cmd.OutOrStdout()
	for _, t := range trees {
		err := s.VerifyTree(t.ID)
		switch {
		case err == nil:
			fmt.Fprintf(w, "%s\tok\n", t.ID)
		case errors.Is(err, store.ErrTreeCorrupt):
			bad++
			fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
		default:
			return err
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d trees failed verification", bad, len(trees))
	}
	return nil
}
