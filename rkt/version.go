package main

import (
	"fmt"
	"runtime"

	"github.com/appc/spec/schema"
	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the version and exit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "rkt Version: %s\n", version)
				fmt.Fprintf(w, "appc Version: %s\n", schema.AppContainerVersion)
				fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
				fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
				return nil
			},
		}
	})
}
