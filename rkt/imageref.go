package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/rktng/rkt/discovery"
	"github.com/rktng/rkt/pkg/config"
	"github.com/rktng/rkt/pkg/fetch"
	"github.com/rktng/rkt/pkg/keystore"
	"github.com/rktng/rkt/store"
	"golang.org/x/sys/unix"
)

// fetchConfig builds the fetcher's configuration from the global flags.
// signature is the --signature for the one image fetched ("" for IMAGE.asc).
func fetchConfig(st *store.Store, policy fetch.PullPolicy, signature string) (fetch.Config, error) {
	conf, err := config.Load(config.Dirs{System: globals.SystemConfig, Local: globals.LocalConfig, User: globals.UserConfig})
	if err != nil {
		return fetch.Config{}, err
	}
	cfg := fetch.Config{
		Store:                 st,
		Keystore:              keystore.New(globals.SystemConfig, globals.LocalConfig),
		InsecureSkipVerify:    globals.Insecure.Has(insecureImage),
		InsecureAllowHTTP:     globals.Insecure.Has(insecureHTTP),
		InsecureSkipTLSVerify: globals.Insecure.Has(insecureTLS),
		InsecureSkipPubKey:    globals.Insecure.Has(insecurePubKey),
		TrustKeysFromHTTPS:    globals.TrustKeysFromHTTPS,
		PullPolicy:            policy,
		SignatureFile:         signature,
		Auth:                  fetch.AuthFromConfig(conf),
		Log:                   os.Stderr,
	}
	// Discovery always uses the standard ports; tests serving discovery
	// pages from an unprivileged port name it here (see discovery.PortEnv).
	if p := os.Getenv(discovery.PortEnv); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fetch.Config{}, fmt.Errorf("%s=%q: not a port number", discovery.PortEnv, p)
		}
		cfg.DiscoveryPort = uint(n)
	}
	if cfg.Docker, err = dockerConfig(); err != nil {
		return fetch.Config{}, err
	}
	if isTerminal(os.Stderr) {
		cfg.Progress = os.Stderr
	}
	if globals.Debug {
		cfg.Debug = os.Stderr
	}
	return cfg, nil
}

// isTerminal tells whether f is a TTY (progress bars only go there).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// resolveImageRef turns an image argument of run or prepare (a path, URL,
// appc name with labels, image ID, docker:// or oci: reference) into the
// ID of a stored image, fetching it as policy allows.
func resolveImageRef(ctx context.Context, st *store.Store, image, signature string, policy fetch.PullPolicy) (string, error) {
	if policy == "" {
		policy = fetch.PullNew
	}
	cfg, err := fetchConfig(st, policy, signature)
	if err != nil {
		return "", err
	}
	f, err := fetch.New(cfg)
	if err != nil {
		return "", err
	}
	id, err := f.Fetch(ctx, image, nil)
	if err != nil {
		return "", err
	}
	return id, nil
}

// dockerConfig gives docker:// fetches the registry credentials of auth.d
// (rktKind dockerAuth) and the mirrors of docker.d.
func dockerConfig() (fetch.DockerConfig, error) {
	c, err := loadConfig()
	if err != nil {
		return fetch.DockerConfig{}, err
	}
	return fetch.DockerConfig{
		Mirrors:     c.DockerMirrorsFor,
		Credentials: c.DockerCredentials,
	}, nil
}
