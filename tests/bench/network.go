package main

// Network figures: what joining the default network costs a pod, measured
// on stage1/network's Setup and Teardown directly with the plugins make
// built (the same calls the nspawn stage1 makes before and after the pod),
// each beside a pod that gets only a namespace and loopback (--net=none)
// in the same run. Leases and namespaces go to the bench's work directory.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/rktng/rkt/stage1/network"
)

func init() {
	addFigure(figure{name: "network: Setup, default (ptp+host-local+masq)", order: 500,
		goal: "default adds < 30ms over none",
		run: func(b *bench) (sample, sample, error) {
			return netFigure(b, "default:IP="+unusedDefaultIP(), func(s, _ time.Duration) time.Duration { return s })
		}})
	addFigure(figure{name: "network: Setup, default + one --port (portmap)", order: 503,
		run: func(b *bench) (sample, sample, error) {
			ports := []network.PortMapping{{HostPort: freeBenchPort(), ContainerPort: 8080, Protocol: "tcp"}}
			ours, err := netRounds(b, b.buildDir+"/cni-plugins", "default:IP="+unusedDefaultIP(), ports, func(s, _ time.Duration) time.Duration { return s })
			if err != nil {
				return sample{}, sample{}, err
			}
			ref, err := netRounds(b, b.buildDir+"/cni-plugins", "default:IP="+unusedDefaultIP(), nil, func(s, _ time.Duration) time.Duration { return s })
			if err != nil {
				return sample{}, sample{}, err
			}
			return sample{label: "default + port", value: ours}, sample{label: "default", value: ref}, nil
		}})
	addFigure(figure{name: "network: Setup, default, masquerade kept by another pod", order: 504,
		run: func(b *bench) (sample, sample, error) {
			plugins := filepath.Join(b.buildDir, "cni-plugins")
			setup := func(s, _ time.Duration) time.Duration { return s }
			alone, err := netRounds(b, plugins, "default:IP="+unusedDefaultIP(), nil, setup)
			if err != nil {
				return sample{}, sample{}, err
			}
			// The other pod's lease keeps the chain between the rounds,
			// so that each one only checks for it.
			stop, err := netKeeper(b, plugins)
			if err != nil {
				return sample{}, sample{}, err
			}
			beside, err := netRounds(b, plugins, "default:IP="+unusedDefaultIP(), nil, setup)
			if serr := stop(); err == nil {
				err = serr
			}
			if err != nil {
				return sample{}, sample{}, err
			}
			return sample{label: "beside another pod", value: beside}, sample{label: "alone (makes the chain)", value: alone}, nil
		}})
	addFigure(figure{name: "network: rkt run inspect -exit=0, --net=default", order: 502,
		goal: "default adds < 30ms over host",
		run:  podNetFigure})
	addFigure(figure{name: "network: Teardown, default", order: 501,
		run: func(b *bench) (sample, sample, error) {
			return netFigure(b, "default:IP="+unusedDefaultIP(), func(_, t time.Duration) time.Duration { return t })
		}})
}

// unusedDefaultIP is an address of the default range that no pod on this
// host holds, as the figures keep their own leases.
func unusedDefaultIP() string {
	for i := 254; i > 100; i-- {
		ip := fmt.Sprintf("172.16.28.%d", i)
		out, _ := exec.Command("ip", "route", "show", "exact", ip+"/32").Output()
		if _, err := os.Stat(filepath.Join("/var/lib/cni/networks/default", ip)); len(out) == 0 && err != nil {
			return ip
		}
	}
	return "172.16.28.240"
}

// netFigure measures b.runs Setup+Teardown rounds of nets and of "none",
// and returns the medians pick chooses from each round.
func netFigure(b *bench, nets string, pick func(setup, teardown time.Duration) time.Duration) (sample, sample, error) {
	if os.Geteuid() != 0 {
		return sample{}, sample{}, fmt.Errorf("needs root")
	}
	plugins := filepath.Join(b.buildDir, "cni-plugins")
	if _, err := os.Stat(filepath.Join(plugins, "ptp")); err != nil {
		return sample{}, sample{}, fmt.Errorf("CNI plugins not built: %w", err)
	}
	ours, err := netRounds(b, plugins, nets, nil, pick)
	if err != nil {
		return sample{}, sample{}, err
	}
	ref, err := netRounds(b, plugins, "none", nil, pick)
	if err != nil {
		return sample{}, sample{}, err
	}
	return sample{label: nets, value: ours}, sample{label: "--net=none (netns + lo)", value: ref}, nil
}

