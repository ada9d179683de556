package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// Names with a meaning of their own in --net.
const (
	NetDefault           = "default"
	NetDefaultRestricted = "default-restricted"
	NetHost              = "host"
	NetNone              = "none"
	NetAll               = "all"
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

// loadUserConfs reads every network configuration in dir (*.conf holding
// one plugin, *.conflist holding a list; *.json is either), in file name
// order. A file that does not parse is an error naming it: a pod must not
// silently run without a network its owner configured.
func loadUserConfs(dir string) ([]*netConf, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network configurations: %w", err)
	}
	var confs []*netConf
	byName := map[string]string{}
	for _, e := range entries { // ReadDir sorts by name
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".conf" && ext != ".conflist" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		c, err := loadUserConf(path, ext)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadConfig, path, err)
		}
		if prev, dup := byName[c.name]; dup {
			return nil, fmt.Errorf("%w: %s: network %q is already defined in %s", ErrBadConfig, path, c.name, prev)
		}
		byName[c.name] = path
		confs = append(confs, c)
	}
	return confs, nil
}

func loadUserConf(path, ext string) (*netConf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	name, _ := raw["name"].(string)
	if name == "" {
		return nil, errors.New(`no "name"`)
	}
	if v, _ := raw["cniVersion"].(string); v == "" {
		return nil, errors.New(`no "cniVersion"`)
	}
	if reserved(name) {
		return nil, fmt.Errorf("network name %q is reserved", name)
	}
	_, isList := raw["plugins"]
	if ext == ".conflist" && !isList {
		return nil, errors.New(`a .conflist needs "plugins"`)
	}
	if !isList {
		if t, _ := raw["type"].(string); t == "" {
			return nil, errors.New(`no plugin "type"`)
		}
		ver, _ := raw["cniVersion"].(string)
		raw = map[string]any{"cniVersion": ver, "name": name, "plugins": []any{raw}}
	}
	c := &netConf{name: name, source: path, raw: raw}
	if _, err := c.list(); err != nil {
		return nil, err
	}
	for i, p := range c.plugins() {
		if t, _ := p["type"].(string); t == "" {
			return nil, fmt.Errorf("plugin %d has no \"type\"", i)
		}
	}
	return c, nil
}

// reserved names cannot be used by a user network: they mean something
// else on the command line. default and default-restricted may be
// redefined in net.d, as rkt allowed.
func reserved(name string) bool {
	return name == NetHost || name == NetNone || name == NetAll
}

// netRequest is one parsed --net entry.
type netRequest struct {
	name string
	// args is the part after the colon, "IP=10.1.0.5;K=V", passed to the
	// plugins as CNI_ARGS.
	args string
}

// parseNets parses RuntimeConfig.Nets.
func parseNets(nets []string) ([]netRequest, error) {
	if len(nets) == 0 {
		nets = []string{NetDefault}
	}
	var reqs []netRequest
	seen := map[string]bool{}
	for _, n := range nets {
		name, args, _ := strings.Cut(n, ":")
		if name == "" {
			return nil, fmt.Errorf("%w: empty network name in %q", ErrBadConfig, n)
		}
		if _, err := cniArgs(args); err != nil {
			return nil, fmt.Errorf("%w: --net=%s: %v", ErrBadConfig, n, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: network %q given twice", ErrBadConfig, name)
		}
		seen[name] = true
		reqs = append(reqs, netRequest{name: name, args: args})
	}
	for _, r := range reqs {
		if (r.name == NetHost || r.name == NetNone) && len(reqs) > 1 {
			return nil, fmt.Errorf("%w: --net=%s cannot be combined with other networks", ErrBadConfig, r.name)
		}
		if (r.name == NetHost || r.name == NetNone || r.name == NetAll) && r.args != "" {
			return nil, fmt.Errorf("%w: --net=%s takes no arguments", ErrBadConfig, r.name)
		}
	}
	return reqs, nil
}

// cniArgs splits "K=V;K=V" into CNI_ARGS pairs. IgnoreUnknown lets a
// plugin skip the keys meant for another plugin of the list.
func cniArgs(s string) ([][2]string, error) {
	if s == "" {
		return nil, nil
	}
	out := [][2]string{{"IgnoreUnknown", "1"}}
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q is not KEY=VALUE", kv)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// resolveNets turns the requests into the ordered list of configurations
// to join. user holds net.d's networks in file name order.
func resolveNets(reqs []netRequest, user []*netConf) ([]*netConf, []string, error) {
	byName := map[string]*netConf{}
	for _, c := range user {
		byName[c.name] = c
	}
	lookup := func(name string) *netConf {
		if c, ok := byName[name]; ok {
			return c
		}
		return builtinConf(name)
	}
	var confs []*netConf
	var args []string
	have := map[string]bool{}
	add := func(c *netConf, a string) {
		if !have[c.name] {
			have[c.name] = true
			confs = append(confs, c)
			args = append(args, a)
		}
	}
	for _, r := range reqs {
		if r.name == NetAll {
			for _, c := range user {
				add(c, "")
			}
			if !have[NetDefault] {
				add(lookup(NetDefault), "")
			}
			continue
		}
		c := lookup(r.name)
		if c == nil {
			known := []string{NetDefault, NetDefaultRestricted}
			for _, u := range user {
				known = append(known, u.name)
			}
			sort.Strings(known)
			return nil, nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownNetwork, r.name, strings.Join(known, ", "))
		}
		add(c, r.args)
	}
	// A pod without the default network still gets the restricted one, so
	// that it can reach the host (the metadata service) as in rkt.
	if !have[NetDefault] {
		add(lookup(NetDefaultRestricted), "")
	}
	return confs, args, nil
}

// CheckNets tells, without touching the host, whether Setup could resolve
// nets (RuntimeConfig.Nets): the arguments parse, every name is built in
// or configured in localConfig/net.d, and every net.d file is well formed.
// stage0 calls it so that a typo fails before a pod exists.
func CheckNets(localConfig string, nets []string) error {
	reqs, err := parseNets(nets)
	if err != nil {
		return err
	}
	if reqs[0].name == NetHost || reqs[0].name == NetNone {
		return nil
	}
	dir := filepath.Join(localConfig, "net.d")
	user, err := loadUserConfs(dir)
	if err != nil {
		return err
	}
	if _, _, err := resolveNets(reqs, user); err != nil {
		return fmt.Errorf("%w, networks are looked for in %s", err, dir)
	}
	return nil
}
