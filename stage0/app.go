package stage0

import (
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// App is one app of a pod as the command line describes it: an image
// (already in the store) and the overrides applied on top of that image's
// own app section. Zero values mean "keep what the image says".
type App struct {
	// ImageID is the store ID of the app's image.
	ImageID string
	// Name is the app's name in the pod; empty means the image name's
	// last path element.
	Name string
	// Exec replaces the image's exec[0] (and drops the image's arguments).
	Exec string
	// Args are appended to the exec line; HasArgs says "--" was given.
	Args    []string
	HasArgs bool
	User    string
	Group   string
	// SupplementaryGIDs replaces the image's list when non-nil.
	SupplementaryGIDs []int
	WorkingDir        string
	// Environment is set on top of the image's environment, in order.
	Environment types.Environment
	// ReadOnlyRootFS is nil when not given.
	ReadOnlyRootFS *bool
	// Mounts attach pod volumes at paths in this app.
	Mounts []schema.Mount
	// Annotations are the RuntimeApp's annotations.
	Annotations types.Annotations
	// UserAnnotations and UserLabels are merged into the app's.
	UserAnnotations types.UserAnnotations
	UserLabels      types.UserLabels
	// Isolators replace the image's isolators of the same name.
	Isolators types.Isolators
}
