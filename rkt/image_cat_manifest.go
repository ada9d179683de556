package main

import (
	"bytes"
	"encoding/json"

	"github.com/spf13/cobra"
)

func init() {
	registerImage(func() *cobra.Command {
		var pretty bool
		cmd := &cobra.Command{
			Use:   "cat-manifest IMAGE",
			Short: "Print the manifest of an image in the store",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				s, id, err := openStoredImage(args[0])
				if err != nil {
					return err
				}
				info, err := s.Info(id)
				if err != nil {
					return err
				}
				var out bytes.Buffer
				if pretty {
					err = json.Indent(&out, info.Manifest, "", "\t")
				} else {
					err = json.Compact(&out, info.Manifest)
				}
				if err != nil {
					return err
				}
				out.WriteByte('\n')
				_, err = cmd.OutOrStdout().Write(out.Bytes())
				return err
			},
		}
		cmd.Flags().BoolVar(&pretty, "pretty-print", true, "indent the output")
		return cmd
	})
}
