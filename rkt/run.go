package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/pkg/mds"
	"github.com/rktng/rkt/pkg/netconf"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/stage0"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// stage1Options are the --stage1-* flags: at most one may be given.
type stage1Options struct {
	Path, URL, Name, Hash, FromDir string
}

// podOptions are the pod-level flags of run and prepare.
type podOptions struct {
	Stage1       stage1Options
	Volumes      []string
	Ports        []string
	Hostname     string
	UUIDFileSave string
	PullPolicy   string
	Interactive  bool
	PodManifest  string
	NoOverlay    bool
	Nets         []string
	DNS          []string
	DNSSearch    []string
	DNSOpt       []string
	DNSDomain    string
	HostsEntries []string
	PrivateUsers string
	IPC          string
	MDSRegister  bool
	MDSSocket    string
	InheritEnv   bool
	SetEnv       []string
	SetEnvFile   []string
	UserAnnot    []string
	UserLabels   []string
}

// addPodFlags registers the pod flags shared by run and prepare.
func addPodFlags(f *pflag.FlagSet, o *podOptions, run bool) {
	f.StringVar(&o.Stage1.Path, "stage1-path", "", "path to the stage1 image")
	f.StringVar(&o.Stage1.URL, "stage1-url", "", "URL of the stage1 image")
	f.StringVar(&o.Stage1.Name, "stage1-name", "", "name (NAME[:VERSION]) of a stage1 image in the store")
	f.StringVar(&o.Stage1.Hash, "stage1-hash", "", "image ID (or unique prefix) of a stage1 image in the store")
	f.StringVar(&o.Stage1.FromDir, "stage1-from-dir", "", "file name of a stage1 image in the stage1 images directory")
	f.StringArrayVar(&o.Volumes, "volume", nil, "NAME,kind=host,source=PATH[,readOnly=BOOL][,recursive=BOOL] or NAME,kind=empty[,mode=M,uid=U,gid=G]")
	f.StringArrayVar(&o.Ports, "port", nil, "NAME:[HOSTIP:]HOSTPORT: forward a host port to the port the image names")
	f.StringVar(&o.Hostname, "hostname", "", "the pod's hostname (default rkt-UUID)")
	f.StringVar(&o.UUIDFileSave, "uuid-file-save", "", "write the pod's UUID to this file")
	f.StringVar(&o.PullPolicy, "pull-policy", string(fetch.PullNew), "when to fetch images: new, update or never")
	f.StringVar(&o.PodManifest, "pod-manifest", "", "a pod manifest to run instead of images and app flags")
	f.BoolVar(&o.NoOverlay, "no-overlay", false, "copy the images' root filesystems into the pod instead of overlaying them")
	f.StringSliceVar(&o.Nets, "net", nil, "networks to join: default, host, none, NAME[:K=V;K=V] (comma-separated or repeated)")
	f.StringSliceVar(&o.DNS, "dns", nil, "name servers for the pod: addresses, or host, or none")
	f.StringSliceVar(&o.DNSSearch, "dns-search", nil, "DNS search domains")
	f.StringSliceVar(&o.DNSOpt, "dns-opt", nil, "DNS resolver options")
	f.StringVar(&o.DNSDomain, "dns-domain", "", "the pod's DNS domain")
	f.StringArrayVar(&o.HostsEntries, "hosts-entry", nil, "IP=HOSTNAME entries for /etc/hosts, or host to use the host's")
	f.StringVar(&o.PrivateUsers, "private-users", "", "run the pod in a user namespace (auto, or UID[:COUNT])")
	f.Lookup("private-users").NoOptDefVal = "auto"
	f.StringVar(&o.IPC, "ipc", "auto", "the pod's IPC namespace: auto (the stage1's choice: its own under the default stage1, the host's under the fly), private, or parent (the host's System V IPC and POSIX message queues; host is the same)")
	f.BoolVar(&o.MDSRegister, "mds-register", false, "register the pod with the metadata service")
	f.StringVar(&o.MDSSocket, "mds-socket", mds.DefaultSocket, "the metadata service's registration socket")
	_ = f.MarkHidden("mds-socket")
	f.BoolVar(&o.InheritEnv, "inherit-env", false, "give apps the environment of rkt (below the images' own)")
	f.StringArrayVar(&o.SetEnv, "set-env", nil, "NAME=VALUE: an environment variable for every app")
	f.StringArrayVar(&o.SetEnvFile, "set-env-file", nil, "a file of NAME=VALUE lines for every app")
	f.StringArrayVar(&o.UserAnnot, "user-annotation", nil, "NAME=VALUE: a user annotation of the pod")
	f.StringArrayVar(&o.UserLabels, "user-label", nil, "NAME=VALUE: a user label of the pod")
	if run {
		f.BoolVar(&o.Interactive, "interactive", false, "run the pod interactively (one app, stdin attached)")
	}
}

