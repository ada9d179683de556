package appexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"github.com/rktng/rkt/pkg/cgroup"
	"golang.org/x/sys/unix"
)

// Exec puts the calling process into the app's final state and execs the
// app. It never returns on success; on failure the process may already be
// chrooted or have dropped privileges, so the caller should only report
// the error and exit.
//
// The order matters: things needing privilege (cgroups, oom_score_adj,
// mounts, chroot, bounding set) come first; then the identity with
// PR_SET_KEEPCAPS so that the permitted set survives setuid; then the
// seccomp filter (with CAP_SYS_ADMIN briefly effective, unless
// no_new_privs is asked for, in which case the filter comes last of all);
// then the final capability sets, no_new_privs and the working directory.
// A filter therefore only has to allow capset, prctl, chdir and execve of
// the set-up calls.
func Exec(c *Config) error { return ExecRooted(c, nil) }

// ExecRooted is Exec calling rooted, when not nil, once the process is in
// the app's root and mount setup but still privileged (before the
// bounding set, identity and seccomp filter): from there on it is the app
// as `rkt enter` joins it. An error from rooted stops the launch.
func ExecRooted(c *Config, rooted func() error) error {
	if err := c.Validate(); err != nil {
		return err
	}
	// Capabilities, no_new_privs and seccomp are per thread: all of it
	// must happen on the thread that calls execve. Never unlocked: the
	// thread is tainted if anything fails.
	runtime.LockOSThread()

	bound, ambient, err := c.capSets()
	if err != nil {
		return err
	}
	filter, err := c.seccompFilter(bound)
	if err != nil {
		return fmt.Errorf("app %s: %w", c.Name, err)
	}

	if err := cgroup.JoinDirs(c.CgroupDirs, 0); err != nil {
		return fmt.Errorf("app %s: %w", c.Name, err)
	}
	if c.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*c.OOMScoreAdj); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
	}
	root := c.Rootfs
	if root == "" {
		root = "/"
	}
	if err := c.setupMounts(root); err != nil {
		return fmt.Errorf("app %s: %w", c.Name, err)
	}
	if root != "/" {
		if err := unix.Chroot(root); err != nil {
			return fmt.Errorf("app %s: chroot %s: %w", c.Name, root, err)
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("app %s: chdir /: %w", c.Name, err)
	}
	path, err := lookExec(c.Exec[0], c.Env)
	if err != nil {
		return fmt.Errorf("app %s: %w", c.Name, err)
	}
	if rooted != nil {
		if err := rooted(); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
	}

	if !c.DisableCapabilities {
		if err := caps.LimitBounding(bound); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
	}
	if err := c.setIdentity(); err != nil {
		return fmt.Errorf("app %s: %w", c.Name, err)
	}
	// Without no_new_privs, installing a filter needs CAP_SYS_ADMIN in
	// the effective set: still permitted here (PR_SET_KEEPCAPS), it is
	// raised for the install and dropped by the final capset below. The
	// filter goes in after the identity change, so that it need not allow
	// setgroups and setres[ug]id, only capset, prctl, chdir and execve.
	early := filter != nil && !c.NoNewPrivileges
	if early {
		if err := raiseSysAdmin(); err != nil {
			return fmt.Errorf("app %s: seccomp filter without no_new_privileges: %w", c.Name, err)
		}
		if err := filter.Install(); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
	}
	if !c.DisableCapabilities {
		st := caps.State{Inheritable: bound}
		if c.UID == 0 {
			st.Effective, st.Permitted = bound, bound
		} else {
			// A non-root app keeps only its ambient capabilities; the
			// permitted set must hold them for the raise.
			st.Effective, st.Permitted = ambient, ambient
			st.Inheritable = ambient
		}
		if err := st.Set(); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
		if c.UID != 0 {
			if err := caps.RaiseAmbient(ambient); err != nil {
				return fmt.Errorf("app %s: %w", c.Name, err)
			}
		}
	}
	if c.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("app %s: set no_new_privs: %w", c.Name, err)
		}
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := unix.Chdir(wd); err != nil {
		return fmt.Errorf("app %s: working directory %s: %w", c.Name, wd, err)
	}
	if filter != nil && !early {
		if err := filter.Install(); err != nil {
			return fmt.Errorf("app %s: %w", c.Name, err)
		}
	}
	err = unix.Exec(path, c.Exec, withPassedSockets(c.Env))
	return fmt.Errorf("app %s: exec %s: %w", c.Name, path, err)
}

