package tests

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/aci"
	"github.com/appc/spec/schema"
)

// parseInspect turns the key=value lines the inspect image prints into a
// map, undoing its \n and \\ escapes. Lines without '=' (messages printed
// with -print-msg) are skipped.
func parseInspect(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
				if v[i] == 'n' {
					b.WriteByte('\n')
				} else {
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(v[i])
		}
		m[k] = b.String()
	}
	return m
}

// openACI returns a tar reader over a built test image, gzip or not.
func openACI(t *testing.T, name string) *tar.Reader {
	t.Helper()
	f, err := os.Open(testImage(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	return tar.NewReader(r)
}

func imageManifest(t *testing.T, name string) *schema.ImageManifest {
	t.Helper()
	tr := openACI(t, name)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no manifest: %v", name, err)
		}
		if h.Name == "manifest" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			var im schema.ImageManifest
			if err := json.Unmarshal(b, &im); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return &im
		}
	}
}

// TestTestImagesAreValidACIs checks the layout and manifests of the images
// every other test relies on, so that a broken image shows up here and not
// as a puzzling failure elsewhere.
func TestTestImagesAreValidACIs(t *testing.T) {
	want := map[string]string{
		"busybox.aci":    "rktng.io/test/busybox",
		"inspect.aci":    "rktng.io/test/inspect",
		"inspect.aci.gz": "rktng.io/test/inspect",
		"dep-base.aci":   "rktng.io/test/dep-base",
		"dep-top.aci":    "rktng.io/test/dep-top",
		"whitelist.aci":  "rktng.io/test/whitelist",

		"inspect-mounts.aci":    "rktng.io/test/inspect-mounts",
		"inspect-isolators.aci": "rktng.io/test/inspect-isolators",
		"inspect-user.aci":      "rktng.io/test/inspect-user",
	}
	for file, name := range want {
		if err := aci.ValidateArchive(openACI(t, file)); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		im := imageManifest(t, file)
		if string(im.Name) != name {
			t.Errorf("%s: name %q, want %q", file, im.Name, name)
		}
	}
	if deps := imageManifest(t, "dep-top.aci").Dependencies; len(deps) != 1 || deps[0].ImageName != "rktng.io/test/dep-base" {
		t.Errorf("dep-top dependencies = %+v, want dep-base", deps)
	}
	wl := imageManifest(t, "whitelist.aci")
	if len(wl.PathWhitelist) == 0 || len(wl.Dependencies) != 1 {
		t.Errorf("whitelist image: pathWhitelist %v, dependencies %+v", wl.PathWhitelist, wl.Dependencies)
	}
	if app := imageManifest(t, "inspect.aci").App; app == nil || app.Exec[0] != "/inspect" {
		t.Errorf("inspect app = %+v, want exec /inspect", app)
	}
	// The schema parsed the isolators; check they are all there.
	if app := imageManifest(t, "inspect-isolators.aci").App; app == nil || len(app.Isolators) != 4 {
		t.Errorf("inspect-isolators app = %+v, want 4 isolators", app)
	}
	if app := imageManifest(t, "inspect-mounts.aci").App; app == nil || len(app.MountPoints) != 2 || len(app.EventHandlers) != 2 {
		t.Errorf("inspect-mounts app = %+v, want 2 mount points and 2 event handlers", app)
	}
}

// TestDepImagesRender renders the dependency images through rkt and checks
// what the render tests rely on: the upper layer wins, links survive, and
// pathWhitelist keeps only what it names.
func TestDepImagesRender(t *testing.T) {
	e := newEnv(t)
	for _, img := range []string{"dep-base.aci", "dep-top.aci", "whitelist.aci"} {
		e.Fetch(img)
	}
	top := filepath.Join(e.root, "top")
	e.MustRun("image", "render", "--rootfs-only", "rktng.io/test/dep-top", top)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	if got := read(filepath.Join(top, "etc/override")); got != "top\n" {
		t.Errorf("dep-top /etc/override = %q, want the upper layer's", got)
	}
	if got := read(filepath.Join(top, "etc/base-file")); got != "base only\n" {
		t.Errorf("dep-top /etc/base-file = %q, want dep-base's", got)
	}
	a, errA := os.Stat(filepath.Join(top, "base/a"))
	h, errH := os.Stat(filepath.Join(top, "base/hardlink"))
	if errA != nil || errH != nil || !os.SameFile(a, h) {
		t.Errorf("base/hardlink is not a hard link of base/a: %v %v", errA, errH)
	}
	if l, err := os.Readlink(filepath.Join(top, "base/link")); err != nil || l != "a" {
		t.Errorf("base/link = %q, %v; want a symlink to a", l, err)
	}

	wl := filepath.Join(e.root, "wl")
	e.MustRun("image", "render", "--rootfs-only", "rktng.io/test/whitelist", wl)
	if got := read(filepath.Join(wl, "etc/override")); got != "whitelist\n" {
		t.Errorf("whitelist /etc/override = %q", got)
	}
	for _, p := range []string{"base/a", "bin/busybox", "bin/sh", "whitelist/file"} {
		if _, err := os.Lstat(filepath.Join(wl, p)); err != nil {
			t.Errorf("whitelisted %s missing: %v", p, err)
		}
	}
	for _, p := range []string{"base/b", "base/dir/c", "etc/base-file", "bin/echo"} {
		if _, err := os.Lstat(filepath.Join(wl, p)); err == nil {
			t.Errorf("%s is not in the pathWhitelist but was rendered", p)
		}
	}
}

