// Package isolators owns the meaning of appc isolators for this runtime:
// which ones are supported, validation at prepare time (an unknown or
// malformed isolator is an error, never silently ignored), the defaults
// (capability set, seccomp filter), and the translation of an app's
// isolators into the settings that pkg/appexec and pkg/cgroup apply.
package isolators

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/appexec"
	"github.com/rktng/rkt/pkg/appexec/caps"
	"github.com/rktng/rkt/pkg/appexec/seccomp"
	"github.com/rktng/rkt/pkg/cgroup"
)

// Sentinel errors; each is wrapped with the isolator's name and, where
// known, the app's.
var (
	// ErrUnknown: a name this runtime (and appc) does not define.
	ErrUnknown = errors.New("unknown isolator")
	// ErrUnsupported: an appc isolator this runtime cannot enforce.
	ErrUnsupported = errors.New("unsupported isolator")
	// ErrInvalid: a value that does not parse or is out of range.
	ErrInvalid = errors.New("invalid isolator")
	// ErrConflict: two isolators that exclude each other (retain and
	// remove sets), or the same one twice.
	ErrConflict = errors.New("conflicting isolators")
)

// Supported lists the isolator names this runtime enforces.
var Supported = []types.ACIdentifier{
	types.ResourceMemoryName,
	types.ResourceCPUName,
	types.LinuxCPUSharesName,
	types.LinuxOOMScoreAdjName,
	types.LinuxCapabilitiesRetainSetName,
	types.LinuxCapabilitiesRevokeSetName,
	types.LinuxSeccompRetainSetName,
	types.LinuxSeccompRemoveSetName,
	types.LinuxNoNewPrivilegesName,
}

// appcOnly are appc isolators that this runtime does not enforce.
var appcOnly = []types.ACIdentifier{
	types.ResourceBlockBandwidthName,
	types.ResourceBlockIOPSName,
	types.ResourceNetworkBandwidthName,
	types.LinuxSELinuxContextName,
	types.UnixSysctlName,
}

func isIn(n types.ACIdentifier, list []types.ACIdentifier) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// Settings is what an app's isolators ask of the runtime, already merged
// with the defaults.
type Settings struct {
	// Limits go to pkg/cgroup.
	Limits cgroup.Limits
	// OOMScoreAdj is nil when not set.
	OOMScoreAdj *int
	// Capabilities is the app's set; AmbientCapabilities the part a
	// non-root app keeps (its explicit retain set).
	Capabilities        []string
	AmbientCapabilities []string
	NoNewPrivileges     bool
	// Seccomp is the app's filter (the default one when it has none).
	Seccomp *seccomp.Filter
	// SeccompProfile, when set, replaces Seccomp.
	SeccompProfile *seccomp.Profile
}

// Validate checks every isolator of every app of a pod manifest (after
// the command line's overrides are applied) and the pod's own: stage0
// calls it at prepare time, so that a bad isolator from an image or a
// flag stops `rkt prepare`/`rkt run` with one clear line before anything
// is written.
func Validate(pm *schema.PodManifest) error {
	if err := ValidateList(pm.Isolators, "pod"); err != nil {
		return err
	}
	for _, ra := range pm.Apps {
		if _, err := SeccompProfile(ra.Annotations); err != nil {
			return fmt.Errorf("app %s: %w", ra.Name, err)
		}
		if ra.App == nil {
			continue
		}
		if err := ValidateList(ra.App.Isolators, "app "+ra.Name.String()); err != nil {
			return err
		}
	}
	return nil
}

// AnnotationSeccompProfile, on an app of a pod manifest, holds a seccomp
// profile in the OCI format (JSON; see seccomp.Profile). It replaces the
// app's seccomp isolators and the default filter: `--seccomp-profile`,
// the CRI's Localhost profiles. An annotation rather than an isolator,
// since appc refuses manifests with isolator names it does not know.
const AnnotationSeccompProfile = "rktng.io/rkt/stage2/seccomp-profile"

// SeccompProfile returns the profile of an app's annotations, nil if it
// has none.
func SeccompProfile(a types.Annotations) (*seccomp.Profile, error) {
	v, ok := a.Get(AnnotationSeccompProfile)
	if !ok {
		return nil, nil
	}
	p, err := seccomp.ParseProfile([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationSeccompProfile, err)
	}
	return p, nil
}