// freeBenchPort is a TCP port nothing on the host listens on.
func freeBenchPort() int {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 38080
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func netRounds(b *bench, plugins, nets string, ports []network.PortMapping, pick func(setup, teardown time.Duration) time.Duration) (time.Duration, error) {
	ctx := context.Background()
	root, err := os.MkdirTemp(b.work, "net-")
	if err != nil {
		return 0, err
	}
	var d []time.Duration
	for i := 0; i < b.runs; i++ {
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		h := hex.EncodeToString(id)
		uuid := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		podDir := filepath.Join(root, uuid)
		if err := os.MkdirAll(podDir, 0o755); err != nil {
			return 0, err
		}
		cfg := network.Config{PodDir: podDir, UUID: uuid, LocalConfig: filepath.Join(root, "conf"),
			Nets: []string{nets}, PluginDirs: []string{plugins}, Ports: ports,
			NetnsDir: filepath.Join(root, "netns"), IPAMDataDir: filepath.Join(root, "ipam")}
		start := time.Now()
		if _, err := network.Setup(ctx, cfg); err != nil {
			return 0, err
		}
		setup := time.Since(start)
		start = time.Now()
		if err := network.Teardown(ctx, network.TeardownConfig{PodDir: podDir, PluginDirs: []string{plugins}}); err != nil {
			return 0, err
		}
		d = append(d, pick(setup, time.Since(start)))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], nil
}

// netKeeper puts one pod on the default network, in a directory of its
// own, and returns what takes it down.
func netKeeper(b *bench, plugins string) (func() error, error) {
	root, err := os.MkdirTemp(b.work, "net-keeper-")
	if err != nil {
		return nil, err
	}
	uuid := "6b656570-6572-4000-8000-" + fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
	podDir := filepath.Join(root, uuid)
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return nil, err
	}
	cfg := network.Config{PodDir: podDir, UUID: uuid, LocalConfig: filepath.Join(root, "conf"),
		Nets: []string{"default:IP=" + unusedDefaultIP()}, PluginDirs: []string{plugins},
		NetnsDir: filepath.Join(root, "netns"), IPAMDataDir: filepath.Join(root, "ipam")}
	if _, err := network.Setup(context.Background(), cfg); err != nil {
		return nil, err
	}
	return func() error {
		return network.Teardown(context.Background(), network.TeardownConfig{PodDir: podDir, PluginDirs: []string{plugins}})
	}, nil
}

// podNetFigure times whole pods under the default stage1, start to exit,
// joining the default network against sharing the host's: the network's
// share of a pod's life as a user sees it.
func podNetFigure(b *bench) (sample, sample, error) {
	if _, err := os.Stat(b.image("stage1.aci")); err != nil {
		return sample{}, sample{}, fmt.Errorf("the default stage1 is not built: %w", err)
	}
	dir := b.tmp("net-pods")
	rkt := func(args ...string) error {
		cmd := exec.Command(b.rkt(), append([]string{"--dir=" + dir, "--local-config=" + filepath.Join(dir, "conf"),
			"--insecure-options=image"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("rkt %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := rkt("fetch", b.image("inspect.aci")); err != nil {
		return sample{}, sample{}, err
	}
	measure := func(net string) (time.Duration, error) {
		var d []time.Duration
		for i := 0; i < b.runs; i++ {
			start := time.Now()
			if err := rkt("run", "--net="+net, b.image("inspect.aci"), "--", "-exit=0"); err != nil {
				return 0, err
			}
			d = append(d, time.Since(start))
			if err := rkt("gc", "--grace-period=0s"); err != nil {
				return 0, err
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2], nil
	}
	// Warm the caches (stage1 import, tree store) before either side.
	if err := rkt("run", "--net=host", b.image("inspect.aci"), "--", "-exit=0"); err != nil {
		return sample{}, sample{}, err
	}
	host, err := measure("host")
	if err != nil {
		return sample{}, sample{}, err
	}
	def, err := measure("default")
	if err != nil {
		return sample{}, sample{}, err
	}
	return sample{label: "--net=default", value: def}, sample{label: "--net=host", value: host}, nil
}
