// Package appexec owns the last step before an app's process runs: with its
// namespaces and cgroup already chosen by a stage1, it applies the
// oom_score_adj, the read-only rootfs, the chroot, the supplementary groups,
// gid and uid, the capability sets, no_new_privs, the seccomp filter, the
// working directory and the environment, then execs the app. The same
// sequence serves both stage1 flavors and `rkt enter`, so that an entered
// command never has more than the app it enters (rkt's enter gave every
// capability and no filter: CVE-2019-10144/10145/10147).
//
// A stage1 builds a Config (usually from the pod manifest with
// pkg/isolators), writes it with WriteConfig, and runs its launcher mode,
// which calls Main or ReadConfig + Exec. Exec never returns on success.
package appexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rktng/rkt/pkg/appexec/seccomp"
)

// Sentinel errors of the launch sequence.
var (
	// ErrBadConfig: a Config that cannot be applied as written.
	ErrBadConfig = errors.New("invalid app exec config")
	// ErrOOMScoreAdj: the kernel refused the oom_score_adj; lowering it
	// below 0 needs CAP_SYS_RESOURCE, which the caller lacks.
	ErrOOMScoreAdj = errors.New("cannot set oom_score_adj")
	// ErrExecNotFound: the app's executable is not in its rootfs.
	ErrExecNotFound = errors.New("executable not found")
)

// Config is everything that puts one app process into its final state. It
// is plain data so that a stage1 can write it to a file (WriteConfig) and
// its launcher mode can read it (ReadConfig). Paths are as seen by the
// process that calls Exec, before the chroot.
type Config struct {
	// Name is the app's name, used in error messages.
	Name string `json:"name,omitempty"`
	// Rootfs is the directory to chroot into; "" or "/" means no chroot.
	Rootfs string `json:"rootfs,omitempty"`
	// Exec is the argv; Exec[0] is an absolute path inside Rootfs, or a
	// bare name looked up in Env's PATH inside Rootfs.
	Exec []string `json:"exec"`
	// Env is the complete environment, "NAME=VALUE" each.
	Env []string `json:"env,omitempty"`
	// WorkingDir is inside Rootfs; "" means "/".
	WorkingDir string `json:"workingDir,omitempty"`
	// UID, GID and SupplementaryGIDs are numeric (resolve names with
	// pkg/user first). SupplementaryGIDs nil means none.
	UID               int   `json:"uid"`
	GID               int   `json:"gid"`
	SupplementaryGIDs []int `json:"supplementaryGIDs,omitempty"`
	// CgroupDirs are cgroup directories (from pkg/cgroup) the process
	// joins first, so that the app runs under its resource limits.
	CgroupDirs []string `json:"cgroupDirs,omitempty"`
	// ReadOnlyRootfs remounts Rootfs read-only (a bind mount of itself)
	// before the chroot; mounts below it keep their own flags. Needs a
	// private mount namespace.
	ReadOnlyRootfs bool `json:"readOnlyRootfs,omitempty"`

	// Capabilities is the app's capability set by name ("CAP_CHOWN"):
	// everything else leaves the bounding set; a root app gets exactly
	// this set as effective, permitted and inheritable. nil means
	// caps.Default().
	Capabilities []string `json:"capabilities"`
	// AmbientCapabilities are raised in the ambient set so that a
	// non-root app keeps them across exec; each must be in Capabilities.
	// pkg/isolators sets them for a non-root app with an explicit retain
	// set.
	AmbientCapabilities []string `json:"ambientCapabilities,omitempty"`
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS: setuid binaries and file
	// capabilities grant nothing.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// PrivatePIDNamespace gives the app a PID namespace of its own, with
	// a /proc of it in its root (see LaunchInPIDNamespace).
	PrivatePIDNamespace bool `json:"privatePIDNamespace,omitempty"`
	// Seccomp is the syscall filter; nil means seccomp.Default().
	Seccomp *seccomp.Filter `json:"seccomp,omitempty"`
	// SeccompProfile, when set, replaces Seccomp: a profile in the OCI
	// format (`--seccomp-profile`, a CRI Localhost profile).
	SeccompProfile *seccomp.Profile `json:"seccompProfile,omitempty"`
	// OOMScoreAdj is written to /proc/self/oom_score_adj when non-nil.
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`

	// ReadOnlyPaths and MaskedPaths are paths inside Rootfs that the app
	// may read but not write, and may not see at all (an empty read-only
	// file or directory is mounted over them). Missing paths are skipped.
	// Needs a private mount namespace.
	ReadOnlyPaths []string `json:"readOnlyPaths,omitempty"`
	MaskedPaths   []string `json:"maskedPaths,omitempty"`

	// The --insecure-options=capabilities,seccomp,paths escapes, passed by
	// stage0 as --disable-capabilities-restriction, --disable-seccomp and
	// --disable-paths: each turns the matching restriction off.
	DisableCapabilities bool `json:"disableCapabilities,omitempty"`
	DisableSeccomp      bool `json:"disableSeccomp,omitempty"`
	DisablePaths        bool `json:"disablePaths,omitempty"`
}

// DefaultReadOnlyPaths and DefaultMaskedPaths are the kernel interfaces an
// app may not change or see, for stages that mount /proc and /sys inside
// the app's root. --insecure-options=paths (DisablePaths) lifts them.
var (
	DefaultReadOnlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/sys"}
	DefaultMaskedPaths   = []string{"/proc/kcore", "/proc/kmsg", "/proc/timer_list", "/proc/sched_debug", "/proc/keys", "/sys/firmware"}
)

// Validate checks what can be checked without touching the system.
func (c *Config) Validate() error {
	if len(c.Exec) == 0 || c.Exec[0] == "" {
		return fmt.Errorf("%w: app %s: empty exec", ErrBadConfig, c.Name)
	}
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("%w: app %s: negative uid or gid", ErrBadConfig, c.Name)
	}
	for _, g := range c.SupplementaryGIDs {
		if g < 0 {
			return fmt.Errorf("%w: app %s: negative supplementary gid %d", ErrBadConfig, c.Name, g)
		}
	}
	if c.OOMScoreAdj != nil && (*c.OOMScoreAdj < -1000 || *c.OOMScoreAdj > 1000) {
		return fmt.Errorf("%w: app %s: oom_score_adj %d outside -1000..1000", ErrBadConfig, c.Name, *c.OOMScoreAdj)
	}
	if _, _, err := c.capSets(); err != nil {
		return fmt.Errorf("%w: app %s: %w", ErrBadConfig, c.Name, err)
	}
	if c.Seccomp != nil && !c.DisableSeccomp {
		if err := c.Seccomp.Validate(); err != nil {
			return fmt.Errorf("%w: app %s: %w", ErrBadConfig, c.Name, err)
		}
	}
	if c.SeccompProfile != nil && !c.DisableSeccomp {
		if err := c.SeccompProfile.Validate(); err != nil {
			return fmt.Errorf("%w: app %s: %w", ErrBadConfig, c.Name, err)
		}
	}
	return nil
}

// WriteConfig writes c to path as JSON, atomically (temp file, fsync,
// rename), readable by root only: it holds the app's environment.
func WriteConfig(path string, c *Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write app config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write app config %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write app config %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write app config %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write app config: %w", err)
	}
	return nil
}

// ReadConfig reads and validates a Config written by WriteConfig.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read app config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadConfig, path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}
