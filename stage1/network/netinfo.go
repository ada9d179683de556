package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rktng/rkt/pkg/pod"
)

// NetInfo is one network the pod joined (or was about to join), as recorded
// in the pod directory's net-info.json. The first fields are rkt's; `rkt
// list` and `rkt status` print them.
type NetInfo struct {
	NetName string `json:"netName"`
	// NetConf is where the configuration came from: a net.d file, or
	// "built-in network NAME".
	NetConf    string `json:"netConf"`
	PluginPath string `json:"pluginPath"`
	IfName     string `json:"ifName"`
	IP         string `json:"ip,omitempty"`
	Mask       string `json:"mask,omitempty"`
	Args       string `json:"args,omitempty"`
	// Gateway is the pod's next hop on this network (for ptp, the host's
	// end of the link).
	Gateway string `json:"gateway,omitempty"`
	// IPs lists every address the plugins gave, in CIDR form.
	IPs []string `json:"ips,omitempty"`
	// PortMappings are the host ports forwarded over this network; CNI DEL
	// needs them again.
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// Config is the configuration list actually used, so that teardown
	// does not depend on net.d staying the same.
	Config json.RawMessage `json:"config"`
	// Joined is false while CNI ADD has not returned: teardown still runs
	// DEL for it, as a pod killed during setup may hold half of it.
	Joined bool `json:"joined"`
}

// confDir is where the pod keeps libcni's result cache.
func confDir(podDir string) string { return filepath.Join(podDir, "net") }

// ReadNetInfo returns what net-info.json records; a pod without it (host
// networking, or not started yet) has none.
func ReadNetInfo(podDir string) ([]NetInfo, error) {
	b, err := os.ReadFile(filepath.Join(podDir, pod.NetInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network info: %w", err)
	}
	var nets []NetInfo
	if err := json.Unmarshal(b, &nets); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(podDir, pod.NetInfoFile), err)
	}
	return nets, nil
}

// ReadNetnsPath returns the path recorded in the pod's netns file, or ""
// when the pod has no network namespace of its own.
func ReadNetnsPath(podDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(podDir, pod.NetnsFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read netns file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFileAtomic lands data at path by temp file and rename, so that a
// reader (or a gc after a crash) never sees half a file; with durable it
// is also fsynced first, for what must survive a power loss.
func writeFileAtomic(path string, data []byte, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeNetInfo(podDir string, nets []NetInfo, durable bool) error {
	if nets == nil {
		nets = []NetInfo{}
	}
	b, err := json.MarshalIndent(nets, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(podDir, pod.NetInfoFile), append(b, '\n'), durable); err != nil {
		return fmt.Errorf("write network info: %w", err)
	}
	return nil
}
