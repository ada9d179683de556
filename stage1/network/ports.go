package network

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/appc/spec/schema"
)

// PortMapping forwards a host port to a port of the pod, in the form the
// portmap plugin takes as its portMappings capability.
type PortMapping struct {
	// Name is the port's name in the app manifest, when it has one; only
	// for messages.
	Name          string `json:"-"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (p PortMapping) String() string {
	host := strconv.Itoa(p.HostPort)
	if p.HostIP != "" {
		host = net.JoinHostPort(p.HostIP, host)
	}
	what := fmt.Sprintf("%s/%d", p.Protocol, p.ContainerPort)
	if p.Name != "" {
		what = fmt.Sprintf("%s (%s)", p.Name, what)
	}
	return fmt.Sprintf("host port %s to %s", host, what)
}

// PortsFromManifest resolves the pod manifest's exposed ports (--port) to
// mappings: a port given with its pod port (--port=PROTO:PODPORT:HOSTPORT)
// as is, a named one through the app manifests' ports.
func PortsFromManifest(pm *schema.PodManifest) ([]PortMapping, error) {
	var out []PortMapping
	for _, ep := range pm.Ports {
		m := PortMapping{Name: string(ep.Name), HostPort: int(ep.HostPort)}
		if ep.HostIP != nil && !ep.HostIP.IsUnspecified() {
			m.HostIP = ep.HostIP.String()
		}
		p := ep.PodPort
		if p == nil {
			for _, ra := range pm.Apps {
				if ra.App == nil {
					continue
				}
				for i := range ra.App.Ports {
					if ra.App.Ports[i].Name == ep.Name {
						p = &ra.App.Ports[i]
						break
					}
				}
				if p != nil {
					break
				}
			}
		}
		if p == nil {
			return nil, fmt.Errorf("%w: port %q is not named by any app of the pod", ErrBadConfig, ep.Name)
		}
		if p.Count > 1 {
			return nil, fmt.Errorf("%w: port %q is a range of %d ports; only single ports can be forwarded", ErrBadConfig, ep.Name, p.Count)
		}
		m.ContainerPort = int(p.Port)
		m.Protocol = p.Protocol
		if m.Protocol == "" {
			m.Protocol = "tcp"
		}
		if err := m.validate(); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (p PortMapping) validate() error {
	if p.Protocol != "tcp" && p.Protocol != "udp" && p.Protocol != "sctp" {
		return fmt.Errorf("%w: %s: protocol must be tcp, udp or sctp", ErrBadConfig, p)
	}
	if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
		return fmt.Errorf("%w: %s: ports must be 1 to 65535", ErrBadConfig, p)
	}
	if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
		return fmt.Errorf("%w: %s: bad host IP", ErrBadConfig, p)
	}
	return nil
}

// checkHostPorts refuses a mapping whose host port a process on the host
// already listens on: portmap would silently steal its traffic. A pod
// mapping the port of another pod is not detected here (no socket), but
// two pods asking for one port on one IP is a conflict the user made.
func checkHostPorts(ports []PortMapping) error {
	for _, p := range ports {
		if err := p.validate(); err != nil {
			return err
		}
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		var err error
		switch p.Protocol {
		case "tcp":
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		case "udp":
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %s: already in use on the host", ErrPortInUse, p)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadConfig, p, err)
		}
	}
	return nil
}
