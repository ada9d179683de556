package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rktng/rkt/pkg/appstats"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/spf13/cobra"
)

// appStats is one line of `rkt stats`: what one running app uses.
type appStats struct {
	Pod string `json:"pod"`
	App string `json:"app"`
	// CPUPercent is the app's share of one CPU over the sampling
	// interval (200 on two busy CPUs).
	CPUPercent float64 `json:"cpu_percent"`
	// CPUSeconds is all the CPU time its processes have used.
	CPUSeconds  float64 `json:"cpu_seconds"`
	MemoryBytes uint64  `json:"memory_bytes"`
	Processes   int     `json:"processes"`
}

func init() {
	register(func() *cobra.Command {
		var full, noLegend bool
		var format outputFormat
		var interval time.Duration
		cmd := &cobra.Command{
			Use:   "stats [--interval=D] [UUID...]",
			Short: "Show the CPU and memory the apps of running pods use",
			Long: `Show the CPU and memory the apps of running pods use (all running pods
when no UUID is given): CPU as a share of one CPU over --interval, and
the CPU time used so far; memory as the sum of the resident sets of the
app's processes; how many there are. Read from /proc, so an app is
measured the same with or without resource limits, on cgroup v1 or v2.`,
			RunE: func(cmd *cobra.Command, args []string) error {
				if interval <= 0 {
					return fmt.Errorf("--interval=%v: must be positive", interval)
				}
				var pods []*pod.Pod
				if len(args) == 0 {
					all, err := pod.List(globals.Dir, pod.Run)
					if err != nil {
						return err
					}
					for _, p := range all {
						if p.Status() == pod.StatusRunning {
							pods = append(pods, p)
						}
					}
				}
				for _, a := range args {
					p, _, err := openRunningPod(a)
					if err != nil {
						return err
					}
					pods = append(pods, p)
				}
				stats, err := measureApps(pods, interval)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if format != formatTable {
					return writeJSON(w, format, stats)
				}
				var rows [][]string
				for _, s := range stats {
					uuid := s.Pod
					if !full {
						uuid = uuid[:8]
					}
					rows = append(rows, []string{uuid, s.App, fmt.Sprintf("%.1f%%", s.CPUPercent),
						strconv.FormatFloat(s.CPUSeconds, 'f', 2, 64) + "s", humanSize(int64(s.MemoryBytes)), strconv.Itoa(s.Processes)})
				}
				return writeTable(w, []string{"UUID", "APP", "CPU", "CPU TIME", "MEMORY", "PROCESSES"}, rows, noLegend)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&interval, "interval", 500*time.Millisecond, "how long CPU use is sampled")
		f.BoolVar(&full, "full", false, "print full UUIDs")
		f.BoolVar(&noLegend, "no-legend", false, "suppress the legend")
		f.Var(&format, "format", "output format: json or json-pretty (default: table)")
		return cmd
	})
}

// measureApps samples every running app of pods twice, interval apart.
func measureApps(pods []*pod.Pod, interval time.Duration) ([]appStats, error) {
	type key struct {
		pod *pod.Pod
		app string
	}
	var order []key
	first := map[key]appstats.Usage{}
	for _, p := range pods {
		pm, err := p.Manifest()
		if err != nil {
			return nil, err
		}
		for _, ra := range pm.Apps {
			k := key{p, ra.Name.String()}
			u, err := appstats.Of(p, k.app)
			if errors.Is(err, appstats.ErrNotRunning) {
				continue
			}
			if err != nil {
				return nil, err
			}
			order = append(order, k)
			first[k] = u
		}
	}
	start := time.Now()
	time.Sleep(interval)
	elapsed := time.Since(start)
	out := []appStats{}
	for _, k := range order {
		u, err := appstats.Of(k.pod, k.app)
		if err != nil {
			continue // it ended while sampled
		}
		cpu := u.CPU - first[k].CPU
		if cpu < 0 {
			cpu = 0
		}
		out = append(out, appStats{Pod: k.pod.UUID, App: k.app, CPUPercent: 100 * cpu.Seconds() / elapsed.Seconds(),
			CPUSeconds: u.CPU.Seconds(), MemoryBytes: u.RSS, Processes: u.Processes})
	}
	return out, nil
}