func init() {
	register(func() *cobra.Command {
		var o podOptions
		cmd := &cobra.Command{
			Use:   "run [flags] IMAGE [app flags] [-- ARGS] [--- IMAGE [app flags] [-- ARGS]]...",
			Short: "Run images in a new pod",
			Long:  "Run images in a new pod; the pod's exit status is its first app's.\n\n" + appFlagsUsage(),
			RunE: func(cmd *cobra.Command, args []string) error {
				apps, err := parseApps(args, cmd.Flags(), true)
				if err != nil {
					return err
				}
				return runPod(cmd.Context(), &o, apps)
			},
		}
		cmd.Flags().SetInterspersed(false)
		addPodFlags(cmd.Flags(), &o, true)
		addMisplacedAppFlags(cmd.Flags())
		return cmd
	})
}

// runPod is `rkt run`: prepare a pod straight into run/ and exec stage1.
func runPod(ctx context.Context, o *podOptions, apps []*appConfig) error {
	phase("flags parsed")
	p, st, err := preparePod(ctx, o, apps, pod.Run)
	if err != nil {
		return err
	}
	return execPod(p, st, o.MDSSocket)
}

// execPod mounts the pod and execs stage1; on failure the pod is removed.
func execPod(p *stage0.Pod, st *store.Store, mdsSocket string) error {
	cfg, _, err := stage0.RunConfigFor(p.Dir, treeRoot(st))
	if err != nil {
		p.Discard()
		return err
	}
	if err := registerMDS(p, mdsSocket); err != nil {
		p.Discard()
		return err
	}
	cfg.Debug = globals.Debug
	cfg.LocalConfig = globals.LocalConfig
	phase("exec stage1")
	err = stage0.Exec(p, cfg)
	p.Discard()
	return err
}

// treeRoot is the store's tree directory, DIR/cas/tree.
func treeRoot(st *store.Store) string { return filepath.Join(st.Dir(), "tree") }

