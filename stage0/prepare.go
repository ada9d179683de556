package stage0

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/isolators"
	"github.com/rktng/rkt/pkg/lock"
	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/pkg/user"
)

// Sentinel errors for bad input, matched with errors.Is.
var (
	// ErrNoEntrypoint: the stage1 image lacks a needed entrypoint annotation.
	ErrNoEntrypoint = errors.New("stage1 image has no entrypoint")
	// ErrBadPod: the apps, volumes or flags do not make a valid pod.
	ErrBadPod = errors.New("invalid pod")
)

// Image is an image in the store with its rendered tree.
type Image struct {
	// ID is the image's store ID (sha512-...).
	ID       string
	Manifest *schema.ImageManifest
	// TreeID names the rendered tree; Rootfs is its rootfs directory,
	// used read-only as the overlay's lower layer.
	TreeID string
	Rootfs string
}

// PrepareConfig is everything a new pod is made of.
type PrepareConfig struct {
	DataDir string
	Stage1  Image
	// Apps are the CLI's apps, each with its Image resolved.
	Apps   []App
	Images []Image // Images[i] is the image of Apps[i]
	// Volumes are the pod's volumes (--volume).
	Volumes []types.Volume
	// Ports are --port mappings as exposed ports.
	Ports []types.ExposedPort
	// PodManifest, when set (--pod-manifest), replaces Apps, Volumes and
	// Ports; every app's image must be in Images by image ID.
	PodManifest *schema.PodManifest
	// Env is set for every app before its own --environment:
	// InheritEnv (the host's variables, lowest), then SetEnv.
	InheritEnv []string
	SetEnv     types.Environment
	// Annotations, UserAnnotations and UserLabels of the pod.
	Annotations     types.Annotations
	UserAnnotations types.UserAnnotations
	UserLabels      types.UserLabels
	RuntimeConfig   pod.RuntimeConfig
	// NoOverlay copies the trees into the pod instead of overlaying them.
	NoOverlay bool
}

// Pod is a pod directory that this process created and holds locked.
type Pod struct {
	UUID    string
	DataDir string
	Dir     string
	State   pod.State
	// Lock holds the pod directory's lock; nil once released.
	Lock *lock.FileLock
	// Manifest is the complete pod manifest written to the pod.
	Manifest *schema.PodManifest
}

// Entrypoint annotations of a stage1 image.
const (
	AnnotationPrefix           = "coreos.com/rkt/stage1/"
	AnnotationInterfaceVersion = AnnotationPrefix + "interface-version"
)

// AnnotationMaxApps, on a stage1 image, is the most apps a pod of that
// stage1 can run (the fly stage1 says 1). It is ours, not rkt's: stage0
// refuses a larger pod before it exists instead of leaving the stage1 to
// fail it after the pod has been made.
const AnnotationMaxApps = "rktng.io/rkt/stage1/max-apps"

// ErrTooManyApps: the pod has more apps than its stage1 can run.
var ErrTooManyApps = errors.New("too many apps for the stage1")

// checkMaxApps refuses a pod of n apps that stage1 m cannot run.
func checkMaxApps(m *schema.ImageManifest, n int) error {
	v, ok := m.Annotations.Get(AnnotationMaxApps)
	if !ok {
		return nil
	}
	max, err := strconv.Atoi(v)
	if err != nil || max < 1 {
		return fmt.Errorf("stage1 %s: bad %s %q", m.Name, AnnotationMaxApps, v)
	}
	if n > max {
		return fmt.Errorf("%w: stage1 %s runs at most %d app(s) per pod, this pod has %d", ErrTooManyApps, m.Name, max, n)
	}
	return nil
}

// Entrypoint returns the path inside the stage1 rootfs of entrypoint name
// ("run", "enter", "gc", "stop", "app/add", ...).
func Entrypoint(m *schema.ImageManifest, name string) (string, error) {
	v, ok := m.Annotations.Get(AnnotationPrefix + name)
	if !ok || v == "" {
		return "", fmt.Errorf("%s: %w %s (annotation %s%s)", m.Name, ErrNoEntrypoint, name, AnnotationPrefix, name)
	}
	return v, nil
}

// InterfaceVersion is the stage1's declared interface version (1 when
// the image does not say).
func InterfaceVersion(m *schema.ImageManifest) (int, error) {
	v, ok := m.Annotations.Get(AnnotationInterfaceVersion)
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("stage1 %s: bad %s %q", m.Name, AnnotationInterfaceVersion, v)
	}
	return n, nil
}