// seccompFilter compiles the app's filter or profile (nil when seccomp
// is off) before anything is changed, so that one that does not compile
// stops the launch cleanly.
func (c *Config) seccompFilter(bound caps.Set) (*seccomp.Compiled, error) {
	if c.DisableSeccomp {
		return nil, nil
	}
	if p := c.SeccompProfile; p != nil {
		// Docker's includes and excludes name the capabilities the
		// app may hold: with capabilities unrestricted, the launcher's.
		held := bound
		if c.DisableCapabilities {
			held = caps.Bounding()
		}
		return p.Compile(held.Names())
	}
	f := c.Seccomp
	if f == nil {
		f = seccomp.Default()
	}
	return f.Compile()
}

// raiseSysAdmin makes CAP_SYS_ADMIN effective again, if permitted.
func raiseSysAdmin() error {
	st, err := caps.Get()
	if err != nil {
		return err
	}
	if !st.Permitted.Has(unix.CAP_SYS_ADMIN) {
		return errors.New("CAP_SYS_ADMIN is not permitted: set no_new_privileges or run as root")
	}
	st.Effective |= 1 << unix.CAP_SYS_ADMIN
	return st.Set()
}

// capSets returns the bounding set and the ambient set of the config.
func (c *Config) capSets() (caps.Set, caps.Set, error) {
	names := c.Capabilities
	if names == nil {
		names = caps.Default()
	}
	bound, err := caps.ParseSet(names)
	if err != nil {
		return 0, 0, err
	}
	ambient, err := caps.ParseSet(c.AmbientCapabilities)
	if err != nil {
		return 0, 0, err
	}
	if ambient&^bound != 0 {
		return 0, 0, fmt.Errorf("ambient capabilities %v are not in the capability set", (ambient &^ bound).Names())
	}
	return bound, ambient, nil
}

// setIdentity sets groups, gid and uid, keeping the permitted capability
// set across the uid change so that the final sets can be chosen after.
func (c *Config) setIdentity() error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	gids := c.SupplementaryGIDs
	if gids == nil {
		gids = []int{}
	}
	if err := unix.Setgroups(gids); err != nil {
		return fmt.Errorf("setgroups %v: %w", gids, err)
	}
	if err := unix.Setresgid(c.GID, c.GID, c.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", c.GID, err)
	}
	if err := unix.Setresuid(c.UID, c.UID, c.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", c.UID, err)
	}
	return nil
}

// setOOMScoreAdj writes the calling process's oom_score_adj.
func setOOMScoreAdj(v int) error {
	err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w to %d: lowering it below its current value needs CAP_SYS_RESOURCE, which this process lacks: %w", ErrOOMScoreAdj, v, err)
	}
	return fmt.Errorf("%w to %d: %w", ErrOOMScoreAdj, v, err)
}

// lookExec resolves the executable inside the (already chrooted) root:
// an absolute or relative path as is, a bare name through env's PATH.
func lookExec(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := isExecutable(name); err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrExecNotFound, name, err)
		}
		return name, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s in PATH %s", ErrExecNotFound, name, pathVar)
}

func isExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// withPassedSockets adds to env the socket activation variables
// (sd_listen_fds(3)) this process was given for itself, and makes the
// sockets (fds from 3) survive the exec: the app it becomes keeps its PID
// and the sockets, and must be told of them.
func withPassedSockets(env []string) []string {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return env
	}
	if n, err := strconv.Atoi(os.Getenv("LISTEN_FDS")); err == nil {
		for fd := 3; fd < 3+n; fd++ {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
		}
	}
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LISTEN_") {
			out = append(out, kv)
		}
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
