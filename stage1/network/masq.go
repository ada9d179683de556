package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rktng/rkt/pkg/lock"
)

// The built-in default network masquerades its pods' traffic to the world
// with one chain shared by all of its pods. ptp's own ipMasq would make a
// chain and three rules per pod: nine iptables runs on every pod start and
// six more at its gc, the larger part of what joining the network cost.
// The pod's link and address still come from ptp and host-local; only the
// subnet-wide rule is ours, as the subnet is.
//
// The chain lives exactly as long as some pod holds a lease of the
// network: a pod's Setup makes sure of it once host-local has leased the
// pod its address, and a pod's Teardown, once CNI DEL has freed that
// address, removes it when no lease is left. Both steps run under one lock
// and look at the leases, so whichever comes second sees what the first
// did: a Teardown that runs first removes the chain and the starting pod
// makes it again; one that runs second finds the new lease and keeps it.
//
// The leases are host-local's files in its data directory. Pods of one
// host may keep them in different directories (tests and the bench keep
// theirs apart from /var/lib/cni), yet share the chain, which is per
// subnet; so every directory whose leases keep the chain is listed in
// masqDirsPath, and the chain goes only when none of them holds a lease.

// DefaultMasqChain is the nat chain masquerading the default network.
const DefaultMasqChain = "RKT-MASQ-DEFAULT"

const (
	// masqLockPath serialises the pods making sure of the chain and those
	// removing it.
	masqLockPath = "/run/lock/rkt-network-masq.lock"
	// masqDirsPath lists, one a line, the host-local directories whose
	// leases keep the default network's chain. It is in /run, as the
	// chain itself does not outlive a reboot.
	masqDirsPath = "/run/rkt/masq-default.dirs"
	// hostLocalDataDir is host-local's dataDir when none is configured;
	// a network's leases are in a directory of it named after the network.
	hostLocalDataDir = "/var/lib/cni/networks"
)

// sharedMasq is how a network's masquerade is installed: iptables, its
// restore command, the subnet, and the lock and list of lease directories
// that decide when the chain lives.
type sharedMasq struct {
	iptables, restore  string
	subnet             string
	chain, comment     string
	lockPath, dirsPath string
}

// defaultMasq returns the shared masquerade of the default network, or nil
// when this host has no iptables (ptp then masquerades each pod itself,
// with nftables).
func defaultMasq() *sharedMasq {
	ipt, err := exec.LookPath("iptables")
	if err != nil {
		return nil
	}
	restore, err := exec.LookPath("iptables-restore")
	if err != nil {
		return nil
	}
	return &sharedMasq{iptables: ipt, restore: restore, subnet: DefaultSubnet, chain: DefaultMasqChain,
		comment: "rkt: masquerade the default network", lockPath: masqLockPath, dirsPath: masqDirsPath}
}

func (m *sharedMasq) jump() []string {
	return []string{"-s", m.subnet, "-m", "comment", "--comment", m.comment, "-j", m.chain}
}

// present says whether POSTROUTING jumps to the chain (which implies the
// chain exists: iptables refuses a jump to a missing one).
func (m *sharedMasq) present(ctx context.Context) bool {
	args := append([]string{"-w", "-t", "nat", "-C", "POSTROUTING"}, m.jump()...)
	return exec.CommandContext(ctx, m.iptables, args...).Run() == nil
}

// lock takes the lock deciding the chain's life; the caller closes it.
func (m *sharedMasq) lock() (*lock.FileLock, error) {
	if err := os.MkdirAll(filepath.Dir(m.lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("masquerade lock: %w", err)
	}
	l, err := lock.Open(m.lockPath)
	if err != nil {
		return nil, fmt.Errorf("masquerade lock: %w", err)
	}
	if err := l.Exclusive(); err != nil {
		l.Close()
		return nil, fmt.Errorf("masquerade lock: %w", err)
	}
	return l, nil
}

// ensure makes the chain and the jump to it unless they are there, for a
// pod that holds a lease in leaseDir already. The lease must come first:
// a Teardown deciding meanwhile that no lease is left would otherwise
// remove the chain behind this pod's back. The common case is one iptables
// run under the lock.
func (m *sharedMasq) ensure(ctx context.Context, leaseDir string) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Close()
	dirs, err := m.readDirs()
	if err != nil {
		return err
	}
	if !slices.Contains(dirs, leaseDir) {
		if err := m.writeDirs(append(dirs, leaseDir)); err != nil {
			return err
		}
	}
	if m.present(ctx) {
		return nil
	}
	// One transaction: declaring the chain makes or empties it, so a
	// chain left without its jump (someone deleted only that) is
	// rebuilt rather than doubled. Packets within the subnet are left
	// alone (ACCEPT ends the nat traversal, as ptp's rules did), and so
	// is multicast.
	rules := fmt.Sprintf(`*nat
:%[1]s - [0:0]
-A %[1]s -d %[2]s -j ACCEPT
-A %[1]s -d 224.0.0.0/4 -j RETURN
-A %[1]s -j MASQUERADE
-A POSTROUTING %[3]s
COMMIT
`, m.chain, m.subnet, quoteRule(m.jump()))
	if err := m.iptablesRestore(ctx, rules); err != nil {
		return fmt.Errorf("masquerade %s: %w", m.subnet, err)
	}
	return nil
}