// NewUUID returns a random (version 4) pod UUID.
func NewUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Prepare checks the configuration, then writes a complete pod directory.
// With target pod.Run the pod lands in run/ still locked, ready for Exec;
// with pod.Prepared it lands in prepared/ unlocked. On any error nothing
// is left behind.
func Prepare(ctx context.Context, cfg PrepareConfig, target pod.State) (*Pod, error) {
	if _, err := Entrypoint(cfg.Stage1.Manifest, "run"); err != nil {
		return nil, err
	}
	version, err := InterfaceVersion(cfg.Stage1.Manifest)
	if err != nil {
		return nil, err
	}
	if ipc := cfg.RuntimeConfig.IPC; ipc != "" && ipc != "auto" && version < 6 {
		return nil, fmt.Errorf("--ipc=%s: stage1 %s has interface version %d, and --ipc needs 6", ipc, cfg.Stage1.Manifest.Name, version)
	}
	if err := checkPrivateUsers(cfg.RuntimeConfig.PrivateUsers); err != nil {
		return nil, err
	}
	pm, err := buildManifest(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkMaxApps(cfg.Stage1.Manifest, len(pm.Apps)); err != nil {
		return nil, err
	}
	for i := range pm.Apps {
		if err := checkStreams(cfg.Stage1.Manifest, cfg.RuntimeConfig.Interactive, &pm.Apps[i]); err != nil {
			return nil, err
		}
		// A privileged app makes its pod privileged.
		if pod.AppPrivileged(pm.Apps[i].Annotations) {
			cfg.RuntimeConfig.Privileged = true
		}
	}
	if err := isolators.Validate(pm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPod, err)
	}
	manifestJSON, err := json.Marshal(pm)
	if err != nil {
		return nil, fmt.Errorf("%w: pod manifest: %v", ErrBadPod, err)
	}
	rcJSON, err := json.Marshal(cfg.RuntimeConfig)
	if err != nil {
		return nil, err
	}

	// Members of the "rkt" group may read pods (list, status,
	// cat-manifest) without root, as with rkt.
	gid := rktGroup()
	if err := makePodsDirs(cfg.DataDir, gid); err != nil {
		return nil, err
	}
	uuid, err := NewUUID()
	if err != nil {
		return nil, err
	}
	dir := pod.Dir(cfg.DataDir, pod.Embryo, uuid)
	if err := os.Mkdir(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	if gid >= 0 {
		_ = os.Chown(dir, -1, gid)
	}
	l, err := lock.Open(dir)
	if err == nil {
		err = l.TryExclusive()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("lock new pod %s: %w", uuid, err)
	}
	p := &Pod{UUID: uuid, DataDir: cfg.DataDir, Dir: dir, State: pod.Embryo, Lock: l, Manifest: pm}
	if err := writePod(ctx, p, cfg, manifestJSON, rcJSON); err != nil {
		p.Discard()
		return nil, err
	}
	switch target {
	case pod.Prepared:
		// rkt's path: prepare (locked) then prepared (unlocked).
		if err := p.move(pod.Preparing); err != nil {
			p.Discard()
			return nil, err
		}
		if err := p.move(pod.Prepared); err != nil {
			p.Discard()
			return nil, err
		}
		p.Lock.Close()
		p.Lock = nil
	default:
		if err := p.move(pod.Run); err != nil {
			p.Discard()
			return nil, err
		}
	}
	return p, nil
}

func (p *Pod) move(to pod.State) error {
	dst := pod.Dir(p.DataDir, to, p.UUID)
	if err := os.Rename(p.Dir, dst); err != nil {
		return fmt.Errorf("pod %s to %s: %w", p.UUID, to, err)
	}
	p.Dir, p.State = dst, to
	return nil
}

// Discard moves a pod this process failed to finish to garbage and
// removes it, so that a failed prepare or run leaves nothing behind.
func (p *Pod) Discard() {
	if p.State != pod.Garbage {
		_ = p.move(pod.Garbage)
	}
	os.RemoveAll(p.Dir)
	if p.Lock != nil {
		p.Lock.Close()
		p.Lock = nil
	}
}

// appNameFor derives rkt's default app name: the image name's last
// element, lower-cased into a valid ACName.
func appNameFor(img *schema.ImageManifest) (types.ACName, error) {
	base := path.Base(img.Name.String())
	n, err := types.SanitizeACName(base)
	if err != nil {
		return "", fmt.Errorf("%w: cannot derive an app name from image %s: %v", ErrBadPod, img.Name, err)
	}
	return types.ACName(n), nil
}

// buildManifest makes the complete pod manifest: every RuntimeApp has its
// App, the image's with the CLI's overrides applied.
func buildManifest(cfg PrepareConfig) (*schema.PodManifest, error) {
	byID := map[string]*Image{}
	for i := range cfg.Images {
		byID[cfg.Images[i].ID] = &cfg.Images[i]
	}
	if cfg.PodManifest != nil {
		return completeManifest(cfg, byID)
	}
	if len(cfg.Apps) == 0 && !cfg.RuntimeConfig.Mutable { // a sandbox starts empty
		return nil, fmt.Errorf("%w: no apps given", ErrBadPod)
	}
	if len(cfg.Apps) != len(cfg.Images) {
		return nil, fmt.Errorf("%w: %d apps but %d images", ErrBadPod, len(cfg.Apps), len(cfg.Images))
	}
	pm := schema.BlankPodManifest()
	pm.Volumes = append(pm.Volumes, cfg.Volumes...)
	pm.Ports = append(pm.Ports, cfg.Ports...)
	pm.Annotations = cfg.Annotations
	if pm.Annotations == nil {
		// "annotations": [] rather than null: the metadata service and
		// the appc validator compare the manifest's list with the one
		// /pod/annotations serves, and an empty pod has an empty list.
		pm.Annotations = types.Annotations{}
	}
	pm.UserAnnotations = cfg.UserAnnotations
	pm.UserLabels = cfg.UserLabels
	for i, a := range cfg.Apps {
		img := &cfg.Images[i]
		name := types.ACName(a.Name)
		if a.Name == "" {
			var err error
			if name, err = appNameFor(img.Manifest); err != nil {
				return nil, err
			}
		}
		if pm.Apps.Get(name) != nil {
			return nil, fmt.Errorf("%w: two apps named %q: give one of them --name", ErrBadPod, name)
		}
		ra, err := runtimeApp(cfg, name, a, img)
		if err != nil {
			return nil, err
		}
		pm.Apps = append(pm.Apps, *ra)
	}
	if err := checkVolumes(pm); err != nil {
		return nil, err
	}
	if err := checkPorts(pm); err != nil {
		return nil, err
	}
	return pm, nil
}

// checkPorts requires every forwarded port to name a port of some app.
func checkPorts(pm *schema.PodManifest) error {
	for _, ep := range pm.Ports {
		if ep.PodPort != nil {
			continue
		}
		found := false
		for _, ra := range pm.Apps {
			for _, p := range ra.App.Ports {
				found = found || p.Name == ep.Name
			}
		}
		if !found {
			return fmt.Errorf("%w: --port=%s: no app of the pod has a port named %q", ErrBadPod, ep.Name, ep.Name)
		}
	}
	return nil
}

// completeManifest fills in a --pod-manifest: apps without App get their
// image's, and every image must be one we resolved.
func completeManifest(cfg PrepareConfig, byID map[string]*Image) (*schema.PodManifest, error) {
	pm := *cfg.PodManifest
	pm.Apps = append(schema.AppList(nil), cfg.PodManifest.Apps...)
	if len(pm.Apps) == 0 {
		return nil, fmt.Errorf("%w: pod manifest has no apps", ErrBadPod)
	}
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		img := byID[ra.Image.ID.String()]
		if img == nil {
			return nil, fmt.Errorf("%w: app %s: image %s not resolved", ErrBadPod, ra.Name, ra.Image.ID)
		}
		if ra.App == nil {
			if img.Manifest.App == nil {
				return nil, fmt.Errorf("%w: app %s: image %s has no app and the pod manifest gives none", ErrBadPod, ra.Name, img.Manifest.Name)
			}
			app := copyApp(img.Manifest.App)
			ra.App = app
		}
		if err := checkApp(ra, img); err != nil {
			return nil, err
		}
	}
	if err := checkVolumes(&pm); err != nil {
		return nil, err
	}
	return &pm, nil
}

