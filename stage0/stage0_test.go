package stage0

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
)

func TestRunArgsByInterfaceVersion(t *testing.T) {
	rc := &pod.RuntimeConfig{Hostname: "h", Mutable: true, Nets: []string{"host"}, IPC: "parent",
		InsecureOptions: pod.InsecureRunOptions{DisableSeccomp: true}}
	v1 := strings.Join(RunArgs(1, "U", false, "/lc", rc), " ")
	if v1 != "--net=host --local-config=/lc U" {
		t.Errorf("v1: %s", v1)
	}
	v5 := strings.Join(RunArgs(5, "U", true, "/lc", rc), " ")
	want := "--debug --net=host --local-config=/lc --hostname=h --dns-conf-mode=resolv=default,hosts=default --disable-seccomp --mutable U"
	if v5 != want {
		t.Errorf("v5:\n got %s\nwant %s", v5, want)
	}
	if v4 := strings.Join(RunArgs(4, "U", false, "/lc", rc), " "); strings.Contains(v4, "--mutable") {
		t.Errorf("v4 got --mutable: %s", v4)
	}
	if v6 := strings.Join(RunArgs(6, "U", true, "/lc", rc), " "); v6 != strings.TrimSuffix(want, " U")+" --ipc=parent U" {
		t.Errorf("v6: %s", v6)
	}
}

func TestDNSConfMode(t *testing.T) {
	for _, c := range []struct {
		dns  pod.DNSConfig
		want string
	}{
		{pod.DNSConfig{}, "resolv=default,hosts=default"},
		{pod.DNSConfig{Servers: []string{"host"}}, "resolv=host,hosts=default"},
		{pod.DNSConfig{Servers: []string{"8.8.8.8"}, HostsEntries: map[string][]string{"1.2.3.4": {"a"}}}, "resolv=stage0,hosts=stage0"},
		{pod.DNSConfig{Servers: []string{"none"}, HostsEntries: map[string][]string{"host": nil}}, "resolv=none,hosts=host"},
	} {
		if got := DNSConfMode(c.dns); got != c.want {
			t.Errorf("%+v: %s, want %s", c.dns, got, c.want)
		}
	}
}

// testImage writes a minimal rootfs with passwd/group and an app.
func testImage(t *testing.T) Image {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"etc/passwd": "root:x:0:0::/root:/bin/sh\nuser1:x:1000:1000::/home:/bin/sh\n",
		"etc/group":  "root:x:0:\ngroup1:x:1000:\n",
		"bin/app":    "#!/bin/sh\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	name := types.ACIdentifier("example.com/my-app")
	m := schema.BlankImageManifest()
	m.Name = name
	m.App = &types.App{Exec: types.Exec{"/bin/app", "--image-arg"}, User: "0", Group: "0",
		Environment: types.Environment{{Name: "A", Value: "image"}, {Name: "B", Value: "image"}},
		MountPoints: []types.MountPoint{{Name: "data", Path: "/data"}}}
	return Image{ID: "sha512-" + strings.Repeat("ab", 64), Manifest: m, TreeID: "deps-x", Rootfs: root}
}

func TestBuildManifestAppliesOverrides(t *testing.T) {
	img := testImage(t)
	cfg := PrepareConfig{
		Apps: []App{{Exec: "/bin/app", Args: []string{"x"}, HasArgs: true, User: "user1", Group: "group1",
			Environment: types.Environment{{Name: "C", Value: "app"}}}},
		Images:     []Image{img},
		InheritEnv: []string{"A=host", "H=host"},
		SetEnv:     types.Environment{{Name: "B", Value: "pod"}},
	}
	pm, err := buildManifest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ra := pm.Apps[0]
	if ra.Name != "my-app" || strings.Join(ra.App.Exec, " ") != "/bin/app x" || ra.App.User != "user1" {
		t.Fatalf("app: %+v %+v", ra, ra.App)
	}
	for k, want := range map[string]string{"A": "image", "B": "pod", "C": "app", "H": "host"} {
		if v, _ := ra.App.Environment.Get(k); v != want {
			t.Errorf("env %s=%q, want %q", k, v, want)
		}
	}
	// The image's mount point that nothing fills gets an empty volume.
	if len(pm.Volumes) != 1 || pm.Volumes[0].Kind != "empty" || len(ra.Mounts) != 1 || ra.Mounts[0].Path != "/data" {
		t.Fatalf("implicit volume: %+v %+v", pm.Volumes, ra.Mounts)
	}
}

func TestBuildManifestRefusesBadInput(t *testing.T) {
	img := testImage(t)
	vol, _ := types.VolumeFromString("v,kind=empty")
	for name, cfg := range map[string]PrepareConfig{
		"unknown user":    {Apps: []App{{User: "nobody-here"}}, Images: []Image{img}},
		"unknown group":   {Apps: []App{{Group: "nogroup-here"}}, Images: []Image{img}},
		"missing exec":    {Apps: []App{{Exec: "/bin/missing"}}, Images: []Image{img}},
		"duplicate names": {Apps: []App{{}, {}}, Images: []Image{img, img}},
		"unmounted vol":   {Apps: []App{{}}, Images: []Image{img}, Volumes: []types.Volume{*vol}},
		"mount no vol":    {Apps: []App{{Mounts: []schema.Mount{{Volume: "nope", Path: "/x"}}}}, Images: []Image{img}},
	} {
		if _, err := buildManifest(cfg); !errors.Is(err, ErrBadPod) {
			t.Errorf("%s: err = %v, want ErrBadPod", name, err)
		}
	}
}

func TestEntrypointAndVersion(t *testing.T) {
	m := schema.BlankImageManifest()
	m.Name = "example.com/s1"
	if _, err := Entrypoint(m, "run"); !errors.Is(err, ErrNoEntrypoint) {
		t.Fatalf("no annotation: %v", err)
	}
	if v, err := InterfaceVersion(m); err != nil || v != 1 {
		t.Fatalf("default version: %d %v", v, err)
	}
	m.Annotations.Set(AnnotationPrefix+"run", "/run")
	m.Annotations.Set(AnnotationInterfaceVersion, "5")
	if e, err := Entrypoint(m, "run"); err != nil || e != "/run" {
		t.Fatalf("run: %q %v", e, err)
	}
	if v, _ := InterfaceVersion(m); v != 5 {
		t.Fatalf("version %d", v)
	}
	m.Annotations.Set(AnnotationInterfaceVersion, "five")
	if _, err := InterfaceVersion(m); err == nil {
		t.Fatal("bad version accepted")
	}
}