// preparePod resolves the stage1 and app images and writes a pod in state
// target (run: locked, for exec; prepared: unlocked).
func preparePod(ctx context.Context, o *podOptions, apps []*appConfig, target pod.State) (*stage0.Pod, *store.Store, error) {
	if err := checkPodOptions(o, apps); err != nil {
		return nil, nil, err
	}
	// An interrupt while preparing must still clean up the pod.
	ctx, stop := signal.NotifyContext(ctxOrBackground(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(globals.Dir)
	if err != nil {
		return nil, nil, err
	}
	policy, err := fetch.ParsePullPolicy(o.PullPolicy)
	if err != nil {
		return nil, nil, err
	}
	cfg := stage0.PrepareConfig{DataDir: globals.Dir, NoOverlay: o.NoOverlay}
	if cfg.Stage1, err = resolveStage1(ctx, st, o.Stage1, policy); err != nil {
		return nil, nil, err
	}
	phase("stage1 resolved")
	if o.PodManifest != "" {
		if err := loadPodManifest(ctx, st, o.PodManifest, policy, &cfg); err != nil {
			return nil, nil, err
		}
	} else {
		for _, a := range apps {
			id, err := resolveImageRef(ctx, st, a.Image, a.Signature, policy)
			if err != nil {
				return nil, nil, fmt.Errorf("image %s: %w", a.Image, err)
			}
			img, err := storeImage(ctx, st, id)
			if err != nil {
				return nil, nil, fmt.Errorf("image %s: %w", a.Image, err)
			}
			cfg.Apps = append(cfg.Apps, a.App)
			cfg.Images = append(cfg.Images, img)
		}
	}
	phase("apps resolved")
	if err := podConfig(o, &cfg); err != nil {
		return nil, nil, err
	}
	p, err := stage0.Prepare(ctx, cfg, target)
	if err != nil {
		return nil, nil, err
	}
	phase("pod written")
	if o.UUIDFileSave != "" {
		if err := os.WriteFile(o.UUIDFileSave, []byte(p.UUID), 0o644); err != nil {
			p.Discard()
			return nil, nil, fmt.Errorf("--uuid-file-save: %w", err)
		}
	}
	return p, st, nil
}

func ctxOrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// checkPodOptions refuses conflicting flags before anything is fetched.
func checkPodOptions(o *podOptions, apps []*appConfig) error {
	if err := checkStage1Flags(o.Stage1); err != nil {
		return err
	}
	if o.PodManifest != "" {
		if len(apps) > 0 {
			return errors.New("conflicting flags: --pod-manifest replaces the images and app flags; give one or the other")
		}
		if len(o.Volumes) > 0 || len(o.Ports) > 0 {
			return errors.New("conflicting flags: --pod-manifest already says the pod's volumes and ports; drop --volume and --port")
		}
		return checkNetFlags(o)
	}
	if len(apps) == 0 {
		return errors.New("no image given: rkt run IMAGE [app flags] [--- IMAGE ...]")
	}
	if o.Interactive && len(apps) > 1 {
		return errors.New("conflicting flags: --interactive needs exactly one app")
	}
	return checkNetFlags(o)
}

// checkStage1Flags refuses more than one way of naming the stage1.
func checkStage1Flags(o stage1Options) error {
	n := 0
	for _, v := range []string{o.Path, o.URL, o.Name, o.Hash, o.FromDir} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return errors.New("conflicting flags: give only one of --stage1-path, --stage1-url, --stage1-name, --stage1-hash, --stage1-from-dir")
	}
	return nil
}

// checkNetFlags refuses "host" or "none" beside other values of --dns or
// --net, and an unknown --ipc.
func checkNetFlags(o *podOptions) error {
	switch o.IPC {
	case "", "auto", "private", "parent", "host":
	default:
		return fmt.Errorf("--ipc=%s: want auto, private or parent (or host)", o.IPC)
	}
	for _, d := range o.DNS {
		if (d == "host" || d == "none") && len(o.DNS) > 1 {
			return fmt.Errorf("conflicting flags: --dns=%s cannot be combined with other name servers", d)
		}
	}
	for _, n := range o.Nets {
		if (n == "host" || n == "none") && len(o.Nets) > 1 {
			return fmt.Errorf("conflicting flags: --net=%s cannot be combined with other networks", n)
		}
	}
	return checkNets(o.Nets)
}

// checkNets refuses networks the pod could not join (an unknown name, a
// malformed net.d file) before a pod exists, rather than from stage1 after
// it has started booting. Without --net the pod joins default, which
// always exists but may be redefined in net.d.
func checkNets(nets []string) error {
	if err := netconf.Check(globals.LocalConfig, nets); err != nil {
		return fmt.Errorf("--net: %w", err)
	}
	return nil
}

// storeImage reads an image's manifest and renders its tree; an already
// rendered tree is checked first unless --insecure-options=ondisk.
func storeImage(ctx context.Context, st *store.Store, id string) (stage0.Image, error) {
	st.TrustOnDisk = globals.Insecure.Has(insecureOnDisk)
	m, err := st.Manifest(id)
	if err != nil {
		return stage0.Image{}, err
	}
	t, err := st.Render(ctx, id)
	if err != nil {
		return stage0.Image{}, err
	}
	return stage0.Image{ID: id, Manifest: m, TreeID: t.ID, Rootfs: t.Rootfs()}, nil
}

// resolveStage1 finds the stage1 image from the flags, the stage1.d
// configuration or the build's default, importing files through the
// store's stat cache so that an unchanged image is not hashed again.
func resolveStage1(ctx context.Context, st *store.Store, o stage1Options, policy fetch.PullPolicy) (stage0.Image, error) {
	var id string
	var err error
	switch {
	case o.Path != "":
		id, err = importStage1File(ctx, st, o.Path)
	case o.FromDir != "":
		if strings.Contains(o.FromDir, "/") {
			return stage0.Image{}, fmt.Errorf("--stage1-from-dir=%s: want a file name in %s", o.FromDir, filepath.Dir(defaultStage1Image))
		}
		id, err = importStage1File(ctx, st, stage1FromDir(o.FromDir))
	case o.Name != "":
		id, err = st.Resolve(o.Name)
	case o.Hash != "":
		id, err = st.Resolve(o.Hash)
	case o.URL != "":
		if strings.HasPrefix(o.URL, "file://") {
			id, err = importStage1File(ctx, st, strings.TrimPrefix(o.URL, "file://"))
		} else {
			// Stage1 images come from the build or an administrator:
			// like rkt, don't insist on a signature.
			saved := globals.Insecure
			globals.Insecure |= insecureImage
			id, err = resolveImageRef(ctx, st, o.URL, "", policy)
			globals.Insecure = saved
		}
	default:
		id, err = defaultStage1(ctx, st)
	}
	if err != nil {
		return stage0.Image{}, fmt.Errorf("stage1: %w", err)
	}
	img, err := storeImage(ctx, st, id)
	if err != nil {
		return stage0.Image{}, fmt.Errorf("stage1: %w", err)
	}
	if _, err := stage0.Entrypoint(img.Manifest, "run"); err != nil {
		return stage0.Image{}, fmt.Errorf("stage1 %s is not a stage1: %w", img.Manifest.Name, err)
	}
	return img, nil
}

func importStage1File(ctx context.Context, st *store.Store, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	info, err := st.ImportFile(ctx, abs, store.ImportOptions{SourceURL: "file://" + abs})
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

// stage1FromDir is the path of --stage1-from-dir=NAME: in the configured
// stage1 images directory, else where the build installed its images.
func stage1FromDir(name string) string {
	dir := stage1ImagesDir()
	for _, built := range []string{defaultStage1Image, defaultStage1FlyImage} {
		if name == filepath.Base(built) && dir == filepath.Dir(defaultStage1Image) {
			return built
		}
	}
	return filepath.Join(dir, name)
}

// stage1ImagesDir is where --stage1-from-dir looks: the paths
// configuration, else the directory of the build's default image.
func stage1ImagesDir() string {
	if c, err := loadConfig(); err == nil && c.Paths.Stage1Images != "" {
		return c.Paths.Stage1Images
	}
	return filepath.Dir(defaultStage1Image)
}

// defaultStage1 is the stage1.d configuration's image (by name and
// version in the store, else its location), or the build's default.
func defaultStage1(ctx context.Context, st *store.Store) (string, error) {
	c, err := loadConfig()
	if err != nil {
		return "", err
	}
	if s := c.Stage1; s.Name != "" || s.Location != "" {
		if s.Name != "" {
			ref := s.Name
			if s.Version != "" {
				ref += ":" + s.Version
			}
			if id, err := st.Resolve(ref); err == nil {
				return id, nil
			}
		}
		if s.Location != "" {
			if strings.Contains(s.Location, "://") && !strings.HasPrefix(s.Location, "file://") {
				saved := globals.Insecure
				globals.Insecure |= insecureImage
				defer func() { globals.Insecure = saved }()
				return resolveImageRef(ctx, st, s.Location, "", fetch.PullNew)
			}
			return importStage1File(ctx, st, strings.TrimPrefix(s.Location, "file://"))
		}
	}
	return importStage1File(ctx, st, defaultStage1Image)
}

// loadPodManifest reads --pod-manifest and resolves the images it names.
func loadPodManifest(ctx context.Context, st *store.Store, path string, policy fetch.PullPolicy, cfg *stage0.PrepareConfig) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--pod-manifest: %w", err)
	}
	var pm schema.PodManifest
	if err := json.Unmarshal(b, &pm); err != nil {
		return fmt.Errorf("--pod-manifest %s: %w", path, err)
	}
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		ref := ra.Image.ID.String()
		if ra.Image.ID.Empty() {
			if ra.Image.Name == nil {
				return fmt.Errorf("--pod-manifest %s: app %s names no image", path, ra.Name)
			}
			ref = ra.Image.Name.String()
			for _, l := range ra.Image.Labels {
				ref += "," + l.Name.String() + "=" + l.Value
			}
		}
		id, err := resolveImageRef(ctx, st, ref, "", policy)
		if err != nil {
			return fmt.Errorf("--pod-manifest: app %s: %w", ra.Name, err)
		}
		h, err := types.NewHash(id)
		if err != nil {
			return err
		}
		ra.Image.ID = *h
		img, err := storeImage(ctx, st, id)
		if err != nil {
			return fmt.Errorf("--pod-manifest: app %s: %w", ra.Name, err)
		}
		if ra.Image.Name == nil {
			n := img.Manifest.Name
			ra.Image.Name = &n
		}
		cfg.Images = append(cfg.Images, img)
	}
	cfg.PodManifest = &pm
	return nil
}