func copyApp(a *types.App) *types.App {
	b, err := json.Marshal(a)
	if err != nil {
		return nil
	}
	var c types.App
	if err := json.Unmarshal(b, &c); err != nil {
		return nil
	}
	return &c
}

func runtimeApp(cfg PrepareConfig, name types.ACName, a App, img *Image) (*schema.RuntimeApp, error) {
	var app *types.App
	if img.Manifest.App != nil {
		app = copyApp(img.Manifest.App)
		if app == nil {
			return nil, fmt.Errorf("%w: image %s: bad app section", ErrBadPod, img.Manifest.Name)
		}
	} else {
		app = &types.App{}
	}
	if a.Exec != "" {
		app.Exec = types.Exec{a.Exec}
	}
	if a.HasArgs {
		app.Exec = append(app.Exec, a.Args...)
	}
	if len(app.Exec) == 0 {
		return nil, fmt.Errorf("%w: image %s has no app to run: give --exec", ErrBadPod, img.Manifest.Name)
	}
	if a.User != "" {
		app.User = a.User
	}
	if a.Group != "" {
		app.Group = a.Group
	}
	if app.User == "" {
		app.User = "0"
	}
	if app.Group == "" {
		app.Group = "0"
	}
	if a.SupplementaryGIDs != nil {
		app.SupplementaryGIDs = a.SupplementaryGIDs
	}
	if a.WorkingDir != "" {
		app.WorkingDirectory = a.WorkingDir
	}
	// Environment, lowest precedence first: the host's (--inherit-env,
	// only where the image sets nothing), the image's, --set-env(-file),
	// then the app's --environment.
	env := types.Environment{}
	for _, kv := range cfg.InheritEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, set := app.Environment.Get(k); !set {
			env.Set(k, v)
		}
	}
	for _, ev := range app.Environment {
		env.Set(ev.Name, ev.Value)
	}
	for _, ev := range cfg.SetEnv {
		env.Set(ev.Name, ev.Value)
	}
	for _, ev := range a.Environment {
		env.Set(ev.Name, ev.Value)
	}
	app.Environment = env
	if len(a.Isolators) > 0 {
		app.Isolators = isolators.Override(app.Isolators, a.Isolators)
	}
	if app.UserAnnotations == nil && len(a.UserAnnotations) > 0 {
		app.UserAnnotations = types.UserAnnotations{}
	}
	for k, v := range a.UserAnnotations {
		app.UserAnnotations[k] = v
	}
	if app.UserLabels == nil && len(a.UserLabels) > 0 {
		app.UserLabels = types.UserLabels{}
	}
	for k, v := range a.UserLabels {
		app.UserLabels[k] = v
	}
	id, err := types.NewHash(img.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: image ID %s: %v", ErrBadPod, img.ID, err)
	}
	imgName := img.Manifest.Name
	ra := &schema.RuntimeApp{
		Name:        name,
		Image:       schema.RuntimeImage{Name: &imgName, ID: *id, Labels: img.Manifest.Labels},
		App:         app,
		Mounts:      a.Mounts,
		Annotations: a.Annotations,
	}
	if a.ReadOnlyRootFS != nil {
		ra.ReadOnlyRootFS = *a.ReadOnlyRootFS
	}
	if err := checkApp(ra, img); err != nil {
		return nil, err
	}
	return ra, nil
}

