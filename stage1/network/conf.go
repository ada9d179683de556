package network

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"

	"github.com/rktng/rkt/pkg/netconf"
)

// Names with a meaning of their own in --net (pkg/netconf's).
const (
	NetDefault           = netconf.Default
	NetDefaultRestricted = netconf.DefaultRestricted
	NetHost              = netconf.Host
	NetNone              = netconf.None
	NetAll               = netconf.All
)

// Built-in network ranges, as rkt had them.
const (
	DefaultSubnet           = "172.16.28.0/24"
	DefaultRestrictedSubnet = "172.31.0.0/16"
)

// cniVersion is what our own configurations speak; v1.9.1 plugins do 1.1.0.
const cniVersion = "1.0.0"

// netConf is one network's configuration list, as raw JSON maps so that
// fields we do not know survive untouched.
type netConf struct {
	name string
	// source names where the configuration came from, for messages: a
	// net.d file, or "built-in".
	source string
	raw    map[string]any
	// masq, if set, is the masquerade shared by the network's pods,
	// which Setup makes sure of once the plugins have leased the pod its
	// address, and Teardown releases once the lease is freed.
	masq *sharedMasq
}

// plugins returns the raw plugin configurations of the list.
func (c *netConf) plugins() []map[string]any {
	list, _ := c.raw["plugins"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, p := range list {
		if m, ok := p.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// hasCapability says whether a plugin of the list declares capability c.
func (c *netConf) hasCapability(name string) bool {
	for _, p := range c.plugins() {
		if caps, ok := p["capabilities"].(map[string]any); ok && caps[name] == true {
			return true
		}
	}
	return false
}

// mainType is the type of the list's first plugin (ptp, bridge, ...).
func (c *netConf) mainType() string {
	if ps := c.plugins(); len(ps) > 0 {
		t, _ := ps[0]["type"].(string)
		return t
	}
	return ""
}

// appendPlugin adds a chained plugin to the list.
func (c *netConf) appendPlugin(p map[string]any) {
	list, _ := c.raw["plugins"].([]any)
	c.raw["plugins"] = append(list, p)
}

// setIPAMDataDir points every host-local IPAM without its own dataDir at dir.
func (c *netConf) setIPAMDataDir(dir string) {
	for _, p := range c.plugins() {
		ipam, ok := p["ipam"].(map[string]any)
		if !ok || ipam["type"] != "host-local" {
			continue
		}
		if _, set := ipam["dataDir"]; !set {
			ipam["dataDir"] = dir
		}
	}
}

// leaseDir is where the host-local IPAM of the list's first plugin keeps
// the network's leases, or "" when that plugin has no host-local IPAM.
func (c *netConf) leaseDir() string {
	ps := c.plugins()
	if len(ps) == 0 {
		return ""
	}
	ipam, ok := ps[0]["ipam"].(map[string]any)
	if !ok || ipam["type"] != "host-local" {
		return ""
	}
	dir, _ := ipam["dataDir"].(string)
	if dir == "" {
		dir = hostLocalDataDir
	}
	return filepath.Join(dir, c.name)
}

// sharesMasq says whether the list is the built-in default network
// without ptp's own masquerade: one whose pods the shared chain serves.
func (c *netConf) sharesMasq() bool {
	if c.name != NetDefault || c.source != builtinSource(NetDefault) {
		return false
	}
	ps := c.plugins()
	return len(ps) > 0 && ps[0]["type"] == "ptp" && ps[0]["ipMasq"] == false
}

// bytes is the list as JSON.
func (c *netConf) bytes() ([]byte, error) { return json.Marshal(c.raw) }

// list parses the configuration with libcni, which validates it.
func (c *netConf) list() (*libcni.NetworkConfigList, error) {
	b, err := c.bytes()
	if err != nil {
		return nil, err
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.source, err)
	}
	return l, nil
}

// builtinSource is the source of a built-in network, as its records say.
func builtinSource(name string) string { return "built-in network " + name }

func builtinConf(name string) *netConf {
	ipam := map[string]any{"type": "host-local"}
	ptp := map[string]any{"type": "ptp", "ipam": ipam}
	var masq *sharedMasq
	switch name {
	case NetDefault:
		ipam["ranges"] = []any{[]any{map[string]any{"subnet": DefaultSubnet}}}
		ipam["routes"] = []any{map[string]any{"dst": "0.0.0.0/0"}}
		// With iptables, one chain shared by the network's pods
		// masquerades them (see masq.go); without, ptp masquerades each
		// pod itself and finds nftables.
		masq = defaultMasq()
		ptp["ipMasq"] = masq == nil
	case NetDefaultRestricted:
		// No route but the one to the host's end of the link: the pod
		// reaches the host (the metadata service) and nothing beyond.
		ipam["ranges"] = []any{[]any{map[string]any{"subnet": DefaultRestrictedSubnet}}}
		ptp["ipMasq"] = false
	default:
		return nil
	}
	return &netConf{name: name, source: builtinSource(name), masq: masq, raw: map[string]any{
		"cniVersion": cniVersion,
		"name":       name,
		"plugins":    []any{ptp},
	}}
}

// resolveNets turns the requests into the ordered configurations to join
// and their CNI arguments: user's lists as they are, built-in networks as
// builtinConf makes them.
func resolveNets(reqs []netconf.Request, user []*netconf.List) ([]*netConf, []string, error) {
	joins, err := netconf.Resolve(reqs, user)
	if err != nil {
		return nil, nil, err
	}
	confs := make([]*netConf, 0, len(joins))
	args := make([]string, 0, len(joins))
	for _, j := range joins {
		c := builtinConf(j.Name)
		if j.List != nil {
			c = &netConf{name: j.List.Name, source: j.List.Source, raw: j.List.Raw}
		}
		confs = append(confs, c)
		args = append(args, j.Args)
	}
	return confs, args, nil
}
