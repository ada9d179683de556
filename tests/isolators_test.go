package tests

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// isoFlavor is a stage1 the isolator tests run under.
type isoFlavor struct {
	name  string
	image string
	// extra pod flags for this flavor.
	podFlags []string
}

// isoFlavors lists the fly stage1 and, once `make` builds it, the default
// (nspawn) stage1.
func isoFlavors(t *testing.T) []isoFlavor {
	t.Helper()
	fl := []isoFlavor{{name: "fly", image: testImage("stage1-fly.aci")}}
	if _, err := os.Stat(testImage("stage1.aci")); err == nil {
		fl = append(fl, isoFlavor{name: "nspawn", image: testImage("stage1.aci"), podFlags: []string{"--net=host"}})
	} else {
		t.Logf("stage1.aci not built: only the fly stage1 is tested")
	}
	return fl
}

// runIso runs one pod under flavor f: pod flags, then the image and its
// app flags and arguments.
// nspawnFlavor is the default stage1's flavor, the test skipped where
// `make` has not built it.
func nspawnFlavor(t *testing.T) isoFlavor {
	t.Helper()
	for _, f := range isoFlavors(t) {
		if f.name == "nspawn" {
			return f
		}
	}
	t.Skip("needs the nspawn stage1 (build/images/stage1.aci)")
	return isoFlavor{}
}

func (e *env) runIso(f isoFlavor, args ...string) result {
	e.t.Helper()
	full := append([]string{"run", "--stage1-path=" + f.image}, f.podFlags...)
	return e.Run(append(full, args...)...)
}

// mustIso is runIso that fails the test unless the pod exits 0, and
// returns the app's key=value output.
func (e *env) mustIso(f isoFlavor, args ...string) map[string]string {
	e.t.Helper()
	r := e.runIso(f, args...)
	if r.Code != 0 {
		e.t.Fatalf("%s: rkt run %s: %s", f.name, strings.Join(args, " "), r)
	}
	return parseInspect(r.Stdout)
}

func eachFlavor(t *testing.T, fn func(t *testing.T, e *env, f isoFlavor)) {
	for _, f := range isoFlavors(t) {
		t.Run(f.name, func(t *testing.T) {
			e := newEnv(t)
			e.Fetch("inspect.aci")
			fn(t, e, f)
		})
	}
}

// The app's capability sets are what the flags say, read from inside.
func TestIsolatorsCapabilities(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		m := e.mustIso(f, inspectName, "--caps-retain=CAP_NET_BIND_SERVICE,CAP_KILL", "--", "-print-caps")
		if m["cap.bnd.names"] != "CAP_KILL,CAP_NET_BIND_SERVICE" || m["cap.eff.names"] != "CAP_KILL,CAP_NET_BIND_SERVICE" {
			t.Errorf("--caps-retain: bounding %q effective %q", m["cap.bnd.names"], m["cap.eff.names"])
		}
		m = e.mustIso(f, inspectName, "--caps-remove=CAP_NET_RAW,CAP_MKNOD", "--", "-print-caps")
		want := "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_SYS_CHROOT,CAP_AUDIT_WRITE,CAP_SETFCAP"
		if m["cap.bnd.names"] != want {
			t.Errorf("--caps-remove: bounding %q, want the default set without NET_RAW and MKNOD %q", m["cap.bnd.names"], want)
		}
		// A non-root app with an explicit retain set keeps it (ambient).
		m = e.mustIso(f, inspectName, "--user=1000", "--group=1000", "--caps-retain=CAP_NET_BIND_SERVICE", "--", "-print-caps")
		if m["cap.eff.names"] != "CAP_NET_BIND_SERVICE" || m["cap.amb"] != "0000000000000400" {
			t.Errorf("non-root retain set: effective %q ambient %q", m["cap.eff.names"], m["cap.amb"])
		}
		// From the image's own isolators.
		e.Fetch("inspect-isolators.aci")
		r := e.runIso(f, "rktng.io/test/inspect-isolators")
		m = parseInspect(r.Stdout)
		if r.Code != 0 || m["cap.bnd.names"] != "CAP_CHOWN,CAP_NET_BIND_SERVICE" || m["no_new_privs"] != "1" {
			t.Errorf("image isolators: %s", r)
		}
	})
}

