package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/appc/spec/schema"
	"github.com/rktng/rkt/pkg/mds"
	"github.com/rktng/rkt/pkg/pod"
)

// mdsRegistration builds the registration of a pod with the metadata
// service from its manifest and its apps' image manifests.
func mdsRegistration(podDir, uuid, token string, pm *schema.PodManifest) (*mds.Registration, error) {
	reg := &mds.Registration{UUID: uuid, Token: token, Manifest: *pm, Apps: map[string]mds.App{}, PodDir: podDir}
	for _, ra := range pm.Apps {
		b, err := os.ReadFile(pod.AppImageManifestPath(podDir, ra.Name.String()))
		if err != nil {
			return nil, err
		}
		var im schema.ImageManifest
		if err := json.Unmarshal(b, &im); err != nil {
			return nil, fmt.Errorf("app %s image manifest: %w", ra.Name, err)
		}
		reg.Apps[ra.Name.String()] = mds.App{ImageID: ra.Image.ID.String(), ImageManifest: im}
	}
	return reg, nil
}

// refreshMDS tells the metadata service about a running pod's apps after
// `rkt app add` or `rkt app rm`, so that /pod/manifest and /apps/APP
// answer for the pod as it now is. Pods that did not register have
// nothing to refresh; the service keeps the addresses the pod is bound to.
func refreshMDS(ctx context.Context, p *pod.Pod) error {
	rc, err := pod.ReadRuntimeConfig(p.Dir)
	if err != nil || rc.MDSToken == "" || rc.MDSSocket == "" {
		return err
	}
	pm, err := p.Manifest()
	if err != nil {
		return err
	}
	reg, err := mdsRegistration(p.Dir, p.UUID, rc.MDSToken, pm)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mds.NewClient(rc.MDSSocket).Register(ctx, reg); err != nil {
		return fmt.Errorf("metadata service: update pod %s: %w", p.UUID, err)
	}
	return nil
}
