// Package store owns the image store under DIR/cas: content-addressed ACI
// blobs, the bbolt index describing them, and the tree store of rendered
// root filesystems that pods use as read-only lower layers.
package store
