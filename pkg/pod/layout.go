// Package pod owns the on-disk layout of a pod directory, the contract that
// stage0, both stage1 flavors and the CLI share. It follows rkt's layout so
// that a stage1 written for rkt finds its files where it expects them:
//
//	DIR/pods/STATE/UUID/            the pod directory (STATE below)
//	  pod                           the pod manifest (every RuntimeApp has App set)
//	  pod-created                   empty; its mtime is the creation time
//	  runtime-config                the run flags as JSON (RuntimeConfig)
//	  stage1TreeStoreID             tree store ID of the stage1 image
//	  stage1/manifest               the stage1 image manifest
//	  stage1/rootfs/                stage1's root (an overlay, or a copy)
//	    opt/stage2/APP/rootfs/      each app's root
//	    rkt/status/APP              the app's exit code, written by stage1
//	    rkt/env/APP                 the app's environment
//	  appsinfo/APP/manifest         the app's image manifest
//	  appsinfo/APP/treeStoreID      the app's tree store ID
//	  overlay/TREEID/{upper,work}   overlayfs dirs, when overlay is used
//	  overlay-prepared              present when overlay is used
//	  pid | ppid                    written by stage1 once the pod runs
//	  netns, net-info.json          written by stage1 networking
//
// States move by rename(2): embryo → prepare → prepared → run, or embryo →
// run; run → exited-garbage → (removed); a failed prepare → garbage.
package pod

import (
	"path/filepath"
)

// State is the directory a pod lives under, one per lifecycle state.
type State string

// The pod states, named after their directories under DIR/pods.
const (
	Embryo        State = "embryo"
	Preparing     State = "prepare"
	Prepared      State = "prepared"
	Run           State = "run"
	ExitedGarbage State = "exited-garbage"
	Garbage       State = "garbage"
)

// States lists every state directory, in lifecycle order.
var States = []State{Embryo, Preparing, Prepared, Run, ExitedGarbage, Garbage}

// Fixed names inside a pod directory.
const (
	ManifestFile      = "pod"
	CreatedFile       = "pod-created"
	RuntimeConfigFile = "runtime-config"
	Stage1TreeIDFile  = "stage1TreeStoreID"
	PIDFile           = "pid"
	PPIDFile          = "ppid"
	SubcgroupFile     = "subcgroup"
	NetInfoFile       = "net-info.json"
	NetnsFile         = "netns"
	OverlayPrepared   = "overlay-prepared"
)

// PodsDir is DIR/pods.
func PodsDir(dataDir string) string { return filepath.Join(dataDir, "pods") }

// StateDir is DIR/pods/STATE.
func StateDir(dataDir string, s State) string { return filepath.Join(PodsDir(dataDir), string(s)) }

// Dir is DIR/pods/STATE/UUID.
func Dir(dataDir string, s State, uuid string) string {
	return filepath.Join(StateDir(dataDir, s), uuid)
}

// Stage1RootfsPath is the stage1 root inside a pod directory.
func Stage1RootfsPath(podDir string) string { return filepath.Join(podDir, "stage1", "rootfs") }

// Stage1ManifestPath is the stage1 image manifest inside a pod directory.
func Stage1ManifestPath(podDir string) string { return filepath.Join(podDir, "stage1", "manifest") }

// AppRootfsPath is the root of app inside the pod directory.
func AppRootfsPath(podDir, app string) string {
	return filepath.Join(Stage1RootfsPath(podDir), "opt", "stage2", app, "rootfs")
}

// AppRootfsInStage1 is the root of app as seen from inside stage1.
func AppRootfsInStage1(app string) string { return filepath.Join("/opt/stage2", app, "rootfs") }

// VolumesInStage1 is where the default stage1 keeps the pod's volumes,
// one entry per volume name, as seen from inside stage1; apps get theirs
// bound from there.
const VolumesInStage1 = "/rkt/volumes"

// VolumeInStage1 is volume name's place below VolumesInStage1.
func VolumeInStage1(name string) string { return filepath.Join(VolumesInStage1, name) }

