package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/pkg/keystore"
	"github.com/spf13/cobra"
)

type trustFlags struct {
	prefix     string
	root       bool
	skipReview bool
	list       bool
	remove     bool
	format     outputFormat
	noLegend   bool
}

func init() { register(newTrustCommand) }

func newTrustCommand() *cobra.Command {
	var tf trustFlags
	cmd := &cobra.Command{
		Use:   "trust [--prefix=PREFIX | --root] [KEYFILE|URL...]",
		Short: "Trust a key for image signature verification",
		Long: `Trust public keys for verifying image signatures.

With --prefix and no key arguments, the keys are found by meta discovery
(ac-discovery-pubkeys) of the prefix. Each key's fingerprint is shown and
must be confirmed unless --skip-fingerprint-review is given. A key trusted
for a prefix vouches only for names at or below it; --root keys vouch for
every image. Keys are stored in LOCAL-CONFIG/trustedkeys.

rkt trust --list shows the trusted keys; rkt trust --remove FINGERPRINT...
removes keys from the local configuration.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runTrust(cmd, args, tf) },
	}
	fl := cmd.Flags()
	fl.StringVar(&tf.prefix, "prefix", "", "image name prefix the keys are trusted for")
	fl.BoolVar(&tf.root, "root", false, "trust the keys for every image (root keys)")
	fl.BoolVar(&tf.skipReview, "skip-fingerprint-review", false, "trust without asking to confirm each fingerprint")
	fl.BoolVar(&tf.list, "list", false, "list the trusted keys")
	fl.BoolVar(&tf.remove, "remove", false, "remove the keys with the given fingerprints from the local configuration")
	fl.Var(&tf.format, "format", "output format for --list: json or json-pretty")
	fl.BoolVar(&tf.noLegend, "no-legend", false, "suppress the legend of --list")
	return cmd
}

func runTrust(cmd *cobra.Command, args []string, tf trustFlags) error {
	ks := keystore.New(globals.SystemConfig, globals.LocalConfig)
	out := cmd.OutOrStdout()
	switch {
	case tf.list && tf.remove:
		return errors.New("--list and --remove contradict each other")
	case tf.list:
		if len(args) > 0 || tf.prefix != "" || tf.root {
			return errors.New("--list takes no keys, --prefix or --root")
		}
		return listTrust(out, ks, tf)
	case tf.remove:
		if len(args) == 0 {
			return errors.New("--remove needs the fingerprints of the keys to remove")
		}
		for _, fp := range args {
			removed, err := ks.Remove(fp)
			if err != nil {
				return err
			}
			for _, k := range removed {
				fmt.Fprintf(out, "Removed key %s for %s (%s)\n", k.Fingerprint, prefixLabel(k), k.Path)
			}
		}
		return nil
	}
	if tf.root == (tf.prefix != "") {
		return errors.New("give either --prefix=PREFIX or --root")
	}
	if tf.root && len(args) == 0 {
		return errors.New("--root needs key files or URLs: root keys are never discovered")
	}
	// Discovery and key URLs go through the fetcher's HTTP client (TLS,
	// proxies, credentials); the store is not touched.
	cfg, err := fetchConfig(nil, fetch.PullNever, "")
	if err != nil {
		return err
	}
	f, err := fetch.NewKeyFetcher(cfg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var keys []fetch.FetchedKey
	if len(args) == 0 {
		keys, err = f.DiscoverKeys(ctx, tf.prefix)
		if err != nil {
			return err
		}
	}
	for _, a := range args {
		k, err := f.FetchKey(ctx, a)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	in := bufio.NewReader(cmd.InOrStdin())
	stderr := cmd.ErrOrStderr()
	trusted := 0
	for _, k := range keys {
		if !tf.skipReview {
			ok, err := reviewKey(stderr, in, tf.prefix, k)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(stderr, "Not trusting key %s\n", k.Fingerprint())
				continue
			}
		} else if !k.Secure {
			fmt.Fprintf(stderr, "Warning: key %s was fetched over an insecure connection (%s)\n", k.Fingerprint(), k.Location)
		}
		stored, err := ks.Store(tf.prefix, k.Entity)
		if err != nil {
			return err
		}
		trusted++
		fmt.Fprintf(out, "Trusted key %s for %s (%s)\n", stored.Fingerprint, prefixLabel(stored), stored.Path)
	}
	if trusted == 0 {
		return errors.New("no key was trusted")
	}
	return nil
}

func prefixLabel(k keystore.Key) string {
	if k.Root {
		return "all images (root key)"
	}
	return fmt.Sprintf("prefix %q", k.Prefix)
}

// reviewKey shows a key and asks whether to trust it; only "y" or "yes"
// says yes.
func reviewKey(w io.Writer, in *bufio.Reader, prefix string, k fetch.FetchedKey) (bool, error) {
	what := fmt.Sprintf("prefix %q", prefix)
	if prefix == "" {
		what = "all images (root key)"
	}
	fmt.Fprintf(w, "Key for %s from %s\n", what, k.Location)
	if !k.Secure {
		fmt.Fprintln(w, "  WARNING: fetched over an insecure connection")
	}
	fmt.Fprintf(w, "  Fingerprint: %s\n", groupFingerprint(k.Fingerprint()))
	for _, id := range keystore.UserIDs(k.Entity) {
		fmt.Fprintf(w, "  User ID:     %s\n", id)
	}
	if exp, rev := keystore.Expired(k.Entity, time.Now()); exp || rev {
		fmt.Fprintf(w, "  WARNING: this key is expired or revoked; signatures by it will be refused\n")
	}
	fmt.Fprint(w, "Trust this key? [y/N] ")
	line, err := in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		fmt.Fprintln(w)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// groupFingerprint spaces a fingerprint in groups of four, as gpg prints it.
func groupFingerprint(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		end := i + 4
		if end > len(fp) {
			end = len(fp)
		}
		b.WriteString(strings.ToUpper(fp[i:end]))
	}
	return b.String()
}

type trustedKeyJSON struct {
	Fingerprint string   `json:"fingerprint"`
	Prefix      string   `json:"prefix"`
	Root        bool     `json:"root"`
	Origin      string   `json:"origin"`
	Path        string   `json:"path"`
	UserIDs     []string `json:"userIDs"`
}

func listTrust(out io.Writer, ks *keystore.Keystore, tf trustFlags) error {
	keys, err := ks.List()
	if err != nil {
		return err
	}
	if tf.format != formatTable {
		js := make([]trustedKeyJSON, 0, len(keys))
		for _, k := range keys {
			js = append(js, trustedKeyJSON{k.Fingerprint, k.Prefix, k.Root, k.Origin, k.Path, k.UserIDs})
		}
		return writeJSON(out, tf.format, js)
	}
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		p := k.Prefix
		if k.Root {
			p = "(root)"
		}
		rows = append(rows, []string{k.Fingerprint, p, k.Origin, strings.Join(k.UserIDs, ", ")})
	}
	if err := writeTable(out, []string{"fingerprint", "prefix", "origin", "user ids"}, rows, tf.noLegend); err != nil {
		return err
	}
	if len(keys) == 0 && !tf.noLegend {
		fmt.Fprintln(os.Stderr, "no trusted keys")
	}
	return nil
}
