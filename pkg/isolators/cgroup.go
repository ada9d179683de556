package isolators

import (
	"fmt"

	"github.com/appc/spec/schema/types"
	"github.com/rktng/rkt/pkg/cgroup"
)

// CreateCgroup makes the cgroup of app (named name in pod uuid, whose
// directory is podDir) with the resource limits of its isolators, below
// the caller's own cgroup, and records it for gc (cgroup.RemovePod). It
// returns the directories the app must join (appexec.Config.CgroupDirs),
// none when the app has no resource isolator. A stage1 calls it on the
// host side, before the app starts.
func CreateCgroup(podDir, uuid, name string, app *types.App) ([]string, error) {
	s, err := parse(app.Isolators, 0, "app "+name)
	if err != nil {
		return nil, err
	}
	if s.Limits.Empty() {
		return nil, nil
	}
	cg, err := cgroup.CreateApp(podDir, uuid, name, s.Limits)
	if err != nil {
		return nil, fmt.Errorf("app %s: resource limits: %w", name, err)
	}
	return cg.Dirs, nil
}