// AppStatusPath is where stage1 records the exit code of app.
func AppStatusPath(podDir, app string) string {
	return filepath.Join(Stage1RootfsPath(podDir), "rkt", "status", app)
}

// AppEnvPath is where stage0 writes the environment of app.
func AppEnvPath(podDir, app string) string {
	return filepath.Join(Stage1RootfsPath(podDir), "rkt", "env", app)
}

// AppInfoDir is appsinfo/APP.
func AppInfoDir(podDir, app string) string { return filepath.Join(podDir, "appsinfo", app) }

// AppImageManifestPath is appsinfo/APP/manifest.
func AppImageManifestPath(podDir, app string) string {
	return filepath.Join(AppInfoDir(podDir, app), "manifest")
}

// AppTreeStoreIDPath is appsinfo/APP/treeStoreID.
func AppTreeStoreIDPath(podDir, app string) string {
	return filepath.Join(AppInfoDir(podDir, app), "treeStoreID")
}

// OverlayDir is overlay/TREEID, holding upper and work directories.
func OverlayDir(podDir, treeID string) string { return filepath.Join(podDir, "overlay", treeID) }

// RuntimeConfig is what stage0 records in the pod directory's
// runtime-config file for stage1, beyond the pod manifest (apps, volumes,
// ports, isolators, annotations) and stage1's arguments. It is written once
// at prepare or run time and only read afterwards.
type RuntimeConfig struct {
	Debug       bool   `json:"debug,omitempty"`
	Mutable     bool   `json:"mutable,omitempty"`
	Interactive bool   `json:"interactive,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	// PrivateUsers is --private-users: "" for none, "auto", or "UID[:COUNT]".
	PrivateUsers string `json:"privateUsers,omitempty"`
	// Privileged: the pod may run privileged apps (AppPrivileged), so it
	// gets the host's devices, writable /proc/sys and /sys, and every
	// capability in its bounding set.
	Privileged bool `json:"privileged,omitempty"`
	// IPC is --ipc: "auto" or "" (the stage1 decides: the nspawn flavor
	// gives the pod its own IPC namespace, the fly keeps the host's),
	// "private", or "parent" (the host's System V IPC and POSIX message
	// queues). Stage1s of interface version 6 get it as --ipc.
	IPC      string `json:"ipc,omitempty"`
	MDSToken string `json:"mdsToken,omitempty"`
	// MDSPort is the metadata service's TCP port when the pod registered
	// with it (--mds-register); stage1 builds AC_METADATA_URL from the
	// token, this port and the host's address as the pod sees it.
	MDSPort int `json:"mdsPort,omitempty"`
	// MDSSocket is the service's registration socket, on which stage1
	// binds the registration to the pod's addresses once its networks
	// are up (a leaked token is then useless from anywhere else).
	MDSSocket string `json:"mdsSocket,omitempty"`
	// Nets is the parsed --net list: "default", "host", "none",
	// "NAME:K=V;K=V", in the order given.
	Nets []string  `json:"nets,omitempty"`
	DNS  DNSConfig `json:"dns"`
	// InsecureOptions lists the security features turned off for the pod.
	InsecureOptions InsecureRunOptions `json:"insecureOptions"`
}

// DNSConfig holds --dns, --dns-search, --dns-opt, --dns-domain and
// --hosts-entry.
type DNSConfig struct {
	// Servers are addresses, or the single word "host" (copy the host's
	// resolv.conf) or "none" (write nothing, leave the image's).
	Servers []string `json:"servers,omitempty"`
	Search  []string `json:"search,omitempty"`
	Options []string `json:"options,omitempty"`
	Domain  string   `json:"domain,omitempty"`
	// HostsEntries maps an IP to host names; the single key "host" copies
	// the host's /etc/hosts.
	HostsEntries map[string][]string `json:"hostsEntries,omitempty"`
}

// InsecureRunOptions are the run-time parts of --insecure-options.
type InsecureRunOptions struct {
	DisableCapabilities bool `json:"disableCapabilities,omitempty"`
	DisablePaths        bool `json:"disablePaths,omitempty"`
	DisableSeccomp      bool `json:"disableSeccomp,omitempty"`
}
