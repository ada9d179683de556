package main

// Per-app flags. rkt's command line is `rkt run [pod flags] IMAGE [app flags]
// [-- ARGS] [--- IMAGE [app flags] ...]`: the flags after an image apply to
// that image's app only. They live in one table, appFlags, that other files
// extend from init() (the isolator flags, for instance), so every command
// taking apps (run, prepare, app add) understands the same set.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/spf13/pflag"
)

// appConfig is one image argument and everything its per-app flags said.
// The embedded stage0.App is what stage0 acts on; ImageID is filled in
// once the image argument has been resolved.
type appConfig struct {
	// Image is the image argument as typed: a path, URL, name or ID.
	Image string
	// Signature is --signature, a detached signature for Image.
	Signature string
	stage0.App
}

// appFlag is a flag that applies to the app named just before it.
type appFlag struct {
	name  string
	usage string
	// boolean flags take no value ("--readonly-rootfs"), though
	// "--readonly-rootfs=false" is accepted.
	boolean bool
	// apply records the flag's value in the app's config.
	apply func(app *appConfig, value string) error
}

// appFlags is the table of per-app flags; extend it with addAppFlag.
var appFlags []appFlag

// addAppFlag registers a per-app flag; call it from an init function.
func addAppFlag(f appFlag) { appFlags = append(appFlags, f) }

func lookupAppFlag(name string) *appFlag {
	for i := range appFlags {
		if appFlags[i].name == name {
			return &appFlags[i]
		}
	}
	return nil
}

// appFlagsUsage describes the per-app flags for a command's help text.
func appFlagsUsage() string {
	fl := append([]appFlag(nil), appFlags...)
	sort.Slice(fl, func(i, j int) bool { return fl[i].name < fl[j].name })
	var b strings.Builder
	b.WriteString("Per-app flags (after an image, for that image's app):\n")
	for _, f := range fl {
		arg := "=VALUE"
		if f.boolean {
			arg = ""
		}
		fmt.Fprintf(&b, "      --%-28s %s\n", f.name+arg, f.usage)
	}
	return b.String()
}

// parseApps splits the positional arguments of run/prepare into apps.
// Pod-level flags met after an image (rkt allowed them anywhere) are set on
// podFlags. allowArgs says whether "-- ARGS" may follow an image.
func parseApps(args []string, podFlags *pflag.FlagSet, allowArgs bool) ([]*appConfig, error) {
	var apps []*appConfig
	var cur *appConfig
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "---":
			if cur == nil {
				return nil, fmt.Errorf(`"---" must follow an image`)
			}
			cur = nil
		case a == "--":
			if cur == nil {
				return nil, fmt.Errorf(`"--" must follow an image`)
			}
			if !allowArgs {
				return nil, fmt.Errorf("app arguments are not allowed here (after %s)", cur.Image)
			}
			cur.HasArgs = true
			cur.Args = []string{}
			for i++; i < len(args) && args[i] != "---"; i++ {
				cur.Args = append(cur.Args, args[i])
			}
			cur = nil
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name, value, hasValue := strings.Cut(a[2:], "=")
			if f := lookupAppFlag(name); f != nil {
				if cur == nil {
					return nil, fmt.Errorf("--%s must follow an image", name)
				}
				if !hasValue {
					if f.boolean {
						value = "true"
					} else {
						if i+1 >= len(args) {
							return nil, fmt.Errorf("--%s (app %s) needs a value", name, cur.Image)
						}
						i++
						value = args[i]
					}
				}
				if err := f.apply(cur, value); err != nil {
					return nil, fmt.Errorf("--%s=%s (app %s): %w", name, value, cur.Image, err)
				}
				continue
			}
			pf := podFlags.Lookup(name)
			if pf == nil {
				return nil, fmt.Errorf("unknown flag --%s", name)
			}
			if !hasValue {
				if pf.NoOptDefVal != "" {
					value = pf.NoOptDefVal
				} else {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("--%s needs a value", name)
					}
					i++
					value = args[i]
				}
			}
			if err := podFlags.Set(name, value); err != nil {
				return nil, fmt.Errorf("--%s=%s: %w", name, value, err)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return nil, fmt.Errorf("unknown flag %s", a)
		default:
			if cur != nil {
				return nil, fmt.Errorf("%q follows image %s: separate images with \"---\" and put app arguments after \"--\"", a, cur.Image)
			}
			cur = &appConfig{Image: a}
			apps = append(apps, cur)
		}
	}
	for _, a := range apps {
		if err := checkAppFlags(a); err != nil {
			return nil, err
		}
	}
	return apps, nil
}

func parseBoolValue(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("not a boolean")
	}
	return b, nil
}

// parseKeyValue splits NAME=VALUE.
func parseKeyValue(v string) (string, string, error) {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("want NAME=VALUE")
	}
	return k, val, nil
}

