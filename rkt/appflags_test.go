package main

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestParseApps(t *testing.T) {
	pod := pflag.NewFlagSet("run", pflag.ContinueOnError)
	hostname := pod.String("hostname", "", "")
	args := []string{"img1", "--exec=/bin/sh", "--user", "nobody", "--readonly-rootfs",
		"--environment=A=1", "--hostname=h", "--mount", "volume=data,target=/data",
		"--", "-c", "echo --exec", "---", "img2", "--name=two", "--supplementary-gids=1,2"}
	apps, err := parseApps(args, pod, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Fatalf("got %d apps", len(apps))
	}
	a := apps[0]
	if a.Image != "img1" || a.Exec != "/bin/sh" || a.User != "nobody" || a.ReadOnlyRootFS == nil || !*a.ReadOnlyRootFS {
		t.Errorf("app 1: %+v", a)
	}
	if v, _ := a.Environment.Get("A"); v != "1" {
		t.Errorf("environment: %v", a.Environment)
	}
	if !a.HasArgs || len(a.Args) != 2 || a.Args[1] != "echo --exec" {
		t.Errorf("args: %q", a.Args)
	}
	if len(a.Mounts) != 1 || a.Mounts[0].Volume.String() != "data" || a.Mounts[0].Path != "/data" {
		t.Errorf("mounts: %+v", a.Mounts)
	}
	if *hostname != "h" {
		t.Errorf("pod flag after image not set: %q", *hostname)
	}
	b := apps[1]
	if b.Image != "img2" || b.Name != "two" || len(b.SupplementaryGIDs) != 2 || b.HasArgs {
		t.Errorf("app 2: %+v", b)
	}
}

func TestParseAppsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--exec=/bin/true"},
		{"img", "img2"},
		{"img", "--no-such-flag"},
		{"img", "--user"},
		{"img", "--mount=volume=x"},
		{"img", "--readonly-rootfs=maybe"},
		{"--", "x"},
	} {
		pod := pflag.NewFlagSet("run", pflag.ContinueOnError)
		if _, err := parseApps(args, pod, true); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	pod := pflag.NewFlagSet("run", pflag.ContinueOnError)
	if _, err := parseApps([]string{"img", "--", "x"}, pod, false); err == nil {
		t.Error("args accepted where not allowed")
	}
}