// checkApp refuses what would only fail later inside stage1: a user or
// group the image does not have, a relative path.
func checkApp(ra *schema.RuntimeApp, img *Image) error {
	app := ra.App
	if len(app.Exec) == 0 || app.Exec[0] == "" {
		return fmt.Errorf("%w: app %s has an empty exec", ErrBadPod, ra.Name)
	}
	if app.WorkingDirectory != "" && !filepath.IsAbs(app.WorkingDirectory) {
		return fmt.Errorf("%w: app %s: working directory %q is not absolute", ErrBadPod, ra.Name, app.WorkingDirectory)
	}
	for _, m := range ra.Mounts {
		if !filepath.IsAbs(m.Path) {
			return fmt.Errorf("%w: app %s: mount target %q is not absolute", ErrBadPod, ra.Name, m.Path)
		}
	}
	if e := app.Exec[0]; filepath.IsAbs(e) && !underMount(e, ra.Mounts) {
		f, err := user.OpenInRoot(img.Rootfs, e)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: app %s: %s is not in image %s", ErrBadPod, ra.Name, e, img.Manifest.Name)
		}
		if f != nil {
			f.Close()
		}
	}
	if _, err := user.Resolve(img.Rootfs, app.User, app.Group); err != nil {
		return fmt.Errorf("%w: app %s (image %s): %v", ErrBadPod, ra.Name, img.Manifest.Name, err)
	}
	return nil
}

