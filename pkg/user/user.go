// Package user owns resolving an app's user and group, given as names,
// numbers or paths, through the app's own root filesystem: ROOTFS/etc/passwd,
// ROOTFS/etc/group and the owners of files inside ROOTFS. Nothing here reads
// the host's account databases, and every path is resolved with the rootfs
// as its root, so a symlinked /etc/passwd in an image cannot make us read a
// host file.
package user

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sentinel errors, wrapped with the user or group and the file consulted.
var (
	// ErrUnknownUser: a user name the image's /etc/passwd does not list.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownGroup: a group name the image's /etc/group does not list.
	ErrUnknownGroup = errors.New("unknown group")
	// ErrBadID: an empty, negative or out-of-range user or group.
	ErrBadID = errors.New("invalid user or group")
)

// PasswdFile and GroupFile are where an app image keeps its accounts.
const (
	PasswdFile = "/etc/passwd"
	GroupFile  = "/etc/group"
)

// maxID is the largest valid ID: (uid_t)-1 is reserved by the kernel.
const maxID = 1<<32 - 2

// User is one resolved /etc/passwd entry, or a bare numeric UID.
type User struct {
	Name  string // empty for a number the image does not list
	UID   int
	GID   int // the passwd primary group; -1 when unknown
	Home  string
	Shell string
}

// Resolved is what an app runs as.
type Resolved struct {
	UID  int
	GID  int
	Home string // from passwd, "" when the user is not listed
	// SupplementaryGIDs are the groups of /etc/group that list the user
	// as a member, sorted, without GID; the caller adds the manifest's
	// supplementaryGIDs.
	SupplementaryGIDs []int
}

// Resolve resolves an appc app's user and group fields within rootfs.
// Each may be a number, a name looked up in the image's passwd or group
// file, or an absolute path whose owner (user) or group owner (group) is
// used, as the appc spec allows.
func Resolve(rootfs, user, group string) (Resolved, error) {
	u, err := LookupUser(rootfs, user)
	if err != nil {
		return Resolved{}, err
	}
	gid, err := LookupGroup(rootfs, group)
	if err != nil {
		return Resolved{}, err
	}
	r := Resolved{UID: u.UID, GID: gid, Home: u.Home}
	if u.Name != "" {
		sup, err := SupplementaryGroups(rootfs, u.Name)
		if err != nil {
			return Resolved{}, err
		}
		for _, g := range sup {
			if g != gid {
				r.SupplementaryGIDs = append(r.SupplementaryGIDs, g)
			}
		}
	}
	return r, nil
}

