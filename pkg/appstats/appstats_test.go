package appstats

import (
	"github.com/rktng/rkt/pkg/pod"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestProcessUsageAndChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var kids []int
	for deadline := time.Now().Add(10 * time.Second); len(kids) == 0; time.Sleep(10 * time.Millisecond) {
		kids = pod.ChildPIDs(cmd.Process.Pid)
		if time.Now().After(deadline) {
			t.Fatal("the shell's child never showed")
		}
	}
	_, rss, err := processUsage(os.Getpid())
	if err != nil || rss == 0 {
		t.Fatalf("own usage: rss %d, %v", rss, err)
	}
	// Burn some CPU: it shows in this process's time.
	start := time.Now()
	for time.Since(start) < 50*time.Millisecond {
	}
	cpu, _, err := processUsage(os.Getpid())
	if err != nil || cpu == 0 {
		t.Fatalf("own cpu %v, %v", cpu, err)
	}
	if _, _, err := processUsage(1 << 30); err == nil {
		t.Error("a process that does not exist was measured")
	}
}
