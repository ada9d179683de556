package mds

import (
	"crypto/rand"
	"errors"
	"os"

	"github.com/rktng/rkt/pkg/lock"
)

var randRead = rand.Read

// Prune drops registrations whose pod is no longer running: its directory
// is gone or nobody holds its lock. It returns the UUIDs dropped. Pods
// registered without a directory are kept until unregistered.
func (s *Service) Prune() []string {
	var dropped []string
	for _, reg := range s.reg.List() {
		if reg.PodDir == "" || podRunning(reg.PodDir) {
			continue
		}
		if err := s.reg.Remove(reg.UUID); err == nil {
			dropped = append(dropped, reg.UUID)
		}
	}
	return dropped
}

// podRunning reports whether some process holds the pod directory's lock,
// which is what running means for a pod.
func podRunning(dir string) bool {
	if _, err := os.Stat(dir); err != nil {
		return false
	}
	l, err := lock.Open(dir)
	if err != nil {
		return true // cannot tell; keep it
	}
	defer l.Close()
	return errors.Is(l.TryShared(), lock.ErrLocked)
}
