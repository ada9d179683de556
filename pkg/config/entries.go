package config

import "sort"

// The entry types below are the files' own format, so that what `rkt
// config` prints can be put back into a configuration directory as is.

type authEntry struct {
	Version     string   `json:"rktVersion"`
	Kind        string   `json:"rktKind"`
	Domains     []string `json:"domains"`
	Type        string   `json:"type"`
	Credentials any      `json:"credentials"`
}

type dockerAuthEntry struct {
	Version     string              `json:"rktVersion"`
	Kind        string              `json:"rktKind"`
	Registries  []string            `json:"registries"`
	Credentials RegistryCredentials `json:"credentials"`
}

type dockerMirrorsEntry struct {
	Version    string   `json:"rktVersion"`
	Kind       string   `json:"rktKind"`
	Registries []string `json:"registries"`
	Mirrors    []string `json:"mirrors"`
}

type pathsEntry struct {
	Version      string `json:"rktVersion"`
	Kind         string `json:"rktKind"`
	Data         string `json:"data,omitempty"`
	Stage1Images string `json:"stage1-images,omitempty"`
}

type stage1Entry struct {
	Version  string `json:"rktVersion"`
	Kind     string `json:"rktKind"`
	Name     string `json:"name,omitempty"`
	SVersion string `json:"version,omitempty"`
	Location string `json:"location,omitempty"`
}

// Entries returns the merged configuration as rkt's `config` command
// printed it under "stage0": one auth entry per domain and one dockerAuth
// entry per registry (sorted), our dockerMirrors likewise, then paths and
// stage1. Credentials are shown
// in full, as rkt did: the command exists to show what will be sent.
func (c *Config) Entries() []any {
	var out []any
	for _, d := range sortedKeys(c.Auth) {
		a := c.Auth[d]
		var cred any
		switch a.Type {
		case AuthBasic:
			cred = a.Basic
		case AuthOAuth:
			cred = map[string]string{"token": a.Token}
		case AuthAWS:
			cred = a.AWS
		}
		out = append(out, authEntry{"v1", "auth", []string{d}, a.Type, cred})
	}
	for _, r := range sortedKeys(c.DockerAuth) {
		out = append(out, dockerAuthEntry{"v1", "dockerAuth", []string{r}, c.DockerAuth[r]})
	}
	for _, r := range sortedKeys(c.DockerMirrors) {
		out = append(out, dockerMirrorsEntry{"v1", "dockerMirrors", []string{r}, c.DockerMirrors[r]})
	}
	if c.Paths != (Paths{}) {
		out = append(out, pathsEntry{"v1", "paths", c.Paths.Data, c.Paths.Stage1Images})
	}
	if c.Stage1 != (Stage1{}) {
		out = append(out, stage1Entry{"v1", "stage1", c.Stage1.Name, c.Stage1.Version, c.Stage1.Location})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
