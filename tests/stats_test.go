package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// rkt stats: what the apps of running pods use, from /proc.

type statsLine struct {
	Pod         string  `json:"pod"`
	App         string  `json:"app"`
	CPUPercent  float64 `json:"cpu_percent"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	MemoryBytes uint64  `json:"memory_bytes"`
	Processes   int     `json:"processes"`
}

func (e *env) stats(args ...string) map[string]statsLine {
	e.t.Helper()
	out := e.MustRun(append([]string{"stats", "--format=json"}, args...)...)
	var lines []statsLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		e.t.Fatalf("rkt stats --format=json: %v: %q", err, out)
	}
	m := map[string]statsLine{}
	for _, l := range lines {
		m[l.App] = l
	}
	return m
}

func TestStats(t *testing.T) {
	e := stage1Env(t)
	e.Fetch("busybox.aci")
	_, uuid := e.startNspawn(inspectName, "--name=mem", "--", "-alloc-mb=40", "-sleep=60s",
		"---", busyboxName, "--name=busy", "--exec=/bin/sh", "--", "-c", "while :; do :; done")
	var s map[string]statsLine
	// The allocation is done once the app has printed; meanwhile retry.
	waitFor(t, "the mem app's 40 MiB", func() bool {
		s = e.stats("--interval=1s", uuid)
		return s["mem"].MemoryBytes >= 40<<20
	})
	if b := s["busy"]; b.Pod != uuid || b.CPUPercent < 30 || b.Processes < 1 || b.CPUSeconds <= 0 {
		t.Errorf("busy app: %+v, want most of a CPU", b)
	}
	if m := s["mem"]; m.CPUPercent > 30 || m.Processes != 1 {
		t.Errorf("mem app: %+v, want it idle", m)
	}
	table := e.MustRun("stats")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	found := false
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		found = found || len(f) == 6 && f[0] == uuid[:8] && f[1] == "busy"
	}
	if h := strings.Fields(lines[0]); len(h) < 3 || h[0] != "UUID" || h[1] != "APP" || h[2] != "CPU" || !found {
		t.Errorf("rkt stats table:\n%s", table)
	}

	// The fly stage1's one app: the pod's own process.
	_, fly := e.startFly(inspectName, "--", "-alloc-mb=20", "-sleep=60s")
	waitFor(t, "the fly app's 20 MiB", func() bool {
		return e.stats(fly)["inspect"].MemoryBytes >= 20<<20
	})

	e.MustRun("stop", "--force", uuid)
	e.MustRun("status", "--wait=30s", uuid)
	oneLine(t, e.Run("stats", uuid), "not running")
}