// checkVolumes requires every mount to name a pod volume and every pod
// volume to be mounted somewhere; an image mount point that nothing fills
// gets an empty volume of its own, as rkt did.
func checkVolumes(pm *schema.PodManifest) error {
	vols := map[types.ACName]bool{}
	for _, v := range pm.Volumes {
		vols[v.Name] = true
	}
	used := map[types.ACName]bool{}
	// An app's own volumes (--mnt-volume) share the pod's namespace of
	// volume names: stage1 keeps every volume under /rkt/volumes/NAME.
	appVols := map[types.ACName]types.ACName{}
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		for _, m := range ra.Mounts {
			if av := m.AppVolume; av != nil {
				if err := checkAppVolume(ra.Name, m, vols, appVols); err != nil {
					return err
				}
				continue
			}
			if !vols[m.Volume] {
				return fmt.Errorf("%w: app %s mounts volume %q, but no --volume=%s,... defines it", ErrBadPod, ra.Name, m.Volume, m.Volume)
			}
			used[m.Volume] = true
		}
		for _, mp := range ra.App.MountPoints {
			mounted := false
			for _, m := range ra.Mounts {
				if m.Path == mp.Path || m.Volume == mp.Name {
					mounted = true
				}
			}
			if mounted {
				continue
			}
			if vols[mp.Name] {
				used[mp.Name] = true
				ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
				continue
			}
			// rkt's implicit volume: an empty directory for this app.
			mode, uid, gid := "0755", 0, 0
			vname := types.ACName(string(ra.Name) + "-" + string(mp.Name))
			if !vols[vname] {
				ro := mp.ReadOnly
				pm.Volumes = append(pm.Volumes, types.Volume{Name: vname, Kind: "empty", Mode: &mode, UID: &uid, GID: &gid, ReadOnly: &ro})
				vols[vname] = true
			}
			used[vname] = true
			ra.Mounts = append(ra.Mounts, schema.Mount{Volume: vname, Path: mp.Path})
		}
	}
	for _, v := range pm.Volumes {
		if !used[v.Name] {
			return fmt.Errorf("%w: volume %q is not mounted by any app: add --mount volume=%s,target=PATH after an image", ErrBadPod, v.Name, v.Name)
		}
		if v.Kind == "host" {
			if _, err := os.Stat(v.Source); err != nil {
				return fmt.Errorf("%w: volume %q: source %v", ErrBadPod, v.Name, err)
			}
		}
	}
	return nil
}

// checkAppVolume checks a mount that carries its own volume: one name,
// not a pod volume's nor another app's, and a host source that exists.
func checkAppVolume(app types.ACName, m schema.Mount, podVols map[types.ACName]bool, appVols map[types.ACName]types.ACName) error {
	av := m.AppVolume
	if av.Name != m.Volume {
		return fmt.Errorf("%w: app %s: mount of volume %q carries volume %q", ErrBadPod, app, m.Volume, av.Name)
	}
	if podVols[av.Name] {
		return fmt.Errorf("%w: app %s: volume %q of the app has the name of a pod volume", ErrBadPod, app, av.Name)
	}
	if other, ok := appVols[av.Name]; ok {
		return fmt.Errorf("%w: app %s: volume %q is app %s's already", ErrBadPod, app, av.Name, other)
	}
	appVols[av.Name] = app
	switch av.Kind {
	case "host":
		if _, err := os.Stat(av.Source); err != nil {
			return fmt.Errorf("%w: app %s: volume %q: source %v", ErrBadPod, app, av.Name, err)
		}
	case "empty":
	default:
		return fmt.Errorf("%w: app %s: volume %q: unknown kind %q", ErrBadPod, app, av.Name, av.Kind)
	}
	return nil
}