// The default stage1 restricts an app without isolators to the default
// set and filter; --insecure-options lifts them.
func TestIsolatorsDefaultsNspawn(t *testing.T) {
	f := nspawnFlavor(t)
	e := newEnv(t)
	e.Fetch("inspect.aci")
	m := e.mustIso(f, inspectName, "--", "-print-caps", "-print-seccomp", "-check-syscall=unshare", "-check-syscall=swapoff")
	if strings.Contains(m["cap.bnd.names"], "CAP_SYS_ADMIN") || !strings.Contains(m["cap.bnd.names"], "CAP_NET_BIND_SERVICE") {
		t.Errorf("default bounding set %q", m["cap.bnd.names"])
	}
	if m["seccomp"] != "2" || m["syscall:swapoff"] != "EPERM" || m["syscall:unshare"] != "EPERM" {
		t.Errorf("default filter: seccomp=%s swapoff=%s unshare=%s", m["seccomp"], m["syscall:swapoff"], m["syscall:unshare"])
	}
	// nspawn installs filters of its own (it refuses swapoff, for
	// one); ours is the one more, and the one refusing unshare.
	r := e.Run(append(append([]string{"--insecure-options=capabilities,seccomp", "run", "--stage1-path=" + f.image}, f.podFlags...),
		inspectName, "--", "-print-caps", "-print-seccomp", "-check-syscall=unshare")...)
	mi := parseInspect(r.Stdout)
	if r.Code != 0 || !strings.Contains(mi["cap.bnd.names"], "CAP_SYS_ADMIN") {
		t.Errorf("--insecure-options=capabilities: %s", r)
	}
	if mi["syscall:unshare"] == "EPERM" || atoi(mi["seccomp.filters"])+1 != atoi(m["seccomp.filters"]) {
		t.Errorf("--insecure-options=seccomp: unshare %q, %s filters (with ours: %s)", mi["syscall:unshare"], mi["seccomp.filters"], m["seccomp.filters"])
	}
}

func TestIsolatorsNoNewPrivilegesAndSeccomp(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		m := e.mustIso(f, inspectName, "--no-new-privileges", "--seccomp=mode=remove,errno=ENOTSUP,sethostname,mknod,mknodat",
			"--", "-print-nnp", "-print-seccomp", "-check-syscall=sethostname", "-check-syscall=mknod", "-check-syscall=chroot")
		if m["no_new_privs"] != "1" || m["seccomp"] != "2" {
			t.Errorf("nnp %q seccomp %q", m["no_new_privs"], m["seccomp"])
		}
		if m["syscall:sethostname"] != "EOPNOTSUPP" && m["syscall:sethostname"] != "ENOTSUP" {
			t.Errorf("sethostname under a remove set: %q", m["syscall:sethostname"])
		}
		if m["syscall:mknod"] != "EOPNOTSUPP" && m["syscall:mknod"] != "ENOTSUP" {
			t.Errorf("mknod under a remove set: %q", m["syscall:mknod"])
		}
		if m["syscall:chroot"] == "ENOTSUP" || m["syscall:chroot"] == "EOPNOTSUPP" {
			t.Errorf("chroot was filtered too: %q", m["syscall:chroot"])
		}
		// A retain set: everything but the whitelist is refused.
		m = e.mustIso(f, inspectName, "--seccomp=mode=retain,errno=ENOSYS,@rkt/default-whitelist",
			"--", "-check-syscall=mount", "-check-syscall=chroot")
		if m["syscall:mount"] != "ENOSYS" || m["syscall:chroot"] == "ENOSYS" {
			t.Errorf("retain set: mount %q chroot %q", m["syscall:mount"], m["syscall:chroot"])
		}
		// Without errno, a blocked call kills the app with SIGSYS.
		r := e.runIso(f, inspectName, "--seccomp=mode=remove,sethostname", "--", "-check-syscall=sethostname")
		if r.Code != 128+31 {
			t.Errorf("blocked syscall without errno: want exit 159 (SIGSYS): %s", r)
		}
	})
}