// parseEnvFile reads NAME=VALUE lines; blank lines and #-comments are skipped.
func parseEnvFile(path string) (types.Environment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env types.Environment
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, err := parseKeyValue(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n+1, err)
		}
		env.Set(k, v)
	}
	return env, nil
}

// parseMount reads rkt's --mount syntax: volume=NAME,target=PATH.
func parseMount(v string) (schema.Mount, error) {
	var m schema.Mount
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("want volume=NAME,target=PATH")
		}
		switch k {
		case "volume":
			n, err := types.NewACName(val)
			if err != nil {
				return m, err
			}
			m.Volume = *n
		case "target":
			m.Path = val
		default:
			return m, fmt.Errorf("unknown mount parameter %q (want volume=NAME,target=PATH)", k)
		}
	}
	if m.Volume.Empty() || m.Path == "" {
		return m, fmt.Errorf("want volume=NAME,target=PATH")
	}
	return m, nil
}

// parseMntVolume reads rkt's --mnt-volume syntax, a volume of the app's
// own and where it goes: name=NAME,kind=host|empty,target=PATH and the
// --volume parameters (source, readOnly, recursive, mode, uid, gid).
func parseMntVolume(v string) (schema.Mount, error) {
	var m schema.Mount
	params := map[string][]string{}
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(part, "=")
		if !ok || val == "" {
			return m, fmt.Errorf("%q is not KEY=VALUE (want name=NAME,kind=host,source=PATH,target=PATH)", part)
		}
		if _, dup := params[k]; dup || (k == "target" && m.Path != "") {
			return m, fmt.Errorf("%s given twice", k)
		}
		if k == "target" {
			m.Path = val
			continue
		}
		params[k] = []string{val}
	}
	if m.Path == "" {
		return m, errors.New("no target=PATH")
	}
	if _, ok := params["name"]; !ok {
		return m, errors.New("no name=NAME")
	}
	vol, err := types.VolumeFromParams(params)
	if err != nil {
		return m, err
	}
	if vol.Kind == "host" && !filepath.IsAbs(vol.Source) {
		return m, errors.New("source must be an absolute path")
	}
	m.Volume = vol.Name
	m.AppVolume = vol
	return m, nil
}

