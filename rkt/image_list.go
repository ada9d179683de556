package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// imageListConfig is `rkt image list`'s flags.
type imageListConfig struct {
	fields   string
	sort     string
	order    string
	noLegend bool
	full     bool
	format   outputFormat
}

var imageListFields = []string{"id", "name", "importtime", "lastused", "size", "latest"}

var imageListLegend = map[string]string{
	"id": "ID", "name": "NAME", "importtime": "IMPORT TIME", "lastused": "LAST USED", "size": "SIZE", "latest": "LATEST",
}

func init() {
	registerImage(func() *cobra.Command {
		var c imageListConfig
		cmd := &cobra.Command{
			Use:   "list",
			Short: "List images in the local store",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return runImageList(cmd, c) },
		}
		fl := cmd.Flags()
		fl.StringVar(&c.fields, "fields", "id,name,size,importtime,lastused", "comma-separated list of fields to display: "+strings.Join(imageListFields, ", "))
		fl.StringVar(&c.sort, "sort", "importtime", "comma-separated list of fields to sort by: "+strings.Join(imageListFields, ", "))
		fl.StringVar(&c.order, "order", "asc", "sort order: asc or desc")
		fl.BoolVar(&c.noLegend, "no-legend", false, "suppress a legend with the list")
		fl.BoolVar(&c.full, "full", false, "use long output format")
		fl.Var(&c.format, "format", "output format: json or json-pretty (default: a table)")
		return cmd
	})
}

func parseFieldList(flag, v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if _, ok := imageListLegend[f]; !ok {
			return nil, fmt.Errorf("--%s: unknown field %q (valid: %s)", flag, f, strings.Join(imageListFields, ", "))
		}
		if seen[f] {
			return nil, fmt.Errorf("--%s: field %q given twice", flag, f)
		}
		seen[f] = true
		out = append(out, f)
	}
	return out, nil
}

// imageListEntry is one image in --format=json, with rkt's field names
// (times in nanoseconds since the epoch).
type imageListEntry struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ImportTime   int64  `json:"import_time"`
	LastUsedTime int64  `json:"last_used_time"`
	Size         int64  `json:"size"`
	Latest       bool   `json:"latest"`
}

func runImageList(cmd *cobra.Command, c imageListConfig) error {
	fields, err := parseFieldList("fields", c.fields)
	if err != nil {
		return err
	}
	sortBy, err := parseFieldList("sort", c.sort)
	if err != nil {
		return err
	}
	if c.order != "asc" && c.order != "desc" {
		return fmt.Errorf("--order: %q is neither asc nor desc", c.order)
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	imgs, err := s.List()
	if err != nil {
		return err
	}
	sortImages(imgs, sortBy, c.order == "desc")
	w := cmd.OutOrStdout()
	if c.format != formatTable {
		out := make([]imageListEntry, 0, len(imgs))
		for _, img := range imgs {
			out = append(out, imageListEntry{ID: img.ID, Name: displayName(img), ImportTime: img.ImportTime.UnixNano(),
				LastUsedTime: img.LastUsed.UnixNano(), Size: totalSize(img), Latest: img.Latest})
		}
		return writeJSON(w, c.format, out)
	}
	var legend []string
	for _, f := range fields {
		legend = append(legend, imageListLegend[f])
	}
	now := time.Now()
	var rows [][]string
	for _, img := range imgs {
		var row []string
		for _, f := range fields {
			row = append(row, imageField(img, f, c.full, now))
		}
		rows = append(rows, row)
	}
	return writeTable(w, legend, rows, c.noLegend)
}

// totalSize is what rkt showed as an image's size: the blob and the
// trees rendered from it.
func totalSize(img store.ImageInfo) int64 { return img.Size + img.TreeSize }

func displayName(img store.ImageInfo) string {
	if v := img.Version(); v != "" {
		return img.Name + ":" + v
	}
	return img.Name
}

func imageField(img store.ImageInfo, f string, full bool, now time.Time) string {
	switch f {
	case "id":
		if full {
			return img.ID
		}
		return store.ShortID(img.ID)
	case "name":
		return displayName(img)
	case "importtime":
		if full {
			return img.ImportTime.Format(fullTimeLayout)
		}
		return humanAgo(img.ImportTime, now)
	case "lastused":
		if full {
			return img.LastUsed.Format(fullTimeLayout)
		}
		return humanAgo(img.LastUsed, now)
	case "size":
		if full {
			return strconv.FormatInt(totalSize(img), 10)
		}
		return humanSize(totalSize(img))
	case "latest":
		return strconv.FormatBool(img.Latest)
	}
	return ""
}

func sortImages(imgs []store.ImageInfo, by []string, desc bool) {
	cmp := func(a, b store.ImageInfo, f string) int {
		switch f {
		case "id":
			return strings.Compare(a.ID, b.ID)
		case "name":
			return strings.Compare(displayName(a), displayName(b))
		case "importtime":
			return a.ImportTime.Compare(b.ImportTime)
		case "lastused":
			return a.LastUsed.Compare(b.LastUsed)
		case "size":
			return compareInt(totalSize(a), totalSize(b))
		case "latest":
			return compareBool(a.Latest, b.Latest)
		}
		return 0
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		for _, f := range by {
			c := cmp(imgs[i], imgs[j], f)
			if desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
