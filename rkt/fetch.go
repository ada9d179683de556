package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// fetchFlags are rkt fetch's own flags.
type fetchFlags struct {
	signatures []string
	pullPolicy string
	noStore    bool
	storeOnly  bool
	full       bool
	labels     []string
}

func init() { register(newFetchCommand) }

func newFetchCommand() *cobra.Command {
	var ff fetchFlags
	cmd := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the store and print their IDs",
		Long: `Fetch images into the store and print each image's ID on stdout.

IMAGE is a file path, an https:// (or, with --insecure-options=http, http://)
URL, an appc name ("example.com/app:1.0,os=linux", found by meta discovery,
or where no discovery page has a template for it at appc's simple discovery
URL https://NAME-VERSION-OS-ARCH.aci), or a docker:// or oci: reference.
Images must carry a detached signature (IMAGE.asc, or --signature) by a key
trusted for their name (see rkt trust) unless --insecure-options=image is
given.

Discovery uses the standard HTTPS port; set RKT_DISCOVERY_PORT to send
discovery requests to another port (for tests).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runFetch(cmd, args, ff) },
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&ff.signatures, "signature", nil, "detached signature file of the image (repeat for each image, in order)")
	fl.StringVar(&ff.pullPolicy, "pull-policy", string(fetch.PullNew), "when to go to the network: new (only if not in the store), update (check for a newer image), never (store only)")
	fl.BoolVar(&ff.noStore, "no-store", false, "same as --pull-policy=update")
	fl.BoolVar(&ff.storeOnly, "store-only", false, "same as --pull-policy=never")
	fl.BoolVar(&ff.full, "full", false, "print full image IDs")
	fl.StringArrayVar(&ff.labels, "label", nil, "label NAME=VALUE the image must carry (for appc names; repeatable)")
	_ = fl.MarkDeprecated("no-store", "use --pull-policy=update")
	_ = fl.MarkDeprecated("store-only", "use --pull-policy=never")
	return cmd
}

func runFetch(cmd *cobra.Command, args []string, ff fetchFlags) error {
	fetch.WarmTLSRoots(args...)
	policy, err := fetch.ParsePullPolicy(ff.pullPolicy)
	if err != nil {
		return err
	}
	switch {
	case ff.noStore && ff.storeOnly:
		return errors.New("--no-store and --store-only contradict each other")
	case ff.noStore:
		policy = fetch.PullUpdate
	case ff.storeOnly:
		policy = fetch.PullNever
	}
	if len(ff.signatures) > len(args) {
		return fmt.Errorf("%d signatures given for %d images", len(ff.signatures), len(args))
	}
	var labels types.Labels
	for _, l := range ff.labels {
		k, v, ok := cutLabel(l)
		if !ok {
			return fmt.Errorf("--label %q: want NAME=VALUE", l)
		}
		name, err := types.NewACIdentifier(k)
		if err != nil {
			return fmt.Errorf("--label %q: bad name: %v", l, err)
		}
		labels = append(labels, types.Label{Name: *name, Value: v})
	}
	st, err := store.Open(globals.Dir)
	if err != nil {
		return err
	}
	// An interrupted fetch must still clean up: the store removes its
	// temporary files when the context ends, which a signal's default
	// action would not let it do.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for i, img := range args {
		sig := ""
		if i < len(ff.signatures) {
			sig = ff.signatures[i]
		}
		cfg, err := fetchConfig(st, policy, sig)
		if err != nil {
			return err
		}
		f, err := fetch.New(cfg)
		if err != nil {
			return err
		}
		id, err := f.Fetch(ctx, img, labels)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("fetch %s: interrupted", img)
			}
			return err
		}
		if !ff.full {
			id = store.ShortID(id)
		}
		fmt.Fprintln(cmd.OutOrStdout(), id)
	}
	return nil
}

func cutLabel(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