// ForRuntimeApp returns the settings of a pod's app running as uid: its
// isolators', and the seccomp profile of its annotations.
func ForRuntimeApp(ra *schema.RuntimeApp, uid int) (*Settings, error) {
	s, err := ForApp(ra.App, uid)
	if err != nil {
		return nil, err
	}
	if s.SeccompProfile, err = SeccompProfile(ra.Annotations); err != nil {
		return nil, err
	}
	return s, nil
}

// ValidateList checks a list of isolators; where names whose it is
// ("app NAME") in error messages.
func ValidateList(list types.Isolators, where string) error {
	_, err := parse(list, 0, where)
	return err
}

// ForApp returns the settings of an app running as uid.
func ForApp(app *types.App, uid int) (*Settings, error) {
	return parse(app.Isolators, uid, "app")
}

// Apply copies the settings into an appexec config.
func (s *Settings) Apply(c *appexec.Config) {
	// Never nil: appexec reads a nil set as "the default set", and an app
	// whose capabilities were all removed must get none.
	c.Capabilities = append([]string{}, s.Capabilities...)
	c.AmbientCapabilities = append([]string(nil), s.AmbientCapabilities...)
	c.NoNewPrivileges = s.NoNewPrivileges
	c.Seccomp = s.Seccomp
	c.SeccompProfile = s.SeccompProfile
	c.OOMScoreAdj = s.OOMScoreAdj
}

func parse(list types.Isolators, uid int, where string) (*Settings, error) {
	s := &Settings{}
	seen := map[types.ACIdentifier]bool{}
	var retainCaps, removeCaps []string
	var hasRetainCaps, hasRemoveCaps bool
	for i := range list {
		iso := &list[i]
		name := iso.Name
		fail := func(err error, format string, args ...any) error {
			return fmt.Errorf("%s: isolator %s: %w: %s", where, name, err, fmt.Sprintf(format, args...))
		}
		if !isIn(name, Supported) {
			if isIn(name, appcOnly) {
				return nil, fail(ErrUnsupported, "not enforced by this runtime (supported: %s)", supportedList())
			}
			return nil, fail(ErrUnknown, "supported isolators are %s", supportedList())
		}
		if seen[name] {
			return nil, fail(ErrConflict, "given more than once")
		}
		seen[name] = true
		v := iso.Value()
		if v == nil {
			// Built in code without a value, or a value appc could not
			// decode: parse the raw JSON again for a precise error.
			var raw any
			if iso.ValueRaw == nil || json.Unmarshal(*iso.ValueRaw, &raw) != nil {
				return nil, fail(ErrInvalid, "missing or malformed value")
			}
			return nil, fail(ErrInvalid, "value %s", string(*iso.ValueRaw))
		}
		if err := v.AssertValid(); err != nil {
			return nil, fail(ErrInvalid, "%v", err)
		}
		switch val := v.(type) {
		case *types.ResourceMemory:
			lim := val.Limit()
			if lim == nil || lim.Value() <= 0 {
				return nil, fail(ErrInvalid, "needs a positive limit")
			}
			s.Limits.MemoryBytes = lim.Value()
		case *types.ResourceCPU:
			lim := val.Limit()
			if lim == nil || lim.MilliValue() <= 0 {
				return nil, fail(ErrInvalid, "needs a positive limit")
			}
			s.Limits.CPUMilli = lim.MilliValue()
		case *types.LinuxCPUShares:
			s.Limits.CPUShares = uint64(*val)
		case *types.LinuxOOMScoreAdj:
			n := int(*val)
			s.OOMScoreAdj = &n
		case *types.LinuxNoNewPrivileges:
			s.NoNewPrivileges = bool(*val)
		case *types.LinuxCapabilitiesRetainSet:
			hasRetainCaps = true
			for _, c := range val.Set() {
				retainCaps = append(retainCaps, string(c))
			}
		case *types.LinuxCapabilitiesRevokeSet:
			hasRemoveCaps = true
			for _, c := range val.Set() {
				removeCaps = append(removeCaps, string(c))
			}
		case *types.LinuxSeccompRetainSet:
			s.Seccomp = seccompFilter(seccomp.Retain, val.Set(), string(val.Errno()))
		case *types.LinuxSeccompRemoveSet:
			s.Seccomp = seccompFilter(seccomp.Remove, val.Set(), string(val.Errno()))
		default:
			return nil, fail(ErrUnsupported, "unexpected value type %T", v)
		}
		if err := s.Limits.Validate(); err != nil {
			return nil, fail(ErrInvalid, "%v", err)
		}
		if s.Seccomp != nil && (name == types.LinuxSeccompRetainSetName || name == types.LinuxSeccompRemoveSetName) {
			if err := s.Seccomp.Validate(); err != nil {
				return nil, fail(ErrInvalid, "%v", err)
			}
		}
	}
	if seen[types.LinuxSeccompRetainSetName] && seen[types.LinuxSeccompRemoveSetName] {
		return nil, fmt.Errorf("%s: %w: %s and %s exclude each other", where, ErrConflict,
			types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName)
	}
	if hasRetainCaps && hasRemoveCaps {
		return nil, fmt.Errorf("%s: %w: %s and %s exclude each other", where, ErrConflict,
			types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName)
	}

	for _, list := range [][]string{retainCaps, removeCaps} {
		for _, c := range list {
			if _, err := caps.Parse(c); err != nil {
				return nil, fmt.Errorf("%s: %w: %v", where, ErrInvalid, err)
			}
		}
	}
	switch {
	case hasRetainCaps:
		set, _ := caps.ParseSet(retainCaps)
		s.Capabilities = set.Names()
		if uid != 0 {
			// An explicit retain set is a request that the app have
			// these capabilities, which a non-root app can only keep
			// through the ambient set.
			s.AmbientCapabilities = s.Capabilities
		}
	case hasRemoveCaps:
		set, _ := caps.ParseSet(caps.Default())
		rm, _ := caps.ParseSet(removeCaps)
		s.Capabilities = (set &^ rm).Names()
	default:
		s.Capabilities = caps.Default()
	}
	if s.Capabilities == nil {
		s.Capabilities = []string{}
	}
	if s.Seccomp == nil {
		s.Seccomp = seccomp.Default()
	}
	return s, nil
}