// writePod fills the embryo directory.
func writePod(ctx context.Context, p *Pod, cfg PrepareConfig, manifestJSON, rcJSON []byte) error {
	dir := p.Dir
	write := func(name string, data []byte) error {
		full := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, data, 0o640)
	}
	s1m, err := json.Marshal(cfg.Stage1.Manifest)
	if err != nil {
		return err
	}
	if err := write(pod.CreatedFile, nil); err != nil {
		return fmt.Errorf("write pod: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{pod.ManifestFile, manifestJSON},
		{pod.RuntimeConfigFile, rcJSON},
		{pod.Stage1TreeIDFile, []byte(cfg.Stage1.TreeID)},
		{"stage1/manifest", s1m},
	}
	imgs := map[string]*Image{}
	for i := range cfg.Images {
		imgs[cfg.Images[i].ID] = &cfg.Images[i]
	}
	for _, ra := range p.Manifest.Apps {
		img := imgs[ra.Image.ID.String()]
		m, err := json.Marshal(img.Manifest)
		if err != nil {
			return err
		}
		rel := func(abs string) string { r, _ := filepath.Rel(dir, abs); return r }
		files = append(files,
			struct {
				name string
				data []byte
			}{rel(pod.AppImageManifestPath(dir, ra.Name.String())), m},
			struct {
				name string
				data []byte
			}{rel(pod.AppTreeStoreIDPath(dir, ra.Name.String())), []byte(img.TreeID)})
	}
	for _, f := range files {
		if err := write(f.name, f.data); err != nil {
			return fmt.Errorf("write pod: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Stage1's root: an overlay mounted at run time (only its upper and
	// work directories exist now), or a copy.
	s1root := pod.Stage1RootfsPath(dir)
	if err := os.MkdirAll(s1root, 0o755); err != nil {
		return err
	}
	s1upper := s1root
	if !cfg.NoOverlay {
		ov := pod.OverlayDir(dir, cfg.Stage1.TreeID)
		s1upper = filepath.Join(ov, "upper")
		for _, d := range []string{s1upper, filepath.Join(ov, "work")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := write(pod.OverlayPrepared, nil); err != nil {
			return err
		}
	} else if err := copyTree(ctx, cfg.Stage1.Rootfs, s1root); err != nil {
		return fmt.Errorf("copy stage1: %w", err)
	}
	for _, d := range []string{"rkt/status", "rkt/env", "opt/stage2"} {
		if err := os.MkdirAll(filepath.Join(s1upper, d), 0o755); err != nil {
			return err
		}
	}
	for _, ra := range p.Manifest.Apps {
		name := ra.Name.String()
		img := imgs[ra.Image.ID.String()]
		appRoot := filepath.Join(s1upper, "opt/stage2", name, "rootfs")
		if err := os.MkdirAll(appRoot, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s1upper, "rkt/env", name), envFile(ra.App.Environment), 0o640); err != nil {
			return err
		}
		if cfg.NoOverlay {
			if err := copyTree(ctx, img.Rootfs, appRoot); err != nil {
				return fmt.Errorf("copy app %s: %w", name, err)
			}
			continue
		}
		ov := pod.OverlayDir(dir, img.TreeID)
		for _, d := range []string{filepath.Join(ov, "upper", name), filepath.Join(ov, "work", name)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
	}
	if err := writeDNS(s1upper, cfg.RuntimeConfig.DNS); err != nil {
		return err
	}
	// Empty volumes live in the pod directory so that every app of the
	// pod (and every stage1 flavor) shares one directory.
	for _, v := range p.Manifest.Volumes {
		if v.Kind != "empty" {
			continue
		}
		d := filepath.Join(dir, SharedVolumesDir, v.Name.String())
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		mode := uint64(0o755)
		if v.Mode != nil {
			if mode, err = strconv.ParseUint(*v.Mode, 8, 32); err != nil {
				return fmt.Errorf("%w: volume %s: bad mode %q", ErrBadPod, v.Name, *v.Mode)
			}
		}
		if err := os.Chmod(d, os.FileMode(mode)&os.ModePerm); err != nil {
			return err
		}
		uid, gid := 0, 0
		if v.UID != nil {
			uid = *v.UID
		}
		if v.GID != nil {
			gid = *v.GID
		}
		if err := os.Lchown(d, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// SharedVolumesDir holds the pod's empty volumes, one directory each.
const SharedVolumesDir = "sharedVolumes"

// envFile is the app's environment, one NAME=VALUE per line, as rkt's
// stage1 reads rkt/env/APP.
func envFile(env types.Environment) []byte {
	var b strings.Builder
	for _, ev := range env {
		b.WriteString(ev.Name + "=" + ev.Value + "\n")
	}
	return []byte(b.String())
}

// writeDNS writes etc/rkt-resolv.conf and etc/rkt-hosts into stage1's root
// when the flags ask stage0 to provide them (--dns=ADDR..., --hosts-entry).
func writeDNS(s1root string, dns pod.DNSConfig) error {
	if len(dns.Servers) > 0 && dns.Servers[0] != "host" && dns.Servers[0] != "none" {
		var b strings.Builder
		b.WriteString("# Generated by rkt from --dns flags\n")
		for _, s := range dns.Servers {
			b.WriteString("nameserver " + s + "\n")
		}
		if len(dns.Search) > 0 {
			b.WriteString("search " + strings.Join(dns.Search, " ") + "\n")
		}
		if len(dns.Options) > 0 {
			b.WriteString("options " + strings.Join(dns.Options, " ") + "\n")
		}
		if dns.Domain != "" {
			b.WriteString("domain " + dns.Domain + "\n")
		}
		if err := os.MkdirAll(filepath.Join(s1root, "etc"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s1root, "etc", "rkt-resolv.conf"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if _, host := dns.HostsEntries["host"]; len(dns.HostsEntries) > 0 && !host {
		var b strings.Builder
		b.WriteString("127.0.0.1 localhost localhost.localdomain\n::1 localhost ip6-localhost ip6-loopback\n")
		for ip, names := range dns.HostsEntries {
			b.WriteString(ip + " " + strings.Join(names, " ") + "\n")
		}
		if err := os.MkdirAll(filepath.Join(s1root, "etc"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s1root, "etc", "rkt-hosts"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// DNSConfMode is the --dns-conf-mode argument stage1 gets (interface
// version 4 and later): who provides resolv.conf and hosts.
func DNSConfMode(dns pod.DNSConfig) string {
	resolv, hosts := "default", "default"
	switch {
	case len(dns.Servers) == 0:
	case dns.Servers[0] == "host":
		resolv = "host"
	case dns.Servers[0] == "none":
		resolv = "none"
	default:
		resolv = "stage0"
	}
	if _, ok := dns.HostsEntries["host"]; ok {
		hosts = "host"
	} else if len(dns.HostsEntries) > 0 {
		hosts = "stage0"
	}
	return "resolv=" + resolv + ",hosts=" + hosts
}

// copyTree copies src's contents into dst preserving owners, modes,
// times, links, devices and xattrs; cp -a does all of it, reflinking
// where the filesystem can.
func copyTree(ctx context.Context, src, dst string) error {
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src+"/.", dst)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// underMount reports whether p lies in one of the app's mounts (then it
// is not the image's to check).
func underMount(p string, mounts []schema.Mount) bool {
	for _, m := range mounts {
		mp := filepath.Clean(m.Path)
		if p == mp || strings.HasPrefix(p, mp+"/") {
			return true
		}
	}
	return false
}

// rktGroup is the host's "rkt" group, or -1 when there is none.
func rktGroup() int {
	g, err := osuser.LookupGroup("rkt")
	if err != nil {
		return -1
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return gid
}

// makePodsDirs creates DIR/pods and its state directories once, readable
// by the rkt group when there is one.
func makePodsDirs(dataDir string, gid int) error {
	if _, err := os.Stat(pod.StateDir(dataDir, pod.Garbage)); err == nil {
		return nil
	}
	for _, d := range append([]string{pod.PodsDir(dataDir)}, statesDirs(dataDir)...) {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("pods dir: %w", err)
		}
		if gid >= 0 {
			_ = os.Chown(d, -1, gid)
		}
	}
	return nil
}

func statesDirs(dataDir string) []string {
	var ds []string
	for _, s := range pod.States {
		ds = append(ds, pod.StateDir(dataDir, s))
	}
	return ds
}

// checkPrivateUsers refuses a --private-users value before a pod exists:
// nspawn would reject it only after the pod booted halfway.
func checkPrivateUsers(v string) error {
	if v == "" || v == "auto" {
		return nil
	}
	uid, count, hasCount := strings.Cut(v, ":")
	if _, err := strconv.ParseUint(uid, 10, 32); err != nil {
		return fmt.Errorf("--private-users=%s: want auto or UID[:COUNT]", v)
	}
	if hasCount {
		if n, err := strconv.ParseUint(count, 10, 32); err != nil || n == 0 {
			return fmt.Errorf("--private-users=%s: want auto or UID[:COUNT]", v)
		}
	}
	return nil
}
