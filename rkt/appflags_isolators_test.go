package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/isolators"
	"github.com/spf13/pflag"
)

func TestIsolatorFlags(t *testing.T) {
	pod := pflag.NewFlagSet("run", pflag.ContinueOnError)
	args := []string{"img", "--memory=64M", "--cpu=500m", "--cpu-shares=512", "--oom-score-adj=100",
		"--caps-remove=CAP_NET_RAW", "--caps-retain=CAP_KILL,CAP_NET_BIND_SERVICE",
		"--seccomp", "mode=remove,errno=ENOTSUP,@rkt/default-blacklist,socket", "--no-new-privileges"}
	apps, err := parseApps(args, pod, true)
	if err != nil {
		t.Fatal(err)
	}
	app := &types.App{Isolators: apps[0].Isolators}
	s, err := isolators.ForApp(app, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.MemoryBytes != 64_000_000 || s.Limits.CPUMilli != 500 || s.Limits.CPUShares != 512 {
		t.Errorf("limits %+v", s.Limits)
	}
	if s.OOMScoreAdj == nil || *s.OOMScoreAdj != 100 || !s.NoNewPrivileges {
		t.Errorf("oom/nnp %+v", s)
	}
	// The later --caps-retain replaced --caps-remove.
	if strings.Join(s.Capabilities, ",") != "CAP_KILL,CAP_NET_BIND_SERVICE" {
		t.Errorf("caps %v", s.Capabilities)
	}
	if s.Seccomp.Mode != "remove" || s.Seccomp.Errno != "ENOTSUP" || len(s.Seccomp.Syscalls) != 2 {
		t.Errorf("seccomp %+v", s.Seccomp)
	}
	if len(app.Isolators) != 7 {
		t.Errorf("%d isolators, want 7", len(app.Isolators))
	}
}

func TestIsolatorFlagErrors(t *testing.T) {
	for _, c := range []struct {
		arg, want string
		is        error
	}{
		{"--memory=lots", "--memory=lots (app img)", isolators.ErrInvalid},
		{"--memory=10", "below 1 MiB", isolators.ErrInvalid},
		{"--cpu-shares=1", "cpu-shares", isolators.ErrInvalid},
		{"--caps-retain=CAP_BOGUS", "CAP_BOGUS", isolators.ErrInvalid},
		{"--seccomp=mode=retain,nosuchcall", "nosuchcall", isolators.ErrInvalid},
		{"--seccomp=mode=keep,read", "mode must be retain or remove", nil},
		{"--seccomp=mode=remove,errno=EBOGUS,mount", "EBOGUS", isolators.ErrInvalid},
		{"--oom-score-adj=2000", "oom-score-adj", isolators.ErrInvalid},
	} {
		_, err := parseApps([]string{"img", c.arg}, pflag.NewFlagSet("run", pflag.ContinueOnError), true)
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: got %v, want an error mentioning %q", c.arg, err, c.want)
		}
	}
}

func TestSeccompProfileFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ERRNO\"}]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_MAYBE"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	apps, err := parseApps([]string{"img", "--seccomp-profile=" + good}, pflag.NewFlagSet("run", pflag.ContinueOnError), true)
	if err != nil {
		t.Fatal(err)
	}
	// The profile travels compacted in the app's annotation, which
	// pkg/isolators turns into the app's settings.
	v, _ := apps[0].Annotations.Get(isolators.AnnotationSeccompProfile)
	if v != `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}` {
		t.Fatalf("annotation %q", v)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"img", "--seccomp-profile=" + bad}, bad + `: invalid seccomp profile: defaultAction: unknown action "SCMP_ACT_MAYBE"`},
		{[]string{"img", "--seccomp-profile=" + filepath.Join(dir, "none.json")}, "none.json: no such file"},
		{[]string{"img", "--seccomp-profile=" + good, "--seccomp=mode=remove,mount"}, "conflicting flags for img: --seccomp and --seccomp-profile"},
	} {
		_, err := parseApps(c.args, pflag.NewFlagSet("run", pflag.ContinueOnError), true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}