// A seccomp profile in the OCI format (--seccomp-profile) replaces the
// default filter: its errnos, its conditions on arguments, and Docker's
// excludes by capability, evaluated against the app's own set.
func TestIsolatorsSeccompProfile(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		profile, uuidFile := filepath.Join(e.root, "profile.json"), filepath.Join(e.root, "uuid")
		if err := os.WriteFile(profile, []byte(`{
			"defaultAction": "SCMP_ACT_ALLOW",
			"syscalls": [
				{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
				{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
				 "args": [{"index": 0, "value": 67108864, "valueTwo": 67108864, "op": "SCMP_CMP_MASKED_EQ"}]},
				{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28,
				 "excludes": {"caps": ["CAP_MKNOD"]}}
			]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		checks := []string{"--", "-print-seccomp", "-check-syscall=sethostname", "-check-syscall=unshare",
			"-check-syscall=mknod", "-check-syscall=chroot"}
		m := e.mustIso(f, append([]string{"--uuid-file-save=" + uuidFile, inspectName, "--seccomp-profile=" + profile}, checks...)...)
		if m["seccomp"] != "2" || m["syscall:sethostname"] != "EROFS" || m["syscall:unshare"] != "EACCES" {
			t.Errorf("profile: seccomp %q sethostname %q unshare(CLONE_NEWUTS) %q", m["seccomp"], m["syscall:sethostname"], m["syscall:unshare"])
		}
		if m["syscall:mknod"] == "ENOSPC" || m["syscall:chroot"] == "EROFS" || m["syscall:chroot"] == "EACCES" {
			t.Errorf("profile with CAP_MKNOD: mknod %q chroot %q", m["syscall:mknod"], m["syscall:chroot"])
		}
		m = e.mustIso(f, append([]string{inspectName, "--seccomp-profile=" + profile, "--caps-remove=CAP_MKNOD"}, checks...)...)
		if m["syscall:mknod"] != "ENOSPC" {
			t.Errorf("profile without CAP_MKNOD: mknod %q, want ENOSPC (excludes caps)", m["syscall:mknod"])
		}
		// The profile is the app's, in the pod manifest, for every stage1.
		uuid, err := os.ReadFile(uuidFile)
		if err != nil {
			t.Fatal(err)
		}
		if r := e.MustRun("cat-manifest", string(uuid)); !strings.Contains(r, `"rktng.io/rkt/stage2/seccomp-profile"`) {
			t.Errorf("pod manifest without the profile: %s", r)
		}
	})
}

// cgroupGone reports whether no cgroup of pod uuid is left on the host.
func cgroupGone(t *testing.T, uuid string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, "/rkt-"+uuid) {
			found = true
			return filepath.SkipDir
		}
		if strings.Count(strings.TrimPrefix(p, "/sys/fs/cgroup"), "/") > 4 {
			return filepath.SkipDir
		}
		return nil
	})
	return !found
}

func TestIsolatorsResources(t *testing.T) {
	eachFlavor(t, func(t *testing.T, e *env, f isoFlavor) {
		uuidFile := filepath.Join(e.root, "uuid")
		r := e.Run(append(append([]string{"run", "--stage1-path=" + f.image, "--uuid-file-save=" + uuidFile}, f.podFlags...),
			inspectName, "--memory=64M", "--cpu=250m", "--cpu-shares=256", "--oom-score-adj=500",
			"--", "-print-cgroup-memory", "-print-cgroup-cpu", "-read-file=/proc/self/oom_score_adj")...)
		m := parseInspect(r.Stdout)
		if r.Code != 0 {
			t.Fatal(r)
		}
		if m["memory.limit"] != "64000000" {
			t.Errorf("memory.limit %q, want 64000000 (%s)", m["memory.limit"], m["memory.cgroup"])
		}
		if m["cpu.quota_us"] != "25000" || m["cpu.period_us"] != "100000" {
			t.Errorf("cpu quota %q/%q, want 25000/100000", m["cpu.quota_us"], m["cpu.period_us"])
		}
		if m["cpu.shares"] != "256" && m["cpu.weight"] == "" {
			t.Errorf("cpu.shares %q", m["cpu.shares"])
		}
		if strings.TrimSpace(m["file:/proc/self/oom_score_adj"]) != "500" {
			t.Errorf("oom_score_adj %q", m["file:/proc/self/oom_score_adj"])
		}
		// Beyond the limit, the kernel's OOM killer ends the app.
		r = e.runIso(f, inspectName, "--memory=32M", "--", "-alloc-mb=200")
		if r.Code != 137 || strings.Contains(r.Stdout, "alloc.mb=200") {
			t.Errorf("200 MiB under a 32M limit: want exit 137 (SIGKILL): %s", r)
		}
		// Within it, the app runs.
		if m := e.mustIso(f, inspectName, "--memory=64M", "--", "-alloc-mb=8"); m["alloc.mb"] != "8" {
			t.Errorf("8 MiB under 64M: %v", m)
		}
		uuid, _ := os.ReadFile(uuidFile)
		e.MustRun("gc", "--grace-period=0s")
		if !cgroupGone(t, strings.TrimSpace(string(uuid))) {
			t.Errorf("cgroup of pod %s left after gc", uuid)
		}
	})
}

// badIsolatorImage writes an ACI whose app has the given isolators; it
// depends on the inspect image for its files.
func badIsolatorImage(t *testing.T, dir, name, isolators string) string {
	t.Helper()
	manifest := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"rktng.io/test/` + name + `",
"labels":[{"name":"version","value":"1.0.0"},{"name":"os","value":"linux"}],
"dependencies":[{"imageName":"rktng.io/test/inspect","labels":[{"name":"version","value":"1.0.0"}]}],
"app":{"exec":["/inspect"],"user":"0","group":"0",
"isolators":` + isolators + `}}`
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(1500000000, 0)
	_ = tw.WriteHeader(&tar.Header{Name: "manifest", Mode: 0o644, Size: int64(len(manifest)), ModTime: now})
	_, _ = tw.Write([]byte(manifest))
	_ = tw.WriteHeader(&tar.Header{Name: "rootfs", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".aci")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad isolators, from a flag or an image, stop rkt before anything runs:
// one line, exit 254, no pod left behind.
func TestIsolatorsRefused(t *testing.T) {
	e := newEnv(t)
	e.Fetch("inspect.aci")
	fly := isoFlavors(t)[0]
	oneLine := func(r result, want string) {
		t.Helper()
		if r.Code != 254 || !strings.Contains(r.Stderr, want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("want exit 254 and one line mentioning %q: %s", want, r)
		}
	}
	oneLine(e.runIso(fly, inspectName, "--caps-retain=CAP_BOGUS"), "CAP_BOGUS")
	oneLine(e.runIso(fly, inspectName, "--seccomp=mode=remove,nosuchcall"), "nosuchcall")
	oneLine(e.runIso(fly, inspectName, "--memory=a lot"), "--memory")
	oneLine(e.runIso(fly, inspectName, "--cpu-shares=0"), "cpu-shares")

	// An isolator appc itself does not know never enters the store.
	unknown := badIsolatorImage(t, e.root, "unknown-isolator", `[{"name":"os/linux/made-up","value":{"x":1}}]`)
	oneLine(e.Run("--insecure-options=image", "fetch", unknown), "isolator")
	// One appc accepts but this runtime cannot honour is refused at
	// prepare time, naming it.
	for name, iso := range map[string]string{
		"bad-capability": `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_BOGUS"]}}]`,
		"unenforced":     `[{"name":"resource/network-bandwidth","value":{"default":true,"limit":"1G"}}]`,
	} {
		e.MustRun("--insecure-options=image", "fetch", badIsolatorImage(t, e.root, name, iso))
		want := "CAP_BOGUS"
		if name == "unenforced" {
			want = "resource/network-bandwidth"
		}
		oneLine(e.runIso(fly, "rktng.io/test/"+name), want)
		oneLine(e.Run("prepare", "--stage1-path="+fly.image, "rktng.io/test/"+name), want)
	}

	// A negative oom_score_adj needs CAP_SYS_RESOURCE, which root lacks
	// on this machine: refused with a line that says so.
	r := e.runIso(fly, inspectName, "--oom-score-adj=-500", "--", "-print-user")
	if r.Code == 0 {
		t.Logf("negative oom_score_adj accepted: this host grants CAP_SYS_RESOURCE")
	} else if !strings.Contains(r.Stderr, "CAP_SYS_RESOURCE") {
		t.Errorf("negative oom_score_adj: %s", r)
	}

	if out := e.MustRun("list", "--no-legend"); strings.Contains(out, "prepar") || strings.Contains(out, "embryo") {
		t.Errorf("pods left by refused runs:\n%s", out)
	}
	for _, st := range []string{"embryo", "prepare"} {
		if ents, _ := os.ReadDir(filepath.Join(e.Dir, "pods", st)); len(ents) != 0 {
			t.Errorf("%d pods left in %s", len(ents), st)
		}
	}
}
