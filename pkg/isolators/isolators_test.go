package isolators

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
)

func isolators(t *testing.T, js string) types.Isolators {
	t.Helper()
	var l types.Isolators
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return l
}

func TestDefaults(t *testing.T) {
	s, err := ForApp(&types.App{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Capabilities, caps.Default()) || s.AmbientCapabilities != nil {
		t.Fatalf("caps %v ambient %v", s.Capabilities, s.AmbientCapabilities)
	}
	if !reflect.DeepEqual(s.Seccomp, seccomp.Default()) || s.NoNewPrivileges || s.OOMScoreAdj != nil || !s.Limits.Empty() {
		t.Fatalf("settings %+v", s)
	}
}

func TestAll(t *testing.T) {
	l := isolators(t, `[
		{"name":"resource/memory","value":{"limit":"64Mi"}},
		{"name":"resource/cpu","value":{"request":"100m","limit":"500m"}},
		{"name":"os/linux/cpu-shares","value":512},
		{"name":"os/linux/oom-score-adj","value":300},
		{"name":"os/linux/no-new-privileges","value":true},
		{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_ADMIN","CAP_KILL"]}},
		{"name":"os/linux/seccomp-remove-set","value":{"set":["@rkt/default-blacklist","socket"],"errno":"ENOTSUP"}}
	]`)
	s, err := ForApp(&types.App{Isolators: l}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.MemoryBytes != 64<<20 || s.Limits.CPUMilli != 500 || s.Limits.CPUShares != 512 {
		t.Errorf("limits %+v", s.Limits)
	}
	if s.OOMScoreAdj == nil || *s.OOMScoreAdj != 300 || !s.NoNewPrivileges {
		t.Errorf("oom/nnp %+v", s)
	}
	want := []string{"CAP_KILL", "CAP_NET_ADMIN"}
	if !reflect.DeepEqual(s.Capabilities, want) || !reflect.DeepEqual(s.AmbientCapabilities, want) {
		t.Errorf("caps %v ambient %v", s.Capabilities, s.AmbientCapabilities)
	}
	if s.Seccomp.Mode != seccomp.Remove || s.Seccomp.Errno != "ENOTSUP" || len(s.Seccomp.Syscalls) != 2 {
		t.Errorf("seccomp %+v", s.Seccomp)
	}
	var c appexec.Config
	s.Apply(&c)
	c.Exec = []string{"/x"}
	if err := c.Validate(); err != nil {
		t.Fatalf("applied config invalid: %v", err)
	}
	// A root app gets no ambient set.
	s, _ = ForApp(&types.App{Isolators: l}, 0)
	if s.AmbientCapabilities != nil {
		t.Errorf("root app ambient %v", s.AmbientCapabilities)
	}
}

func TestRemoveSet(t *testing.T) {
	s, err := ForApp(&types.App{Isolators: isolators(t, `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_NET_RAW","CAP_MKNOD"]}}]`)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Capabilities) != len(caps.Default())-2 {
		t.Fatalf("caps %v", s.Capabilities)
	}
	for _, c := range s.Capabilities {
		if c == "CAP_NET_RAW" || c == "CAP_MKNOD" {
			t.Fatalf("removed %s kept", c)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		js   string
		want error
		msg  string
	}{
		{`[{"name":"os/linux/bogus","value":1}]`, ErrUnknown, "os/linux/bogus"},
		{`[{"name":"resource/network-bandwidth","value":{"default":true,"limit":"1G"}}]`, ErrUnsupported, "resource/network-bandwidth"},
		{`[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_BOGUS"]}}]`, ErrInvalid, "CAP_BOGUS"},
		{`[{"name":"os/linux/seccomp-remove-set","value":{"set":["nosuchcall"]}}]`, ErrInvalid, "nosuchcall"},
		{`[{"name":"os/linux/seccomp-remove-set","value":{"set":["mount"],"errno":"EBOGUS"}}]`, ErrInvalid, "EBOGUS"},
		{`[{"name":"resource/memory","value":{"limit":"10"}}]`, ErrInvalid, "below 1 MiB"},
		{`[{"name":"resource/memory","value":{"request":"10M"}}]`, ErrInvalid, "positive limit"},
		{`[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_KILL"]}},{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}}]`, ErrConflict, "exclude"},
		{`[{"name":"os/linux/seccomp-retain-set","value":{"set":["read"]}},{"name":"os/linux/seccomp-remove-set","value":{"set":["mount"]}}]`, ErrConflict, "exclude"},
		{`[{"name":"os/linux/cpu-shares","value":512},{"name":"os/linux/cpu-shares","value":256}]`, ErrConflict, "more than once"},
	} {
		err := ValidateList(isolators(t, c.js), "app x")
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "app x: ") {
			t.Errorf("%s: got %v, want %v mentioning %q", c.js, err, c.want, c.msg)
		}
	}
	// appc itself refuses some malformed values while decoding.
	var l types.Isolators
	if err := json.Unmarshal([]byte(`[{"name":"os/linux/oom-score-adj","value":5000}]`), &l); err == nil {
		if err := ValidateList(l, "app x"); !errors.Is(err, ErrInvalid) {
			t.Errorf("oom 5000: %v", err)
		}
	}
}

func TestValidatePod(t *testing.T) {
	pm := schema.BlankPodManifest()
	name := types.MustACName("bad")
	pm.Apps = append(pm.Apps, schema.RuntimeApp{Name: *name, App: &types.App{Isolators: isolators(t, `[{"name":"os/linux/nope","value":1}]`)}})
	err := Validate(pm)
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "app bad") {
		t.Fatalf("got %v", err)
	}
}

func TestOverrideAndNew(t *testing.T) {
	base := isolators(t, `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}},{"name":"resource/memory","value":{"limit":"1G"}}]`)
	retain, err := New(types.LinuxCapabilitiesRetainSetName, map[string][]string{"set": {"CAP_CHOWN"}})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := New(types.ResourceMemoryName, map[string]string{"limit": "32Mi"})
	if err != nil {
		t.Fatal(err)
	}
	out := Override(base, types.Isolators{retain, mem})
	s, err := ForApp(&types.App{Isolators: out}, 0)
	if err != nil {
		t.Fatalf("%v: %+v", err, out)
	}
	if len(out) != 2 || s.Limits.MemoryBytes != 32<<20 || !reflect.DeepEqual(s.Capabilities, []string{"CAP_CHOWN"}) {
		t.Fatalf("override: %+v %+v", out, s)
	}
	if _, err := New("os/linux/bogus", 1); !errors.Is(err, ErrUnknown) {
		t.Fatalf("New of an unknown isolator: %v", err)
	}
}

// Removing every default capability leaves none, through the launcher's
// config and its JSON: a nil set there means the default one.
func TestRemoveEverySet(t *testing.T) {
	all, _ := json.Marshal(caps.Default())
	s, err := ForApp(&types.App{Isolators: isolators(t, `[{"name":"os/linux/capabilities-remove-set","value":{"set":`+string(all)+`}}]`)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c appexec.Config
	s.Apply(&c)
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var back appexec.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Capabilities == nil || len(back.Capabilities) != 0 {
		t.Fatalf("capabilities after the launcher config's round trip: %#v (a nil set is the default one)", back.Capabilities)
	}
}

func TestSeccompProfileAnnotation(t *testing.T) {
	name := types.MustACIdentifier(AnnotationSeccompProfile)
	ra := &schema.RuntimeApp{Name: "a", App: &types.App{Exec: types.Exec{"/x"}}}
	s, err := ForRuntimeApp(ra, 0)
	if err != nil || s.SeccompProfile != nil {
		t.Fatalf("without the annotation: %+v %v", s, err)
	}
	ra.Annotations.Set(*name, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_KILL"}]}`)
	if s, err = ForRuntimeApp(ra, 0); err != nil || s.SeccompProfile == nil || s.SeccompProfile.Syscalls[0].Names[0] != "mount" {
		t.Fatalf("with the annotation: %+v %v", s, err)
	}
	c := &appexec.Config{}
	s.Apply(c)
	if c.SeccompProfile != s.SeccompProfile {
		t.Fatal("Apply left the profile out")
	}
	// A pod manifest with a bad profile is refused at prepare time,
	// naming the app.
	ra.Annotations.Set(*name, `{"defaultAction":"SCMP_ACT_SOMETIMES"}`)
	err = Validate(&schema.PodManifest{Apps: schema.AppList{*ra}})
	if !errors.Is(err, seccomp.ErrBadProfile) || !strings.Contains(err.Error(), "app a: annotation "+AnnotationSeccompProfile) {
		t.Fatalf("bad profile: %v", err)
	}
}
