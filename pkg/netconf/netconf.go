// Package netconf owns what a pod's --net means before any network is
// joined: the network names with a meaning of their own, the parsing of
// --net requests and their CNI arguments, and the user's network
// configurations in net.d (loaded, validated, resolved by name). stage0
// uses it to refuse a bad --net before a pod exists; the default stage1's
// network package uses it to decide what to join, and does the joining.
package netconf

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
	Default           = "default"
	DefaultRestricted = "default-restricted"
	Host              = "host"
	None              = "none"
	All               = "all"
)

var (
	// ErrUnknownNetwork: --net named a network that is neither built in
	// nor configured in net.d.
	ErrUnknownNetwork = errors.New("unknown network")
	// ErrBadConfig: a malformed net.d file, --net or --port argument.
	ErrBadConfig = errors.New("bad network configuration")
)

// Dir is where the user's network configurations are kept, below the
// local configuration directory.
func Dir(localConfig string) string { return filepath.Join(localConfig, "net.d") }

// Request is one parsed --net entry.
type Request struct {
	Name string
	// Args is the part after the colon, "IP=10.1.0.5;K=V", passed to the
	// plugins as CNI_ARGS.
	Args string
}

// ParseRequests parses --net entries (a pod's RuntimeConfig.Nets); none
// means the default network.
func ParseRequests(nets []string) ([]Request, error) {
	if len(nets) == 0 {
		nets = []string{Default}
	}
	var reqs []Request
	seen := map[string]bool{}
	for _, n := range nets {
		name, args, _ := strings.Cut(n, ":")
		if name == "" {
			return nil, fmt.Errorf("%w: empty network name in %q", ErrBadConfig, n)
		}
		if _, err := CNIArgs(args); err != nil {
			return nil, fmt.Errorf("%w: --net=%s: %v", ErrBadConfig, n, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: network %q given twice", ErrBadConfig, name)
		}
		seen[name] = true
		reqs = append(reqs, Request{Name: name, Args: args})
	}
	for _, r := range reqs {
		if (r.Name == Host || r.Name == None) && len(reqs) > 1 {
			return nil, fmt.Errorf("%w: --net=%s cannot be combined with other networks", ErrBadConfig, r.Name)
		}
		if (r.Name == Host || r.Name == None || r.Name == All) && r.Args != "" {
			return nil, fmt.Errorf("%w: --net=%s takes no arguments", ErrBadConfig, r.Name)
		}
	}
	return reqs, nil
}

// CNIArgs splits "K=V;K=V" into CNI_ARGS pairs. IgnoreUnknown lets a
// plugin skip the keys meant for another plugin of the list.
func CNIArgs(s string) ([][2]string, error) {
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

// List is one network's configuration list from net.d, as raw JSON maps
// so that fields we do not know survive untouched. A .conf file's single
// plugin is wrapped in a list.
type List struct {
	Name string
	// Source is the file it came from, for messages.
	Source string
	Raw    map[string]any
}

// Load reads every network configuration in dir (*.conf holding one
// plugin, *.conflist holding a list; *.json is either), in file name
// order; a missing dir holds none. A file that does not parse is an error
// naming it: a pod must not silently run without a network its owner
// configured.
func Load(dir string) ([]*List, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network configurations: %w", err)
	}
	var lists []*List
	byName := map[string]string{}
	for _, e := range entries { // ReadDir sorts by name
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".conf" && ext != ".conflist" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		l, err := loadFile(path, ext)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadConfig, path, err)
		}
		if prev, dup := byName[l.Name]; dup {
			return nil, fmt.Errorf("%w: %s: network %q is already defined in %s", ErrBadConfig, path, l.Name, prev)
		}
		byName[l.Name] = path
		lists = append(lists, l)
	}
	return lists, nil
}

func loadFile(path, ext string) (*List, error) {
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
	// libcni's own parse is the validation that counts: it is what the
	// plugins will be called with.
	lb, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	if _, err := libcni.NetworkConfFromBytes(lb); err != nil {
		return nil, err
	}
	plugins, _ := raw["plugins"].([]any)
	for i, p := range plugins {
		m, _ := p.(map[string]any)
		if t, _ := m["type"].(string); t == "" {
			return nil, fmt.Errorf("plugin %d has no \"type\"", i)
		}
	}
	return &List{Name: name, Source: path, Raw: raw}, nil
}

// reserved names cannot be used by a user network: they mean something
// else on the command line. default and default-restricted may be
// redefined in net.d, as rkt allowed.
func reserved(name string) bool {
	return name == Host || name == None || name == All
}

// Join is one network a pod joins, in order: a list from net.d, or (List
// nil) the built-in network Name (Default or DefaultRestricted).
type Join struct {
	Name string
	Args string
	List *List
}

// Resolve turns requests (not host or none) into the ordered networks to
// join. user holds net.d's lists in file name order. A pod without the
// default network still gets the restricted one, so that it can reach the
// host (the metadata service), as in rkt.
func Resolve(reqs []Request, user []*List) ([]Join, error) {
	byName := map[string]*List{}
	for _, l := range user {
		byName[l.Name] = l
	}
	lookup := func(name string) (Join, bool) {
		if l, ok := byName[name]; ok {
			return Join{Name: name, List: l}, true
		}
		return Join{Name: name}, name == Default || name == DefaultRestricted
	}
	var joins []Join
	have := map[string]bool{}
	add := func(j Join, args string) {
		if !have[j.Name] {
			have[j.Name] = true
			j.Args = args
			joins = append(joins, j)
		}
	}
	for _, r := range reqs {
		if r.Name == All {
			for _, l := range user {
				add(Join{Name: l.Name, List: l}, "")
			}
			if !have[Default] {
				j, _ := lookup(Default)
				add(j, "")
			}
			continue
		}
		j, ok := lookup(r.Name)
		if !ok {
			known := []string{Default, DefaultRestricted}
			for _, l := range user {
				known = append(known, l.Name)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownNetwork, r.Name, strings.Join(known, ", "))
		}
		add(j, r.Args)
	}
	if !have[Default] {
		j, _ := lookup(DefaultRestricted)
		add(j, "")
	}
	return joins, nil
}

// Check tells, without touching the host, whether a pod could join nets
// (RuntimeConfig.Nets): the arguments parse, every name is built in or
// configured in localConfig's net.d, and every net.d file is well formed.
func Check(localConfig string, nets []string) error {
	reqs, err := ParseRequests(nets)
	if err != nil {
		return err
	}
	if reqs[0].Name == Host || reqs[0].Name == None {
		return nil
	}
	dir := Dir(localConfig)
	user, err := Load(dir)
	if err != nil {
		return err
	}
	if _, err := Resolve(reqs, user); err != nil {
		return fmt.Errorf("%w, networks are looked for in %s", err, dir)
	}
	return nil
}
