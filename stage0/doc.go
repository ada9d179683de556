// Package stage0 owns pod preparation and lifecycle: it turns images and
// run flags into a pod directory, moves pods between states, mounts their
// root filesystems privately and execs the stage1 entrypoints.
package stage0