func init() {
	addAppFlag(appFlag{name: "exec", usage: "override the exec command of the app",
		apply: func(a *appConfig, v string) error {
			if v == "" {
				return fmt.Errorf("empty exec")
			}
			a.Exec = v
			return nil
		}})
	addAppFlag(appFlag{name: "name", usage: "name of the app in the pod",
		apply: func(a *appConfig, v string) error {
			if _, err := types.NewACName(v); err != nil {
				return err
			}
			a.Name = v
			return nil
		}})
	addAppFlag(appFlag{name: "user", usage: "user (name or UID) the app runs as",
		apply: func(a *appConfig, v string) error { a.User = v; return nil }})
	addAppFlag(appFlag{name: "group", usage: "group (name or GID) the app runs as",
		apply: func(a *appConfig, v string) error { a.Group = v; return nil }})
	addAppFlag(appFlag{name: "supplementary-gids", usage: "comma-separated supplementary group IDs of the app",
		apply: func(a *appConfig, v string) error {
			gids := []int{}
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				g, err := strconv.Atoi(s)
				if err != nil || g < 0 {
					return fmt.Errorf("%q is not a group ID", s)
				}
				gids = append(gids, g)
			}
			a.SupplementaryGIDs = gids
			return nil
		}})
	addAppFlag(appFlag{name: "working-dir", usage: "working directory of the app",
		apply: func(a *appConfig, v string) error {
			if !strings.HasPrefix(v, "/") {
				return fmt.Errorf("working directory must be absolute")
			}
			a.WorkingDir = v
			return nil
		}})
	addAppFlag(appFlag{name: "environment", usage: "NAME=VALUE environment variable of the app",
		apply: func(a *appConfig, v string) error {
			k, val, err := parseKeyValue(v)
			if err != nil {
				return err
			}
			a.Environment.Set(k, val)
			return nil
		}})
	addAppFlag(appFlag{name: "readonly-rootfs", boolean: true, usage: "mount the app's root filesystem read-only",
		apply: func(a *appConfig, v string) error {
			b, err := parseBoolValue(v)
			if err != nil {
				return err
			}
			a.ReadOnlyRootFS = &b
			return nil
		}})
	addAppFlag(appFlag{name: "mount", usage: "volume=NAME,target=PATH: mount a pod volume in the app",
		apply: func(a *appConfig, v string) error {
			m, err := parseMount(v)
			if err != nil {
				return err
			}
			a.Mounts = append(a.Mounts, m)
			return nil
		}})
	addAppFlag(appFlag{name: "mnt-volume", usage: "name=NAME,kind=host|empty,source=PATH,target=PATH[,readOnly=true][,recursive=false]: a volume of the app's own, mounted at target",
		apply: func(a *appConfig, v string) error {
			m, err := parseMntVolume(v)
			if err != nil {
				return err
			}
			a.Mounts = append(a.Mounts, m)
			return nil
		}})
	addAppFlag(appFlag{name: "annotation", usage: "NAME=VALUE annotation of the app in the pod manifest",
		apply: func(a *appConfig, v string) error {
			k, val, err := parseKeyValue(v)
			if err != nil {
				return err
			}
			n, err := types.NewACIdentifier(k)
			if err != nil {
				return err
			}
			a.Annotations.Set(*n, val)
			return nil
		}})
	addAppFlag(appFlag{name: "user-annotation", usage: "NAME=VALUE user annotation of the app",
		apply: func(a *appConfig, v string) error {
			k, val, err := parseKeyValue(v)
			if err != nil {
				return err
			}
			if a.UserAnnotations == nil {
				a.UserAnnotations = types.UserAnnotations{}
			}
			a.UserAnnotations[k] = val
			return nil
		}})
	addAppFlag(appFlag{name: "user-label", usage: "NAME=VALUE user label of the app",
		apply: func(a *appConfig, v string) error {
			k, val, err := parseKeyValue(v)
			if err != nil {
				return err
			}
			if a.UserLabels == nil {
				a.UserLabels = types.UserLabels{}
			}
			a.UserLabels[k] = val
			return nil
		}})
	addAppFlag(appFlag{name: "signature", usage: "detached signature file of the image",
		apply: func(a *appConfig, v string) error { a.Signature = v; return nil }})
	addBoolAnnotationFlag("privileged", pod.AnnotationPrivileged, "every capability, no seccomp filter, the host's devices, writable /sys and /proc/sys (the pod runs privileged)")
	addAppFlag(appFlag{name: "pid-namespace", usage: "pod (default) or private: the app's PID namespace, the pod's or one of its own in which it sees only its processes (default stage1)",
		apply: func(a *appConfig, v string) error {
			if v != pod.PIDNamespacePod && v != pod.PIDNamespacePrivate {
				return fmt.Errorf("want %s or %s", pod.PIDNamespacePod, pod.PIDNamespacePrivate)
			}
			n, _ := types.NewACIdentifier(pod.AnnotationPIDNamespace)
			a.Annotations.Set(*n, v)
			return nil
		}})
	addBoolAnnotationFlag("stdin-once", pod.AnnotationStdinOnce, "the app's input (--stdin=stream or tty) ends when the first rkt attach client leaves")
	for _, s := range []struct{ name, usage string }{
		{pod.EndpointStdin, "null (default), stream or tty: the app's input, from `rkt attach` when stream or tty"},
		{pod.EndpointStdout, "log (default), stream or tty: the app's output, logged, and for `rkt attach` when stream or tty"},
		{pod.EndpointStderr, "log (default), stream or tty: the app's error output, as --stdout"},
	} {
		addAppFlag(appFlag{name: s.name, usage: s.usage,
			apply: func(a *appConfig, v string) error {
				m, err := pod.ParseStreamMode(s.name, v)
				if err != nil {
					return err
				}
				n, _ := types.NewACIdentifier(pod.StreamAnnotation(s.name))
				a.Annotations.Set(*n, string(m))
				return nil
			}})
	}
}

// addBoolAnnotationFlag registers a boolean per-app flag that sets the
// app's annotation to "true" or "false", which stage1 reads.
func addBoolAnnotationFlag(name, annotation, usage string) {
	addAppFlag(appFlag{name: name, boolean: true, usage: usage,
		apply: func(a *appConfig, v string) error {
			b, err := parseBoolValue(v)
			if err != nil {
				return err
			}
			n, _ := types.NewACIdentifier(annotation)
			a.Annotations.Set(*n, strconv.FormatBool(b))
			return nil
		}})
}

// misplacedAppFlag is the pod-level stand-in of a per-app flag: given
// before any image it can only be a mistake, and says so.
type misplacedAppFlag struct{ name string }

func (m misplacedAppFlag) String() string { return "" }
func (m misplacedAppFlag) Type() string   { return "" }
func (m misplacedAppFlag) Set(string) error {
	return fmt.Errorf("--%s must follow an image: it applies to the app named before it", m.name)
}

// addMisplacedAppFlags lets run and prepare explain a per-app flag given
// before the first image, instead of calling it unknown.
func addMisplacedAppFlags(f *pflag.FlagSet) {
	for _, af := range appFlags {
		if f.Lookup(af.name) != nil {
			continue
		}
		fl := f.VarPF(misplacedAppFlag{af.name}, af.name, "", af.usage)
		fl.Hidden = true
		if af.boolean {
			fl.NoOptDefVal = "true"
		}
	}
}
