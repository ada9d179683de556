package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// progressWriter reports the bytes written through it.
type progressWriter struct {
	w     io.Writer
	n     int64
	total int64
	bar   *barProgress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.bar.update(p.n, p.total)
	return n, err
}

func init() {
	registerImage(func() *cobra.Command {
		var overwrite bool
		cmd := &cobra.Command{
			Use:   "export IMAGE OUTPUT_ACI_FILE",
			Short: "Export an image from the store to an (uncompressed) ACI file",
			Long: `Export an image from the store to an ACI file. The file is the
uncompressed ACI the store keeps, so it has the same image ID.`,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runImageExport(args[0], args[1], overwrite)
			},
		}
		cmd.Flags().BoolVar(&overwrite, "overwrite", false, "overwrite the output file")
		return cmd
	})
}

func runImageExport(ref, dst string, overwrite bool) error {
	s, id, err := openStoredImage(ref)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dst); err == nil && !overwrite {
		return fmt.Errorf("%s already exists (use --overwrite to replace it)", dst)
	}
	src, err := s.OpenImage(id)
	if err != nil {
		return err
	}
	defer src.Close()
	// Temp file + fsync + rename: dst is the whole image or untouched.
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".rkt-export-*")
	if err != nil {
		return fmt.Errorf("export %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	var w io.Writer = tmp
	if bar := newBarProgress("Exporting " + store.ShortID(id)); bar != nil {
		defer bar.finish()
		if fi, err := src.Stat(); err == nil {
			w = &progressWriter{w: tmp, total: fi.Size(), bar: bar}
		}
	}
	if _, err := io.Copy(w, src); err != nil {
		tmp.Close()
		return fmt.Errorf("export %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("export %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export %s: %w", dst, err)
	}
	if !overwrite {
		// link(2) fails if dst appeared meanwhile; rename would clobber it.
		if err := os.Link(tmp.Name(), dst); err != nil {
			return fmt.Errorf("export %s: %w", dst, err)
		}
		return nil
	}
	return os.Rename(tmp.Name(), dst)
}
