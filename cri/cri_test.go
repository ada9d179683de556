package cri

import (
	"sort"
	"strings"
	"testing"

	"github.com/rktng/rkt/pkg/appexec/caps"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestAppName(t *testing.T) {
	for in, want := range map[string]string{"web": "web-0", "Web_Server.1": "web-server-1-0", "-x-": "x-0"} {
		got, err := appName(in, 0)
		if err != nil || got != want {
			t.Errorf("appName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := appName("web", 3); got != "web-3" {
		t.Errorf("attempt 3: %q", got)
	}
	if _, err := appName("___", 0); err == nil {
		t.Error("a name with no letter or digit was accepted")
	}
}

func TestFetchRefAndDockerName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":              "docker://busybox",
		"reg:5000/a/b:1":       "docker://reg:5000/a/b:1",
		"docker://busybox":     "docker://busybox",
		"/images/x.aci":        "/images/x.aci",
		"https://e.com/x.aci":  "https://e.com/x.aci",
		"oci:/layout:tag":      "oci:/layout:tag",
		"sha512-0123456789abc": "sha512-0123456789abc",
	} {
		if got := fetchRef(in); got != want {
			t.Errorf("fetchRef(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"busybox":          "index.docker.io/library/busybox:latest",
		"docker://busybox": "index.docker.io/library/busybox:latest",
		"reg:5000/a:1":     "reg:5000/a:1",
		"/images/x.aci":    "",
		"sha512-0123":      "",
	} {
		if got := dockerName(in); got != want {
			t.Errorf("dockerName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCapSet(t *testing.T) {
	set := func(s []string) string { sort.Strings(s); return strings.Join(s, ",") }
	def := caps.Default()
	if got := set(capSet(nil, nil)); got != set(def) {
		t.Errorf("no change: %s, want the default %s", got, set(def))
	}
	got := capSet([]string{"net_admin"}, []string{"CAP_KILL"})
	if !strings.Contains(set(got), "CAP_NET_ADMIN") || strings.Contains(set(got), "CAP_KILL") {
		t.Errorf("add NET_ADMIN, drop KILL: %s", set(got))
	}
	if got := set(capSet([]string{"CHOWN"}, []string{"ALL"})); got != "CAP_CHOWN" {
		t.Errorf("drop ALL, add CHOWN: %s", got)
	}
}

func TestContainerIDDiffersEarly(t *testing.T) {
	a, b := containerID("11111111-2222-3333-4444-555555555555", "web-0"), containerID("11111111-2222-3333-4444-555555555555", "web-1")
	if len(a) != 64 || a[:13] == b[:13] {
		t.Errorf("container IDs %s and %s", a, b)
	}
}

func TestContainerEvents(t *testing.T) {
	const (
		created = runtimeapi.ContainerState_CONTAINER_CREATED
		running = runtimeapi.ContainerState_CONTAINER_RUNNING
		exited  = runtimeapi.ContainerState_CONTAINER_EXITED
	)
	prev := map[string]containerSnapshot{"a": {"s", created}, "b": {"s", running}, "c": {"s", exited}, "d": {"s", created}}
	cur := map[string]containerSnapshot{"a": {"s", running}, "b": {"s", exited}, "d": {"s", exited}, "e": {"s", running}}
	var got []string
	for _, e := range containerEvents(prev, cur) {
		got = append(got, e.id+":"+strings.TrimSuffix(strings.TrimPrefix(e.kind.String(), "CONTAINER_"), "_EVENT"))
	}
	want := "a:STARTED b:STOPPED c:DELETED d:STARTED d:STOPPED e:CREATED e:STARTED"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	if ev := containerEvents(cur, cur); len(ev) != 0 {
		t.Errorf("events without a change: %v", ev)
	}
}
