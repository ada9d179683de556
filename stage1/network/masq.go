package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rktng/rkt/pkg/lock"
)

// The built-in default network masquerades its pods' traffic to the world
// with one chain shared by all of its pods, made by the first pod that
// needs it and kept, as portmap keeps its CNI-HOSTPORT-* chains. ptp's own
// ipMasq would make a chain and three rules per pod: nine iptables runs on
// every pod start and six more at its gc, the larger part of what joining
// the network cost. The pod's link and address still come from ptp and
// host-local; only the subnet-wide rule is ours, as the subnet is.

// DefaultMasqChain is the nat chain masquerading the default network.
const DefaultMasqChain = "RKT-MASQ-DEFAULT"

// masqLockPath serialises the pods that find the chain missing, so that
// two of them starting at once do not both add the jump to it.
const masqLockPath = "/run/lock/rkt-network-masq.lock"

// sharedMasq is how a network's masquerade is installed: iptables, its
// restore command and the subnet.
type sharedMasq struct {
	iptables, restore string
	subnet            string
	chain, comment    string
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
		comment: "rkt: masquerade the default network"}
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

// ensure makes the chain and the jump to it unless they are there. The
// common case is one iptables run, which Setup overlaps with the plugins.
func (m *sharedMasq) ensure(ctx context.Context) error {
	if m.present(ctx) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(masqLockPath), 0o755); err != nil {
		return fmt.Errorf("masquerade lock: %w", err)
	}
	l, err := lock.Open(masqLockPath)
	if err != nil {
		return fmt.Errorf("masquerade lock: %w", err)
	}
	defer l.Close()
	if err := l.Exclusive(); err != nil {
		return fmt.Errorf("masquerade lock: %w", err)
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
	cmd := exec.CommandContext(ctx, m.restore, "-w", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("masquerade %s: %s: %v: %s", m.subnet, filepath.Base(m.restore), err, strings.TrimSpace(string(out)))
	}
	return nil
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
