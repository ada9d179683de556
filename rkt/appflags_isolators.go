package main

// The per-app isolator flags of `rkt run`/`rkt prepare`: each turns into
// the appc isolator of the app's manifest that pkg/isolators interprets,
// replacing the image's isolator of the same kind (--seccomp-profile, an
// annotation that pkg/isolators reads, replaces every seccomp isolator).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"github.com/rktng/rkt/pkg/isolators"
)

// setIsolator replaces the app's isolator of the same name or family.
func setIsolator(a *appConfig, iso types.Isolator) {
	a.Isolators = isolators.Override(a.Isolators, types.Isolators{iso})
}

// checkAppFlags refuses per-app flags that exclude each other.
func checkAppFlags(a *appConfig) error {
	if _, ok := a.Annotations.Get(isolators.AnnotationSeccompProfile); !ok {
		return nil
	}
	for _, iso := range a.Isolators {
		if iso.Name == types.LinuxSeccompRetainSetName || iso.Name == types.LinuxSeccompRemoveSetName {
			return fmt.Errorf("conflicting flags for %s: --seccomp and --seccomp-profile; give one or the other", a.Image)
		}
	}
	return nil
}

// listValue splits a comma-separated list, dropping empty items.
func listValue(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseSeccompFlag reads rkt's --seccomp syntax:
// mode=retain|remove[,errno=ENAME],SYSCALL[,SYSCALL...] (syscalls may be
// groups such as @rkt/default-blacklist).
func parseSeccompFlag(v string) (types.Isolator, error) {
	mode, errno := "", ""
	var set []string
	for _, item := range listValue(v) {
		switch {
		case strings.HasPrefix(item, "mode="):
			mode = strings.TrimPrefix(item, "mode=")
		case strings.HasPrefix(item, "errno="):
			errno = strings.TrimPrefix(item, "errno=")
		default:
			set = append(set, item)
		}
	}
	if len(set) == 0 {
		return types.Isolator{}, fmt.Errorf("no syscalls given (want mode=retain|remove[,errno=ENAME],SYSCALL,...)")
	}
	value := map[string]any{"set": set}
	if errno != "" {
		value["errno"] = errno
	}
	switch mode {
	case "retain":
		return isolators.New(types.LinuxSeccompRetainSetName, value)
	case "remove":
		return isolators.New(types.LinuxSeccompRemoveSetName, value)
	default:
		return types.Isolator{}, fmt.Errorf("mode must be retain or remove, not %q", mode)
	}
}

func init() {
	addAppFlag(appFlag{name: "memory", usage: "memory limit of the app (e.g. 64M, 512Mi, 1G)",
		apply: func(a *appConfig, v string) error {
			iso, err := isolators.New(types.ResourceMemoryName, map[string]string{"limit": v})
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "cpu", usage: "CPU limit of the app, in CPUs or millicores (e.g. 1, 500m)",
		apply: func(a *appConfig, v string) error {
			iso, err := isolators.New(types.ResourceCPUName, map[string]string{"limit": v})
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "cpu-shares", usage: "relative CPU weight of the app (2-262144, default 1024)",
		apply: func(a *appConfig, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not a number")
			}
			iso, err := isolators.New(types.LinuxCPUSharesName, n)
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "oom-score-adj", usage: "oom_score_adj of the app (-1000..1000; below 0 needs CAP_SYS_RESOURCE)",
		apply: func(a *appConfig, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not a number")
			}
			iso, err := isolators.New(types.LinuxOOMScoreAdjName, n)
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "caps-retain", usage: "comma-separated capabilities the app keeps (replaces the default set)",
		apply: func(a *appConfig, v string) error {
			iso, err := isolators.New(types.LinuxCapabilitiesRetainSetName, map[string][]string{"set": listValue(v)})
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "caps-remove", usage: "comma-separated capabilities removed from the app's default set",
		apply: func(a *appConfig, v string) error {
			iso, err := isolators.New(types.LinuxCapabilitiesRevokeSetName, map[string][]string{"set": listValue(v)})
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "seccomp", usage: "syscall filter: mode=retain|remove[,errno=ENAME],SYSCALL,... (groups like @rkt/default-blacklist allowed)",
		apply: func(a *appConfig, v string) error {
			iso, err := parseSeccompFlag(v)
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
	addAppFlag(appFlag{name: "seccomp-profile", usage: "FILE: a seccomp profile in the OCI format (Docker's, Podman's, a Kubernetes Localhost profile), in place of the app's filter",
		apply: func(a *appConfig, v string) error {
			data, err := os.ReadFile(v)
			if err != nil {
				return err
			}
			if _, err := seccomp.ParseProfile(data); err != nil {
				return fmt.Errorf("%s: %w", v, err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				return fmt.Errorf("%s: %w", v, err)
			}
			n, _ := types.NewACIdentifier(isolators.AnnotationSeccompProfile)
			a.Annotations.Set(*n, compact.String())
			return nil
		}})
	addAppFlag(appFlag{name: "no-new-privileges", boolean: true, usage: "set no_new_privs: setuid binaries and file capabilities grant nothing",
		apply: func(a *appConfig, v string) error {
			b, err := parseBoolValue(v)
			if err != nil {
				return err
			}
			iso, err := isolators.New(types.LinuxNoNewPrivilegesName, b)
			if err != nil {
				return err
			}
			setIsolator(a, iso)
			return nil
		}})
}
