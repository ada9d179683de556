package network

import (
	"fmt"
	"os"
	"strings"

	"github.com/appc/spec/schema"
)

// ParentMountNS names the mount namespace of this process's parent, or ""
// if it cannot be opened. stage0 execs stage1's run entrypoint in place
// right after unsharing the pod's private mount namespace, so the parent
// (whoever ran rkt) is in the namespace where `rkt gc` runs later; stage0
// runs the gc entrypoint as its own child.
func ParentMountNS() string {
	p := fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid())
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	f.Close()
	return p
}

// ForStage1 is the Config of stage1's run entrypoint for a pod: nets from
// the runtime config (or --net), ports from the pod manifest, plugins from
// the stage1 image, net.d and the host, and the namespace pinned where
// stage0 ran.
func ForStage1(podDir, uuid, localConfig string, nets []string, pm *schema.PodManifest, debug bool) (Config, error) {
	cfg := Config{PodDir: podDir, UUID: uuid, LocalConfig: localConfig, Nets: nets,
		HostMountNS: ParentMountNS(), Debug: debug}
	if pm != nil {
		ports, err := PortsFromManifest(pm)
		if err != nil {
			return Config{}, err
		}
		cfg.Ports = ports
	}
	return cfg, nil
}

// TeardownForStage1 is the TeardownConfig of stage1's gc entrypoint.
func TeardownForStage1(podDir, localConfig string, debug bool) TeardownConfig {
	return TeardownConfig{PodDir: podDir, LocalConfig: localConfig, HostMountNS: ParentMountNS(), Debug: debug}
}

// ResolvConf renders the DNS settings the plugins returned as a
// resolv.conf, or "" when they returned none.
func (p *Pod) ResolvConf() string {
	if len(p.DNS.Nameservers) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("# written by rkt from the pod's CNI networks\n")
	if p.DNS.Domain != "" {
		fmt.Fprintf(&b, "domain %s\n", p.DNS.Domain)
	}
	if len(p.DNS.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(p.DNS.Search, " "))
	}
	for _, ns := range p.DNS.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(p.DNS.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(p.DNS.Options, " "))
	}
	return b.String()
}
