package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write puts content at root/rel, creating directories.
func write(t *testing.T, root, rel, content string) string {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirs(t *testing.T) Dirs {
	root := t.TempDir()
	return Dirs{System: filepath.Join(root, "system"), Local: filepath.Join(root, "local"), User: filepath.Join(root, "user")}
}

func TestMissingDirectoriesGiveEmptyConfig(t *testing.T) {
	c, err := Load(dirs(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Auth) != 0 || len(c.DockerAuth) != 0 || c.Paths != (Paths{}) || c.Stage1 != (Stage1{}) {
		t.Errorf("config from nothing = %+v", c)
	}
	if h := c.AuthHeaders("example.com"); len(h) != 0 {
		t.Errorf("headers without config: %v", h)
	}
	if len(c.Entries()) != 0 {
		t.Errorf("entries without config: %v", c.Entries())
	}
}

// TestAuthOverridePerDomain is the example of rkt's documentation: the local
// directory overrides two of the three domains the system directory set.
func TestAuthOverridePerDomain(t *testing.T) {
	d := dirs(t)
	write(t, d.System, "auth.d/coreos.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["coreos.com", "tectonic.com", "kubernetes.io"],
		"type": "oauth", "credentials": {"token": "common-token"}}`)
	write(t, d.Local, "auth.d/specific-coreos.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["coreos.com"], "type": "basic", "credentials": {"user": "foo", "password": "bar"}}`)
	write(t, d.User, "auth.d/specific-tectonic.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["tectonic.com"], "type": "oauth", "credentials": {"token": "tectonic-token"}}`)
	write(t, d.Local, "auth.d/README", "not json, ignored")
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"kubernetes.io":      "Bearer common-token",
		"coreos.com":         "Basic Zm9vOmJhcg==",
		"COREOS.com:443":     "Basic Zm9vOmJhcg==",
		"tectonic.com":       "Bearer tectonic-token",
		"other.example.com":  "",
		"kubernetes.io.evil": "",
	} {
		if got := c.AuthHeaders(host).Get("Authorization"); got != want {
			t.Errorf("AuthHeaders(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestAuthPortSpecificEntryWins(t *testing.T) {
	d := dirs(t)
	write(t, d.Local, "auth.d/a.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["127.0.0.1"], "type": "oauth", "credentials": {"token": "any-port"}}`)
	write(t, d.Local, "auth.d/b.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["127.0.0.1:8443"], "type": "oauth", "credentials": {"token": "this-port"}}`)
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AuthHeaders("127.0.0.1:8443").Get("Authorization"); got != "Bearer this-port" {
		t.Errorf("host:port entry: %q", got)
	}
	if got := c.AuthHeaders("127.0.0.1:9000").Get("Authorization"); got != "Bearer any-port" {
		t.Errorf("host entry for another port: %q", got)
	}
}

func TestDockerAuth(t *testing.T) {
	d := dirs(t)
	write(t, d.System, "auth.d/docker.json", `{"rktKind": "dockerAuth", "rktVersion": "v1",
		"registries": ["registry-1.docker.io", "gcr.io", "quay.io"], "credentials": {"user": "foo", "password": "bar"}}`)
	write(t, d.Local, "auth.d/quay.json", `{"rktKind": "dockerAuth", "rktVersion": "v1",
		"registries": ["quay.io"], "credentials": {"user": "baz", "password": "quux"}}`)
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	for reg, want := range map[string]string{"quay.io": "baz", "gcr.io": "foo", "index.docker.io": "foo", "docker.io": "foo", "example.com": ""} {
		cr, ok := c.DockerCredentials(reg)
		if cr.User != want || ok != (want != "") {
			t.Errorf("DockerCredentials(%q) = %+v, %v; want user %q", reg, cr, ok, want)
		}
	}
}

// Beyond rkt, a registry's credentials may be a token, as in Docker's
// config.json; rkt config prints them back in the same form.
func TestDockerAuthTokens(t *testing.T) {
	d := dirs(t)
	write(t, d.Local, "auth.d/tokens.json", `{"rktKind": "dockerAuth", "rktVersion": "v1",
		"registries": ["ghcr.io"], "credentials": {"registryToken": "bearer-1"}}`)
	write(t, d.Local, "auth.d/refresh.json", `{"rktKind": "dockerAuth", "rktVersion": "v1",
		"registries": ["myregistry.azurecr.io"], "credentials": {"identityToken": "refresh-1"}}`)
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	if cr, ok := c.DockerCredentials("ghcr.io"); !ok || cr != (RegistryCredentials{RegistryToken: "bearer-1"}) {
		t.Errorf("ghcr.io: %+v %v", cr, ok)
	}
	if cr, ok := c.DockerCredentials("myregistry.azurecr.io"); !ok || cr != (RegistryCredentials{IdentityToken: "refresh-1"}) {
		t.Errorf("azurecr: %+v %v", cr, ok)
	}
	b, _ := json.Marshal(c.Entries())
	if !strings.Contains(string(b), `"credentials":{"registryToken":"bearer-1"}`) || !strings.Contains(string(b), `"credentials":{"identityToken":"refresh-1"}`) {
		t.Errorf("entries: %s", b)
	}
}

func TestPathsAndStage1OverridePerField(t *testing.T) {
	d := dirs(t)
	write(t, d.System, "paths.d/paths.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "/opt/rkt/data", "stage1-images": "/usr/lib/rkt/s1"}`)
	write(t, d.Local, "paths.d/data.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "/home/me/rkt/"}`)
	write(t, d.System, "stage1.d/coreos.json", `{"rktKind": "stage1", "rktVersion": "v1",
		"name": "coreos.com/rkt/stage1-coreos", "version": "0.15.0+git", "location": "/usr/libexec/rkt/stage1-coreos.aci"}`)
	write(t, d.Local, "stage1.d/where.json", `{"rktKind": "stage1", "rktVersion": "v1", "location": "https://example.com/coreos-stage1.aci"}`)
	write(t, d.User, "stage1.d/name.json", `{"rktKind": "stage1", "rktVersion": "v1", "name": "example.com/rkt/stage1", "version": "1.2.3"}`)
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Paths{Data: "/home/me/rkt", Stage1Images: "/usr/lib/rkt/s1"}); c.Paths != want {
		t.Errorf("paths = %+v, want %+v", c.Paths, want)
	}
	if want := (Stage1{Name: "example.com/rkt/stage1", Version: "1.2.3", Location: "https://example.com/coreos-stage1.aci"}); c.Stage1 != want {
		t.Errorf("stage1 = %+v, want %+v", c.Stage1, want)
	}
}

func TestEntriesAreRktConfigOutput(t *testing.T) {
	d := dirs(t)
	write(t, d.System, "auth.d/basic.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["foo.com", "bar.com"], "type": "basic", "credentials": {"user": "sysUser", "password": "sysPassword"}}`)
	write(t, d.User, "auth.d/basic.json", `{"rktKind": "auth", "rktVersion": "v1",
		"domains": ["foo.com"], "type": "oauth", "credentials": {"token": "tok"}}`)
	write(t, d.Local, "paths.d/p.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "/data"}`)
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c.Entries())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"rktVersion":"v1","rktKind":"auth","domains":["bar.com"],"type":"basic","credentials":{"user":"sysUser","password":"sysPassword"}},` +
		`{"rktVersion":"v1","rktKind":"auth","domains":["foo.com"],"type":"oauth","credentials":{"token":"tok"}},` +
		`{"rktVersion":"v1","rktKind":"paths","data":"/data"}]`
	if string(b) != want {
		t.Errorf("entries:\n got %s\nwant %s", b, want)
	}
	// What config prints loads back to the same configuration.
	var entries []json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	for i, e := range entries {
		sub := "auth.d"
		if strings.Contains(string(e), `"paths"`) {
			sub = "paths.d"
		}
		write(t, again, filepath.Join(sub, string(rune('a'+i))+".json"), string(e))
	}
	c2, err := Load(Dirs{Local: again})
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := json.Marshal(c2.Entries()); string(b2) != want {
		t.Errorf("round trip:\n got %s\nwant %s", b2, want)
	}
}

func TestBadFilesNameTheFileAndProblem(t *testing.T) {
	for _, tc := range []struct {
		name, rel, content, want string
	}{
		{"syntax", "auth.d/x.json", "{\n  \"rktKind\": \"auth\",\n  \"rktVersion\" \"v1\"\n}", "line 3, column 16"},
		{"type", "paths.d/x.json", `{"rktKind": "paths", "rktVersion": "v1", "data": 3}`, "data must be string"},
		{"no kind", "auth.d/x.json", `{"rktVersion": "v1"}`, "rktKind and rktVersion must both be set"},
		{"wrong dir", "paths.d/x.json", `{"rktKind": "auth", "rktVersion": "v1"}`, `rktKind "auth" does not belong in paths.d`},
		{"version", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v2"}`, `unsupported rktVersion "v2"`},
		{"no domains", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v1", "type": "oauth", "credentials": {"token": "t"}}`, "domains must list"},
		{"no creds", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v1", "domains": ["a"], "type": "basic"}`, "credentials must be set"},
		{"empty pw", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v1", "domains": ["a"], "type": "basic", "credentials": {"user": "u"}}`, "non-empty user and password"},
		{"bad type", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v1", "domains": ["a"], "type": "digest", "credentials": {}}`, `unknown auth type "digest"`},
		{"url domain", "auth.d/x.json", `{"rktKind": "auth", "rktVersion": "v1", "domains": ["https://a/"], "type": "oauth", "credentials": {"token": "t"}}`, "invalid domain"},
		{"docker creds", "auth.d/x.json", `{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["quay.io"]}`, "non-empty user and password, an identityToken or a registryToken"},
		{"docker half", "auth.d/x.json", `{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["quay.io"], "credentials": {"password": "p"}}`, "non-empty user and password"},
		{"docker two", "auth.d/x.json", `{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["quay.io"], "credentials": {"user": "u", "password": "p", "registryToken": "t"}}`, "more than one of"},
		{"relative", "paths.d/x.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "rel/dir"}`, "must be an absolute path"},
		{"half stage1", "stage1.d/x.json", `{"rktKind": "stage1", "rktVersion": "v1", "name": "a.com/s1"}`, "name and version must be set together"},
		{"location", "stage1.d/x.json", `{"rktKind": "stage1", "rktVersion": "v1", "location": "ftp://x"}`, "neither an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dirs(t)
			file := write(t, d.Local, tc.rel, tc.content)
			_, err := Load(d)
			if err == nil {
				t.Fatal("loaded a bad file")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, file+": ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, file, tc.want)
			}
		})
	}
}

func TestSameKeyTwiceInOneDirectoryIsAnError(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{`{"rktKind": "auth", "rktVersion": "v1", "domains": ["a.com"], "type": "oauth", "credentials": {"token": "1"}}`,
			`{"rktKind": "auth", "rktVersion": "v1", "domains": ["A.com"], "type": "oauth", "credentials": {"token": "2"}}`,
			`domain "a.com" is already configured`},
		{`{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["q.io"], "credentials": {"user": "u", "password": "p"}}`,
			`{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["q.io"], "credentials": {"user": "u", "password": "p"}}`,
			`registry "q.io" is already configured`},
	} {
		d := dirs(t)
		write(t, d.Local, "auth.d/1.json", tc.a)
		second := write(t, d.Local, "auth.d/2.json", tc.b)
		_, err := Load(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), second) {
			t.Errorf("error = %v, want %q about %s", err, tc.want, second)
		}
		// In different directories the later one simply wins.
		d2 := dirs(t)
		write(t, d2.System, "auth.d/1.json", tc.a)
		write(t, d2.Local, "auth.d/2.json", tc.b)
		if _, err := Load(d2); err != nil {
			t.Errorf("override across directories: %v", err)
		}
	}
	d := dirs(t)
	write(t, d.Local, "paths.d/1.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "/a"}`)
	write(t, d.Local, "paths.d/2.json", `{"rktKind": "paths", "rktVersion": "v1", "data": "/b"}`)
	if _, err := Load(d); err == nil || !strings.Contains(err.Error(), "data is already set") {
		t.Errorf("two data paths in one directory: %v", err)
	}
}

func TestUnreadableDirectory(t *testing.T) {
	d := dirs(t)
	// auth.d as a file, not a directory: an I/O error, not ErrInvalid.
	write(t, d.Local, "auth.d", "x")
	_, err := Load(d)
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("auth.d as a file: %v", err)
	}
}

// docker.d's mirrors merge per registry like dockerAuth, a later
// directory's list replacing an earlier one's, and Docker Hub is found
// under any of its names.
func TestDockerMirrors(t *testing.T) {
	d := dirs(t)
	write(t, d.System, "docker.d/hub.json", `{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["docker.io","quay.io"],"mirrors":["m1:5000"]}`)
	write(t, d.Local, "docker.d/hub.json", `{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["docker.io"],"mirrors":["m2","m3"]}`)
	write(t, d.Local, "docker.d/notes.txt", "not configuration")
	c, err := Load(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.DockerMirrorsFor("index.docker.io"), ","); got != "m2,m3" {
		t.Errorf("Docker Hub mirrors %q, want the local m2,m3 (under its alias docker.io)", got)
	}
	if got := strings.Join(c.DockerMirrorsFor("QUAY.IO"), ","); got != "m1:5000" {
		t.Errorf("quay.io mirrors %q", got)
	}
	if got := c.DockerMirrorsFor("other.example"); got != nil {
		t.Errorf("other.example mirrors %q, want none", got)
	}
	var kinds []string
	for _, e := range c.Entries() {
		b, _ := json.Marshal(e)
		var h header
		json.Unmarshal(b, &h)
		kinds = append(kinds, h.Kind)
	}
	if strings.Join(kinds, ",") != "dockerMirrors,dockerMirrors" {
		t.Errorf("entries %v, want one dockerMirrors entry per registry", kinds)
	}

	for body, want := range map[string]string{
		`{"rktKind":"dockerMirrors","rktVersion":"v2","registries":["a"]}`:                "unsupported rktVersion",
		`{"rktKind":"dockerMirrors","rktVersion":"v1"}`:                                   "registries must list",
		`{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["a/b"]}`:              "invalid registry",
		`{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["a"],"mirrors":[""]}`: "invalid mirror",
		`{"rktKind":"auth","rktVersion":"v1"}`:                                            "does not belong in docker.d",
		`{"rktKind":`:                                                                     "hub.json",
	} {
		bad := dirs(t)
		p := write(t, bad.Local, "docker.d/hub.json", body)
		_, err := Load(bad)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want one naming %s and mentioning %q", body, err, p, want)
		}
	}
	twice := dirs(t)
	write(t, twice.Local, "docker.d/a.json", `{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["r"],"mirrors":["x"]}`)
	write(t, twice.Local, "docker.d/b.json", `{"rktKind":"dockerMirrors","rktVersion":"v1","registries":["r"],"mirrors":["y"]}`)
	if _, err := Load(twice); err == nil || !strings.Contains(err.Error(), "already configured") {
		t.Errorf("one registry's mirrors twice in a directory: %v", err)
	}
}