// release removes the chain and the jump to it if no lease is left in
// leaseDir, which a pod has just given its lease back to, nor in any other
// directory listed as keeping the chain. Directories without leases leave
// the list, and the list goes with the chain.
func (m *sharedMasq) release(ctx context.Context, leaseDir string) error {
	l, err := m.lock()
	if err != nil {
		return err
	}
	defer l.Close()
	dirs, err := m.readDirs()
	if err != nil {
		return err
	}
	if !slices.Contains(dirs, leaseDir) {
		// A pod set up before a reboot cleared the list, or by a
		// version without it: its directory still counts.
		dirs = append(dirs, leaseDir)
	}
	var keep []string
	for _, d := range dirs {
		if hasLeases(d) {
			keep = append(keep, d)
		}
	}
	if len(keep) > 0 {
		if len(keep) == len(dirs) {
			return nil
		}
		return m.writeDirs(keep)
	}
	if err := m.remove(ctx); err != nil {
		return err
	}
	if err := os.Remove(m.dirsPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("masquerade: %w", err)
	}
	return nil
}

// remove deletes the jump and the chain: one transaction when both are
// there, and one by one, missing parts skipped, when not (someone removed
// a part, or the host rebooted).
func (m *sharedMasq) remove(ctx context.Context) error {
	rules := fmt.Sprintf("*nat\n-D POSTROUTING %s\n-F %[2]s\n-X %[2]s\nCOMMIT\n", quoteRule(m.jump()), m.chain)
	if m.iptablesRestore(ctx, rules) == nil {
		return nil
	}
	del := append([]string{"-w", "-t", "nat", "-D", "POSTROUTING"}, m.jump()...)
	for exec.CommandContext(ctx, m.iptables, del...).Run() == nil {
	}
	if exec.CommandContext(ctx, m.iptables, "-w", "-t", "nat", "-n", "-L", m.chain).Run() != nil {
		return nil // no such chain
	}
	for _, op := range []string{"-F", "-X"} {
		if out, err := exec.CommandContext(ctx, m.iptables, "-w", "-t", "nat", op, m.chain).CombinedOutput(); err != nil {
			return fmt.Errorf("remove masquerade %s: iptables %s %s: %v: %s", m.subnet, op, m.chain, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func (m *sharedMasq) iptablesRestore(ctx context.Context, rules string) error {
	cmd := exec.CommandContext(ctx, m.restore, "-w", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(m.restore), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// readDirs returns the lease directories listed as keeping the chain.
func (m *sharedMasq) readDirs() ([]string, error) {
	b, err := os.ReadFile(m.dirsPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("masquerade: %w", err)
	}
	var dirs []string
	for _, d := range strings.Split(string(b), "\n") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

func (m *sharedMasq) writeDirs(dirs []string) error {
	if err := os.MkdirAll(filepath.Dir(m.dirsPath), 0o755); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	if err := writeFileAtomic(m.dirsPath, []byte(strings.Join(dirs, "\n")+"\n"), false); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	return nil
}

// hasLeases says whether host-local holds an address in dir. Besides its
// leases, named after the addresses, it keeps a lock and the last address
// it gave out per range. A directory it cannot read counts as holding
// one: keeping the chain too long is better than cutting a pod off.
func hasLeases(dir string) bool {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	for _, e := range ents {
		if n := e.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") && !strings.HasPrefix(n, ".") {
			return true
		}
	}
	return false
}

// quoteRule joins rule arguments for iptables-restore, quoting those with
// spaces.
func quoteRule(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t") {
			a = `"` + a + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