// podConfig turns the pod flags into the PrepareConfig and RuntimeConfig.
func podConfig(o *podOptions, cfg *stage0.PrepareConfig) error {
	for _, v := range o.Volumes {
		vol, err := types.VolumeFromString(v)
		if err != nil {
			return fmt.Errorf("--volume=%s: %w", v, err)
		}
		if vol.Kind == "host" {
			if !filepath.IsAbs(vol.Source) {
				return fmt.Errorf("--volume=%s: source must be an absolute path", v)
			}
		}
		cfg.Volumes = append(cfg.Volumes, *vol)
	}
	for _, p := range o.Ports {
		ep, err := parsePort(p)
		if err != nil {
			return fmt.Errorf("--port=%s: %w", p, err)
		}
		cfg.Ports = append(cfg.Ports, ep)
	}
	if o.InheritEnv {
		cfg.InheritEnv = os.Environ()
	}
	for _, f := range o.SetEnvFile {
		env, err := parseEnvFile(f)
		if err != nil {
			return fmt.Errorf("--set-env-file: %w", err)
		}
		for _, ev := range env {
			cfg.SetEnv.Set(ev.Name, ev.Value)
		}
	}
	for _, kv := range o.SetEnv {
		k, v, err := parseKeyValue(kv)
		if err != nil {
			return fmt.Errorf("--set-env=%s: %w", kv, err)
		}
		cfg.SetEnv.Set(k, v)
	}
	for _, kv := range o.UserAnnot {
		k, v, err := parseKeyValue(kv)
		if err != nil {
			return fmt.Errorf("--user-annotation=%s: %w", kv, err)
		}
		if cfg.UserAnnotations == nil {
			cfg.UserAnnotations = types.UserAnnotations{}
		}
		cfg.UserAnnotations[k] = v
	}
	for _, kv := range o.UserLabels {
		k, v, err := parseKeyValue(kv)
		if err != nil {
			return fmt.Errorf("--user-label=%s: %w", kv, err)
		}
		if cfg.UserLabels == nil {
			cfg.UserLabels = types.UserLabels{}
		}
		cfg.UserLabels[k] = v
	}
	rc := &cfg.RuntimeConfig
	rc.Debug = globals.Debug
	rc.Interactive = o.Interactive
	rc.Hostname = o.Hostname
	rc.PrivateUsers = o.PrivateUsers
	rc.IPC = o.IPC
	if rc.IPC == "host" {
		rc.IPC = "parent"
	}
	rc.Nets = o.Nets
	rc.DNS = pod.DNSConfig{Servers: o.DNS, Search: o.DNSSearch, Options: o.DNSOpt, Domain: o.DNSDomain}
	for _, d := range o.DNS {
		if d != "host" && d != "none" && net.ParseIP(d) == nil {
			return fmt.Errorf("--dns=%s: not an IP address, host or none", d)
		}
	}
	for _, h := range o.HostsEntries {
		if rc.DNS.HostsEntries == nil {
			rc.DNS.HostsEntries = map[string][]string{}
		}
		if h == "host" {
			rc.DNS.HostsEntries["host"] = nil
			continue
		}
		ip, name, ok := strings.Cut(h, "=")
		if !ok || net.ParseIP(ip) == nil || name == "" {
			return fmt.Errorf("--hosts-entry=%s: want IP=HOSTNAME or host", h)
		}
		rc.DNS.HostsEntries[ip] = append(rc.DNS.HostsEntries[ip], name)
	}
	rc.InsecureOptions = pod.InsecureRunOptions{
		DisableCapabilities: globals.Insecure.Has(insecureCapabilities),
		DisablePaths:        globals.Insecure.Has(insecurePaths),
		DisableSeccomp:      globals.Insecure.Has(insecureSeccomp),
	}
	if o.MDSRegister {
		// The registration itself happens when the pod starts; the
		// token is the pod's identity towards the service.
		tok, err := mds.NewToken()
		if err != nil {
			return err
		}
		rc.MDSToken = tok
	}
	return nil
}