// LookupUser resolves a user given as a number, a name or an absolute
// path inside rootfs. A number the passwd file does not list is valid: the
// app simply runs with that UID and no passwd entry.
func LookupUser(rootfs, user string) (User, error) {
	if user == "" {
		return User{}, fmt.Errorf("%w: empty user", ErrBadID)
	}
	if strings.HasPrefix(user, "/") {
		st, err := statInRoot(rootfs, user)
		if err != nil {
			return User{}, fmt.Errorf("user from owner of %s: %w", user, err)
		}
		return lookupUID(rootfs, int(st.Uid))
	}
	if id, ok, err := parseID(user); err != nil {
		return User{}, fmt.Errorf("user %q: %w", user, err)
	} else if ok {
		return lookupUID(rootfs, id)
	}
	var found *User
	err := scanFile(rootfs, PasswdFile, func(f []string) bool {
		if len(f) < 4 || f[0] != user {
			return false
		}
		u, ok := passwdEntry(f)
		if ok {
			found = &u
		}
		return ok
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return User{}, fmt.Errorf("user %q: %w", user, err)
	}
	if found == nil {
		return User{}, fmt.Errorf("%w %q in %s of the image", ErrUnknownUser, user, PasswdFile)
	}
	return *found, nil
}

// lookupUID finds the passwd entry of a UID, if any, for its home and
// name; an unlisted UID is returned bare.
func lookupUID(rootfs string, uid int) (User, error) {
	u := User{UID: uid, GID: -1}
	err := scanFile(rootfs, PasswdFile, func(f []string) bool {
		if len(f) < 4 || f[2] != strconv.Itoa(uid) {
			return false
		}
		e, ok := passwdEntry(f)
		if ok {
			u = e
		}
		return ok
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return User{}, err
	}
	return u, nil
}

func passwdEntry(f []string) (User, bool) {
	uid, ok, err := parseID(f[2])
	if !ok || err != nil {
		return User{}, false
	}
	gid, ok, err := parseID(f[3])
	if !ok || err != nil {
		gid = -1
	}
	u := User{Name: f[0], UID: uid, GID: gid}
	if len(f) > 5 {
		u.Home = f[5]
	}
	if len(f) > 6 {
		u.Shell = f[6]
	}
	return u, true
}

// LookupGroup resolves a group given as a number, a name from the image's
// /etc/group, or an absolute path inside rootfs whose group owner is used.
func LookupGroup(rootfs, group string) (int, error) {
	if group == "" {
		return 0, fmt.Errorf("%w: empty group", ErrBadID)
	}
	if strings.HasPrefix(group, "/") {
		st, err := statInRoot(rootfs, group)
		if err != nil {
			return 0, fmt.Errorf("group from owner of %s: %w", group, err)
		}
		return int(st.Gid), nil
	}
	if id, ok, err := parseID(group); err != nil {
		return 0, fmt.Errorf("group %q: %w", group, err)
	} else if ok {
		return id, nil
	}
	gid := -1
	err := scanFile(rootfs, GroupFile, func(f []string) bool {
		if len(f) < 3 || f[0] != group {
			return false
		}
		id, ok, err := parseID(f[2])
		if ok && err == nil {
			gid = id
			return true
		}
		return false
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("group %q: %w", group, err)
	}
	if gid < 0 {
		return 0, fmt.Errorf("%w %q in %s of the image", ErrUnknownGroup, group, GroupFile)
	}
	return gid, nil
}

// SupplementaryGroups lists, sorted and without duplicates, the GIDs of
// the groups in the image's /etc/group that name user as a member. An
// image without /etc/group has none.
func SupplementaryGroups(rootfs, user string) ([]int, error) {
	seen := map[int]bool{}
	var gids []int
	err := scanFile(rootfs, GroupFile, func(f []string) bool {
		if len(f) < 4 {
			return false
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) != user {
				continue
			}
			if id, ok, err := parseID(f[2]); ok && err == nil && !seen[id] {
				seen[id] = true
				gids = append(gids, id)
			}
		}
		return false
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("groups of %q: %w", user, err)
	}
	sort.Ints(gids)
	return gids, nil
}

// parseID reports whether s is a number and, if so, whether it is a
// usable ID.
func parseID(s string) (int, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	neg := s[0] == '-'
	digits := s
	if neg {
		digits = s[1:]
	}
	if digits == "" {
		return 0, false, nil
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false, nil
		}
	}
	if neg {
		return 0, true, fmt.Errorf("%w: negative ID %s", ErrBadID, s)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > maxID {
		return 0, true, fmt.Errorf("%w: ID %s out of range", ErrBadID, s)
	}
	return int(n), true, nil
}

// scanFile calls fn with the colon-separated fields of each non-comment
// line of name inside rootfs until fn returns true.
func scanFile(rootfs, name string, fn func([]string) bool) error {
	f, err := OpenInRoot(rootfs, name)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(io.LimitReader(f, 64<<20))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if fn(strings.Split(line, ":")) {
			return nil
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read %s of the image: %w", name, err)
	}
	return nil
}

// OpenInRoot opens name for reading with rootfs as the root directory:
// absolute symlinks and ".." inside the image cannot leave it.
func OpenInRoot(rootfs, name string) (*os.File, error) {
	dir, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(dir)
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+name), "/")
	fd, err := unix.Openat2(dir, rel, &how)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name + " of the image", Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(rootfs, rel)), nil
}

func statInRoot(rootfs, name string) (*unix.Stat_t, error) {
	f, err := OpenInRoot(rootfs, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	return &st, nil
}
