// Command bench measures the runtime against references run on the same
// machine in the same run (GNU tar, chroot, raw systemd-nspawn, curl) and
// prints each figure beside its reference as a ratio. Each area registers
// its figures from its own file with addFigure.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measurement and the reference it is compared with.
type figure struct {
	name string
	// order sorts the printout; figures of one area share a prefix.
	order int
	// run measures; it returns our figure and the reference's, with labels.
	run  func(b *bench) (ours, ref sample, err error)
	goal string
}

// sample is one measured value with a human label.
type sample struct {
	label string
	value time.Duration
}

var figures []figure

func addFigure(f figure) { figures = append(figures, f) }

// bench carries what every figure needs.
type bench struct {
	buildDir string
	work     string
	runs     int
}

func (b *bench) rkt() string            { return filepath.Join(b.buildDir, "bin", "rkt") }
func (b *bench) image(n string) string  { return filepath.Join(b.buildDir, "images", n) }
func (b *bench) tmp(name string) string { return filepath.Join(b.work, name) }

// median runs fn n times and returns the median duration.
func median(n int, fn func() error) (time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], nil
}

func main() {
	only := flag.String("only", "", "run only figures whose name contains this")
	runs := flag.Int("runs", 20, "repetitions for medians")
	flag.Parse()
	b := &bench{buildDir: os.Getenv("RKT_BUILD_DIR"), runs: *runs}
	if b.buildDir == "" {
		b.buildDir, _ = filepath.Abs("build")
	}
	work, err := os.MkdirTemp("", "rkt-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	b.work = work

	sort.SliceStable(figures, func(i, j int) bool { return figures[i].order < figures[j].order })
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tOURS\tREFERENCE\tREF TIME\tRATIO\tGOAL")
	failed := false
	for _, f := range figures {
		if *only != "" && !strings.Contains(f.name, *only) {
			continue
		}
		ours, ref, err := f.run(b)
		if err != nil {
			fmt.Fprintf(tw, "%s\terror: %v\t\t\t\t%s\n", f.name, err, f.goal)
			failed = true
			continue
		}
		ratio := "-"
		if ref.value > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(ours.value)/float64(ref.value))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.name, fmtDur(ours.value), ref.label, fmtDur(ref.value), ratio, f.goal)
		tw.Flush()
	}
	tw.Flush()
	if failed {
		os.Exit(1)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return d.Round(10 * time.Millisecond).String()
}