// parsePort reads NAME:[HOSTIP:]HOSTPORT.
func parsePort(s string) (types.ExposedPort, error) {
	var ep types.ExposedPort
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return ep, errors.New("want NAME:[HOSTIP:]HOSTPORT")
	}
	n, err := types.NewACName(parts[0])
	if err != nil {
		return ep, err
	}
	ep.Name = *n
	port, err := strconv.ParseUint(parts[len(parts)-1], 10, 16)
	if err != nil || port == 0 {
		return ep, fmt.Errorf("bad host port %q", parts[len(parts)-1])
	}
	ep.HostPort = uint(port)
	if len(parts) == 3 {
		ip := net.ParseIP(parts[1])
		if ip == nil {
			return ep, fmt.Errorf("bad host IP %q", parts[1])
		}
		ep.HostIP = ip
	}
	return ep, nil
}

// processStart is as close to the process's start as Go lets us see.
var processStart = time.Now()

// phase prints, with --debug, how long the run took to reach a step, so
// that where a pod's start time goes can be seen without a profiler.
func phase(what string) {
	if globals.Debug {
		fmt.Fprintf(os.Stderr, "stage0: %-16s +%.2f ms\n", what, float64(time.Since(processStart).Microseconds())/1000)
	}
}

// registerMDS registers a pod that asked for it (--mds-register: a token
// in its runtime-config) with the metadata service, and records the
// service's port for stage1. The service drops the registration by itself
// once the pod directory is gone or unlocked.
func registerMDS(p *stage0.Pod, socket string) error {
	rc, err := pod.ReadRuntimeConfig(p.Dir)
	if err != nil || rc.MDSToken == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mds.NewClient(socket)
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("--mds-register: %w", err)
	}
	reg, err := mdsRegistration(p.Dir, p.UUID, rc.MDSToken, p.Manifest)
	if err != nil {
		return err
	}
	if err := c.Register(ctx, reg); err != nil {
		return fmt.Errorf("--mds-register: %w", err)
	}
	rc.MDSPort = info.Port
	rc.MDSSocket = socket
	b, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.Dir, pod.RuntimeConfigFile), b, 0o640)
}
