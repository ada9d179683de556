package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// outputFormat is the value of --format: a human table or JSON.
type outputFormat string

const (
	formatTable      outputFormat = ""
	formatJSON       outputFormat = "json"
	formatJSONPretty outputFormat = "json-pretty"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "format" }
func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case formatTable, "table", formatJSON, formatJSONPretty:
		if v == "table" {
			v = ""
		}
		*f = outputFormat(v)
		return nil
	}
	return fmt.Errorf("unknown format %q (valid: json, json-pretty)", v)
}

// writeJSON prints v as JSON, indented for json-pretty.
func writeJSON(w io.Writer, f outputFormat, v any) error {
	enc := json.NewEncoder(w)
	if f == formatJSONPretty {
		enc.SetIndent("", "\t")
	}
	return enc.Encode(v)
}

// writeTable prints rows under an upper-case legend, tab-aligned as rkt did.
func writeTable(w io.Writer, legend []string, rows [][]string, noLegend bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	if !noLegend {
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(legend, "\t")))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