func seccompFilter(mode seccomp.Mode, set []types.LinuxSeccompEntry, errno string) *seccomp.Filter {
	f := &seccomp.Filter{Mode: mode, Errno: errno}
	for _, e := range set {
		f.Syscalls = append(f.Syscalls, string(e))
	}
	return f
}

func supportedList() string {
	names := make([]string, len(Supported))
	for i, n := range Supported {
		names[i] = string(n)
	}
	return strings.Join(names, ", ")
}

// New builds an isolator from its name and JSON-encodable value, decoded
// the way a manifest's would be, so that Value() is populated (appc's own
// AsIsolator helpers leave some values empty until a JSON round trip).
func New(name types.ACIdentifier, value any) (types.Isolator, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return types.Isolator{}, err
	}
	doc, _ := json.Marshal(map[string]json.RawMessage{"name": json.RawMessage(strconvQuote(string(name))), "value": raw})
	var iso types.Isolator
	if err := json.Unmarshal(doc, &iso); err != nil {
		return types.Isolator{}, fmt.Errorf("isolator %s: %w: %v", name, ErrInvalid, err)
	}
	if err := ValidateList(types.Isolators{iso}, "isolator"); err != nil {
		return types.Isolator{}, err
	}
	return iso, nil
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// families are isolators that exclude each other: an override of one
// replaces every member of its family.
var families = [][]types.ACIdentifier{
	{types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName},
	{types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName},
}

// Override returns base with each isolator of overrides replacing those
// of base with the same name, or of the same family (a --caps-retain
// replaces an image's capabilities-remove-set too, as in rkt). stage0
// uses it to apply the command line's isolators to an image's.
func Override(base, overrides types.Isolators) types.Isolators {
	replaced := map[types.ACIdentifier]bool{}
	for _, o := range overrides {
		replaced[o.Name] = true
		for _, fam := range families {
			if isIn(o.Name, fam) {
				for _, n := range fam {
					replaced[n] = true
				}
			}
		}
	}
	out := types.Isolators{}
	for _, b := range base {
		if !replaced[b.Name] {
			out = append(out, b)
		}
	}
	return append(out, overrides...)
}
