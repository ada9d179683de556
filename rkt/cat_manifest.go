package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command {
		var pretty bool
		var uuidFile string
		cmd := &cobra.Command{
			Use:   "cat-manifest UUID",
			Short: "Print the pod manifest of a pod",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				uuid := ""
				if len(args) == 1 {
					uuid = args[0]
				}
				p, err := openPod(uuid, uuidFile)
				if err != nil {
					return err
				}
				b, err := p.ManifestBytes()
				if err != nil {
					return err
				}
				if pretty {
					var buf bytes.Buffer
					if err := json.Indent(&buf, b, "", "\t"); err != nil {
						return fmt.Errorf("pod %s manifest: %w", p.UUID, err)
					}
					b = buf.Bytes()
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			},
		}
		cmd.Flags().BoolVar(&pretty, "pretty-print", true, "indent the manifest")
		cmd.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod's UUID from this file")
		return cmd
	})
}