// TestInspectProgram runs the inspect binary taken out of the image on the
// host, to check the reports the pod tests parse.
func TestInspectProgram(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "inspect")
	tr := openACI(t, "inspect.aci")
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no rootfs/inspect in inspect.aci: %v", err)
		}
		if h.Name == "rootfs/inspect" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	run := func(args ...string) (map[string]string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"FOO=bar", "MULTI=a\nb"}
		cmd.Dir = dir
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return parseInspect(string(out)), string(out), code
	}

	m, out, code := run("-print-user", "-print-cwd", "-print-env=FOO", "-print-env=MULTI", "-print-env=UNSET",
		"-print-caps", "-print-nnp", "-print-seccomp", "-check-syscall=chroot", "-check-syscall=nosuch")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for k, want := range map[string]string{
		"uid": "0", "euid": "0", "cwd": dir, "env:FOO": "bar", "env:MULTI": "a\nb",
		"no_new_privs": "0", "syscall:chroot": "ok", "syscall:nosuch": "unknown",
	} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q\n%s", k, m[k], want, out)
		}
	}
	if _, ok := m["env:UNSET"]; ok {
		t.Errorf("an unset variable was printed:\n%s", out)
	}
	if !strings.Contains(m["cap.eff.names"], "CAP_SYS_ADMIN") {
		t.Errorf("root on the host should have CAP_SYS_ADMIN:\n%s", out)
	}

	target := filepath.Join(dir, "written")
	m, out, code = run("-write-file="+target, "-content=hello", "-read-file="+target, "-read-file=/nonexistent")
	if code != 1 || m["write:"+target] != "ok" || m["file:"+target] != "hello" || m["file:/nonexistent.error"] == "" {
		t.Errorf("write/read: exit %d (want 1 for the missing file)\n%s", code, out)
	}

	if _, _, code = run("-exit=3", "-print-msg=hi"); code != 3 {
		t.Errorf("-exit=3 gave %d", code)
	}
	_, out, _ = run("-json", "-print-env=FOO")
	var j map[string]string
	if err := json.Unmarshal([]byte(out), &j); err != nil || j["env:FOO"] != "bar" {
		t.Errorf("-json: %v: %q", err, out)
	}
	m, out, _ = run("-print-cgroup-memory", "-print-cgroup-cpu", "-alloc-mb=8")
	if m["memory.limit"] == "" || m["cpu.quota_us"] == "" || m["alloc.mb"] != "8" {
		t.Errorf("cgroup limits or allocation missing:\n%s", out)
	}

	echo := exec.Command(bin, "-stdin-echo")
	echo.Stdin = strings.NewReader("typed\nlines\n")
	if b, err := echo.Output(); err != nil || string(b) != "typed\nlines\n" {
		t.Errorf("-stdin-echo: %q, %v", b, err)
	}

	// -serve-http: answers / with the hostname, and /exit ends the program
	// with the -exit code.
	srv := exec.Command(bin, "-serve-http=127.0.0.1:0", "-exit=7")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr := strings.TrimSpace(strings.TrimPrefix(line, "http.listening="))
	if err != nil || addr == strings.TrimSpace(line) {
		t.Fatalf("-serve-http printed %q, %v", line, err)
	}
	host, _ := os.Hostname()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	if got := get("/"); got != host {
		t.Errorf("GET / = %q, want the hostname %q", got, host)
	}
	if got := get("/exit"); got != "bye" {
		t.Errorf("GET /exit = %q", got)
	}
	err = srv.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("after /exit: %v, want exit status 7", err)
	}
}
