package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrintsMergedEntries checks `rkt config` against rkt's documented
// example: a user entry overrides one domain of a system entry, each domain
// gets its own entry, and --dir is what paths shows.
func TestConfigPrintsMergedEntries(t *testing.T) {
	e := newEnv(t)
	writeConfig(t, e.SystemConfig, "auth.d/basic.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["foo.com", "bar.com", "baz.com"], "type": "basic",
		"credentials": {"user": "sysUser", "password": "sysPassword"}}`)
	writeConfig(t, e.UserConfig, "auth.d/basic.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["foo.com"], "type": "basic", "credentials": {"user": "user", "password": "password"}}`)
	writeConfig(t, e.LocalConfig, "stage1.d/s1.json", `{"rktKind": "stage1", "rktVersion": "v1",
		"name": "example.com/stage1", "version": "1.2.3"}`)
	out := e.MustRun("config")
	var got struct {
		Stage0 []map[string]any `json:"stage0"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config output is not JSON: %v\n%s", err, out)
	}
	users := map[string]string{}
	var paths, stage1 map[string]any
	for _, entry := range got.Stage0 {
		switch entry["rktKind"] {
		case "auth":
			domains := entry["domains"].([]any)
			if len(domains) != 1 {
				t.Errorf("auth entry with %d domains, want one each: %v", len(domains), entry)
			}
			users[domains[0].(string)] = entry["credentials"].(map[string]any)["user"].(string)
		case "paths":
			paths = entry
		case "stage1":
			stage1 = entry
		}
	}
	if want := map[string]string{"foo.com": "user", "bar.com": "sysUser", "baz.com": "sysUser"}; len(users) != 3 ||
		users["foo.com"] != want["foo.com"] || users["bar.com"] != want["bar.com"] || users["baz.com"] != want["baz.com"] {
		t.Errorf("auth users = %v, want %v\n%s", users, want, out)
	}
	if paths == nil || paths["data"] != e.Dir {
		t.Errorf("paths entry = %v, want data %s", paths, e.Dir)
	}
	if stage1 == nil || stage1["name"] != "example.com/stage1" || stage1["version"] != "1.2.3" || stage1["location"] == "" {
		t.Errorf("stage1 entry = %v", stage1)
	}
}

func TestConfigMalformedFileIsOneLine(t *testing.T) {
	e := newEnv(t)
	bad := writeConfig(t, e.LocalConfig, "auth.d/broken.json", "{\"rktKind\": \"auth\",\n\"rktVersion\": \"v1\",,}")
	r := e.MustFail("config")
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.Code != 254 || len(lines) != 1 || !strings.Contains(lines[0], bad) || !strings.Contains(lines[0], "line 2") {
		t.Errorf("want exit 254 and one line naming %s at line 2: %s", bad, r)
	}
	if r.Stdout != "" {
		t.Errorf("half-printed output: %q", r.Stdout)
	}
}

// TestConfigPathsDataIsTheDefaultDir: without --dir, paths.d's data is where
// images go; --dir still wins over it.
func TestConfigPathsDataIsTheDefaultDir(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.root, "from-paths-d")
	writeConfig(t, e.LocalConfig, "paths.d/data.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "`+data+`"}`)
	// Without --dir a regression would use /var/lib/rkt: give these runs a
	// private mount namespace with a tmpfs there, so the host's is never
	// touched whatever happens.
	noDir := func(args ...string) result {
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private",
			"sh", "-c", `mount -t tmpfs rkt-test /var/lib && exec "$0" "$@"`, rktBin(),
			"--local-config=" + e.LocalConfig, "--system-config=" + e.SystemConfig,
			"--user-config=" + e.UserConfig}, args...)...)
		return e.RunCmd(cmd)
	}
	if r := noDir("--insecure-options=image", "fetch", testImage("busybox.aci")); r.Code != 0 {
		t.Fatalf("fetch without --dir: %s", r)
	}
	if r := noDir("image", "list", "--no-legend"); !strings.Contains(r.Stdout, "rktng.io/test/busybox") {
		t.Errorf("image list without --dir does not show the image fetched there: %s", r)
	}
	if _, err := os.Stat(filepath.Join(data, "cas")); err != nil {
		t.Errorf("nothing stored under paths.d's data %s: %v", data, err)
	}
	if out := e.MustRun("image", "list", "--no-legend"); strings.Contains(out, "rktng.io/test/busybox") {
		t.Errorf("--dir=%s lists an image stored under paths.d's data:\n%s", e.Dir, out)
	}
	// The test's gc runs with --dir; collect this store's nothing-to-do too.
	_ = noDir("gc", "--grace-period=0s")
}
