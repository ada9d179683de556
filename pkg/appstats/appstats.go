// Package appstats measures what a running app uses: the CPU time of its
// process tree (the live processes and the children they have reaped)
// and the sum of their resident sets, from /proc. `rkt stats` and
// rkt-cri's container statistics read it.
//
// Not from cgroups: on a cgroup v1 host an app without resource limits
// has no memory or cpu cgroup of its own (it shares its pod's, or the
// host's), so cgroup figures would not be the app's.
package appstats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/pod"
)

// ErrNotRunning: the app has no process.
var ErrNotRunning = errors.New("not running")

// Usage is what an app's processes use.
type Usage struct {
	// CPU is their user and system time, with their reaped children's.
	CPU time.Duration
	// RSS is the sum of their resident sets, in bytes.
	RSS uint64
	// Processes counts them.
	Processes int
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// Of measures app of the running pod p.
func Of(p *pod.Pod, app string) (Usage, error) {
	pids, err := PIDs(p, app)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, pid := range pids {
		if cpu, rss, err := processUsage(pid); err == nil {
			u.CPU += cpu
			u.RSS += rss
			u.Processes++
		}
	}
	if u.Processes == 0 {
		return u, fmt.Errorf("app %s: %w", app, ErrNotRunning)
	}
	return u, nil
}

// PIDs returns the host PIDs of app's processes: the one its launcher
// recorded in the nspawn stage1's rkt/pids (found among the children of
// the pod's PID 1 by its PID in the pod, as `rkt enter` finds it), or, for
// a stage1 that keeps no such record (fly), the pod's own process; and
// their descendants.
func PIDs(p *pod.Pod, app string) ([]int, error) {
	podPID, err := p.Pid()
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, ErrNotRunning)
	}
	main := podPID
	pidsDir := filepath.Join(pod.Stage1UpperDir(p.Dir), "rkt", "pids")
	if _, err := os.Stat(pidsDir); err == nil {
		b, err := os.ReadFile(filepath.Join(pidsDir, app))
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app, ErrNotRunning)
		}
		if main = pod.DescendantByNSPid(podPID, strings.TrimSpace(string(b))); main == 0 {
			return nil, fmt.Errorf("app %s: %w", app, ErrNotRunning)
		}
	}
	pids := []int{main}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, pod.ChildPIDs(pids[i])...)
	}
	return pids, nil
}

// processUsage returns the CPU time (its own and its reaped children's)
// and resident set of one process.
func processUsage(pid int) (time.Duration, uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing parenthesis (field 3, state, is rest[0]).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	rest := strings.Fields(s[i+1:])
	if len(rest) < 15 {
		return 0, 0, errors.New("malformed stat")
	}
	var ticks int64
	for _, f := range rest[11:15] { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	var rss uint64
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				rss = kb * 1024
			}
		}
	}
	return time.Duration(ticks) * clockTick, rss, nil
}
