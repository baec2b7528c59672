package images

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// PullSecret is the content of one of a pod's imagePullSecrets, as data:
// the kubelet copies the secret's keys in, so that this package needs no
// Kubernetes client. A secret of type kubernetes.io/dockerconfigjson has
// DockerConfigJSON (its .dockerconfigjson key), one of type
// kubernetes.io/dockercfg has Dockercfg (its .dockercfg key).
type PullSecret struct {
	// Name names the secret in messages.
	Name             string
	DockerConfigJSON []byte
	Dockercfg        []byte
}

// Auth is one set of registry credentials.
type Auth struct {
	Username      string
	Password      string
	IdentityToken string
	// ServerAddress is where the credentials came from: the key of the
	// docker config entry, or the registries.yaml host.
	ServerAddress string
	// Source names the secret (or "registries.yaml").
	Source string
}

// secret returns what containerd's resolver wants: a user name and a
// password, or no user name and an identity token.
func (a Auth) secret() (string, string) {
	if a.IdentityToken != "" {
		return "", a.IdentityToken
	}
	return a.Username, a.Password
}

// dockerConfigEntry is one entry of a docker config file, as upstream's
// kubelet reads it: "auth" (base64 of user:password) wins over username
// and password.
type dockerConfigEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func (e dockerConfigEntry) auth(server, source string) (Auth, error) {
	a := Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, ServerAddress: server, Source: source}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return Auth{}, fmt.Errorf("the auth of %s is not base64: %w", server, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Auth{}, fmt.Errorf("the auth of %s is not user:password", server)
		}
		a.Username, a.Password = user, strings.Trim(pass, "\x00")
	}
	return a, nil
}

// keyring finds the credentials for an image among docker config entries,
// with upstream's matching rules (credentialprovider.BasicDockerKeyring):
// an entry's key is a registry host, optionally with a port and a path
// prefix, and its host may hold globs per dot-separated part
// (*.example.com); more specific keys come first; keys for
// index.docker.io serve Docker Hub images.
type keyring struct {
	index []string
	creds map[string][]Auth
}

const defaultRegistryHost = "index.docker.io"

// newKeyring reads the pull secrets. A secret that does not parse is an
// error, as upstream's kubelet makes it.
func newKeyring(secrets []PullSecret) (*keyring, error) {
	k := &keyring{creds: map[string][]Auth{}}
	for _, s := range secrets {
		var entries map[string]dockerConfigEntry
		switch {
		case len(s.DockerConfigJSON) > 0:
			var cfg struct {
				Auths map[string]dockerConfigEntry `json:"auths"`
			}
			if err := json.Unmarshal(s.DockerConfigJSON, &cfg); err != nil {
				return nil, fmt.Errorf("image pull secret %q: .dockerconfigjson is not valid: %w", s.Name, err)
			}
			entries = cfg.Auths
		case len(s.Dockercfg) > 0:
			if err := json.Unmarshal(s.Dockercfg, &entries); err != nil {
				return nil, fmt.Errorf("image pull secret %q: .dockercfg is not valid: %w", s.Name, err)
			}
		default:
			continue
		}
		servers := make([]string, 0, len(entries))
		for server := range entries {
			servers = append(servers, server)
		}
		sort.Strings(servers)
		for _, server := range servers {
			a, err := entries[server].auth(server, s.Name)
			if err != nil {
				return nil, fmt.Errorf("image pull secret %q: %w", s.Name, err)
			}
			k.add(server, a)
		}
	}
	// Longer (more specific) keys first.
	slices.Sort(k.index)
	k.index = slices.Compact(k.index)
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
	return k, nil
}

func (k *keyring) add(server string, a Auth) {
	value := server
	if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
		value = "https://" + value
	}
	parsed, err := url.Parse(value)
	if err != nil {
		return // upstream skips entries it cannot parse
	}
	// docker accepts https://host/v1/ and https://host/v2/ for host.
	path := parsed.Path
	if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1/") {
		path = path[3:]
	}
	key := parsed.Host
	if path != "" && path != "/" {
		key += path
	}
	k.creds[key] = append(k.creds[key], a)
	k.index = append(k.index, key)
}

// lookup returns the credentials to try, in order, for an image
// repository such as docker.io/library/nginx or registry.local:5000/app.
func (k *keyring) lookup(repo string) []Auth {
	var out []Auth
	for _, key := range k.index {
		if urlsMatch(key, repo) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) > 0 {
		return out
	}
	if isDefaultRegistryMatch(repo) {
		return k.creds[defaultRegistryHost]
	}
	return nil
}

// isDefaultRegistryMatch tells whether the repository is on Docker Hub.
func isDefaultRegistryMatch(repo string) bool {
	first, _, found := strings.Cut(repo, "/")
	if first == "" {
		return false
	}
	if !found || first == "docker.io" || first == "index.docker.io" {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// urlsMatch tells whether the glob key (host[:port][/path], globs in host
// parts) matches the target repository.
func urlsMatch(glob, target string) bool {
	g, err := url.Parse("https://" + glob)
	if err != nil {
		return false
	}
	t, err := url.Parse("https://" + target)
	if err != nil {
		return false
	}
	gParts, gPort := splitURL(g)
	tParts, tPort := splitURL(t)
	if gPort != tPort || len(gParts) != len(tParts) || !strings.HasPrefix(t.Path, g.Path) {
		return false
	}
	for i := range gParts {
		if ok, err := filepath.Match(gParts[i], tParts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitURL(u *url.URL) ([]string, string) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	return strings.Split(host, "."), port
}
