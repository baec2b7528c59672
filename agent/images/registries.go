package images

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/containerd/containerd/remotes/docker"
	"go.yaml.in/yaml/v3"

	"labctl/internal/atomicfile"

	"labctl/internal/tomlstr"
)

// Registries is the content of registries.yaml, in k3s's format:
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["https://mirror.lab:5000", "http://10.0.0.5:5000"]
//	    rewrite:
//	      "^library/(.*)": "mirrored/$1"
//	  "*":                         # every registry without an entry of its own
//	    endpoint: ["https://cache.lab"]
//	configs:
//	  mirror.lab:5000:
//	    auth: {username: lab, password: secret}   # or auth: <base64 user:pass>, identitytoken
//	    tls:
//	      ca_file: /etc/ssl/lab-ca.pem
//	      cert_file: /etc/ssl/client.pem
//	      key_file: /etc/ssl/client-key.pem
//	      insecure_skip_verify: false
//
// A registry's mirrors are tried in order, then the registry itself (its
// default endpoint: registry-1.docker.io for docker.io). A mirror's
// rewrites change the repository asked of its endpoints (not of the
// default endpoint); the first pattern, in sorted order, that matches the
// repository path (library/nginx for nginx) applies, with $1-style
// references to its groups. Loopback registries (localhost, 127.0.0.0/8,
// ::1) and endpoints are spoken to in plain HTTP unless their scheme says
// https or a tls entry names them; an http:// endpoint elsewhere is plain
// HTTP too.
type Registries struct {
	Mirrors map[string]Mirror         `yaml:"mirrors"`
	Configs map[string]RegistryConfig `yaml:"configs"`
}

// Mirror lists a registry's mirror endpoints and rewrites.
type Mirror struct {
	Endpoints []string          `yaml:"endpoint"`
	Rewrites  map[string]string `yaml:"rewrite"`
}

// RegistryConfig holds the credentials and TLS settings for one registry
// host (host or host:port, as in the image names or endpoint URLs).
type RegistryConfig struct {
	Auth *RegistryAuth `yaml:"auth"`
	TLS  *RegistryTLS  `yaml:"tls"`
}

// RegistryAuth is a registry's credentials: username and password, or
// auth (base64 of user:password), or an identity token.
type RegistryAuth struct {
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	Auth          string `yaml:"auth"`
	IdentityToken string `yaml:"identitytoken"`
}

// RegistryTLS is a registry's TLS settings; relative paths are relative to
// registries.yaml's directory.
type RegistryTLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// hostsHeader starts every hosts.toml labctl writes; WriteHostsDir removes
// only directories whose hosts.toml starts with it.
const hostsHeader = "# Written by labctl from registries.yaml; edits are overwritten."

// LoadRegistries reads registries.yaml at path; a file that does not exist
// is an empty configuration.
func LoadRegistries(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := ParseRegistries(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ParseRegistries reads registries.yaml from data; baseDir anchors
// relative certificate paths. Unknown keys are errors, so that a typo does
// not silently leave a mirror out.
func ParseRegistries(data []byte, baseDir string) (*Registries, error) {
	r := &Registries{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(r); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a valid registries.yaml: %w", err)
	}
	for name, m := range r.Mirrors {
		if name != "*" && (name == "" || strings.ContainsAny(name, "/ ")) {
			return nil, fmt.Errorf("mirrors: %q is not a registry: name it as images do, host or host:port (docker.io, registry.lab:5000), or \"*\"", name)
		}
		for i, e := range m.Endpoints {
			u, err := endpointURL(e)
			if err != nil {
				return nil, fmt.Errorf("mirrors: %s: endpoint %q: %w", name, e, err)
			}
			m.Endpoints[i] = u.String()
		}
		for pattern := range m.Rewrites {
			if _, err := regexp.Compile(pattern); err != nil {
				return nil, fmt.Errorf("mirrors: %s: rewrite %q: %w", name, pattern, err)
			}
		}
	}
	for host, c := range r.Configs {
		if c.Auth != nil && c.Auth.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(c.Auth.Auth)
			if err != nil || !strings.Contains(string(raw), ":") {
				return nil, fmt.Errorf("configs: %s: auth: not base64 of user:password", host)
			}
		}
		if t := c.TLS; t != nil {
			for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
				if *p != "" && !filepath.IsAbs(*p) {
					*p = filepath.Join(baseDir, *p)
				}
			}
			if (t.CertFile == "") != (t.KeyFile == "") && t.KeyFile != "" {
				return nil, fmt.Errorf("configs: %s: tls: key_file without cert_file", host)
			}
		}
	}
	return r, nil
}

// endpointURL parses a mirror endpoint: a URL, or a host[:port] that means
// https (http for loopback hosts). The path defaults to /v2.
func endpointURL(endpoint string) (*url.URL, error) {
	if !strings.Contains(endpoint, "://") {
		scheme := "https"
		host, _, _ := strings.Cut(endpoint, "/")
		if docker.IsLocalhost(host) {
			scheme = "http"
		}
		endpoint = scheme + "://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: use http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// defaultEndpoint is the registry's own endpoint: the one tried last.
func (r *Registries) defaultEndpoint(registry string) *url.URL {
	if registry == "docker.io" {
		return &url.URL{Scheme: "https", Host: "registry-1.docker.io"}
	}
	scheme := "https"
	if docker.IsLocalhost(registry) && r.config(registry).TLS == nil {
		scheme = "http"
	}
	return &url.URL{Scheme: scheme, Host: registry}
}

// config returns the configs entry for a host, or the "*" entry.
func (r *Registries) config(host string) RegistryConfig {
	if r == nil {
		return RegistryConfig{}
	}
	if c, ok := r.Configs[host]; ok {
		return c
	}
	return r.Configs["*"]
}

// auth returns the registries.yaml credentials for a host that a request
// goes to (Docker Hub's are found under docker.io too).
func (r *Registries) auth(host string) (Auth, bool) {
	if r == nil {
		return Auth{}, false
	}
	keys := []string{host}
	if host == "registry-1.docker.io" {
		keys = append(keys, "docker.io", "index.docker.io")
	}
	for _, k := range keys {
		c, ok := r.Configs[k]
		if !ok || c.Auth == nil {
			continue
		}
		a := Auth{Username: c.Auth.Username, Password: c.Auth.Password, IdentityToken: c.Auth.IdentityToken,
			ServerAddress: k, Source: "registries.yaml"}
		if c.Auth.Auth != "" {
			raw, _ := base64.StdEncoding.DecodeString(c.Auth.Auth)
			a.Username, a.Password, _ = strings.Cut(string(raw), ":")
		}
		return a, true
	}
	if c := r.Configs["*"]; c.Auth != nil {
		return Auth{Username: c.Auth.Username, Password: c.Auth.Password, IdentityToken: c.Auth.IdentityToken,
			ServerAddress: "*", Source: "registries.yaml"}, true
	}
	return Auth{}, false
}

// mirror returns the mirror entry that serves a registry: its own, or "*".
func (r *Registries) mirror(registry string) (Mirror, bool) {
	if r == nil {
		return Mirror{}, false
	}
	if m, ok := r.Mirrors[registry]; ok {
		return m, true
	}
	m, ok := r.Mirrors["*"]
	return m, ok
}

// rewrite applies the registry's mirror rewrites to a repository path; ok
// is false when no rewrite matches.
func (r *Registries) rewrite(registry, repo string) (string, bool) {
	m, found := r.mirror(registry)
	if !found || len(m.Rewrites) == 0 {
		return repo, false
	}
	patterns := make([]string, 0, len(m.Rewrites))
	for p := range m.Rewrites {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	for _, p := range patterns {
		re := regexp.MustCompile(p) // checked by ParseRegistries
		if re.MatchString(repo) {
			return re.ReplaceAllString(repo, m.Rewrites[p]), true
		}
	}
	return repo, false
}

// HostsFiles returns the hosts.toml files that express the configuration
// for containerd's registry config_path: one per registry directory name
// ("docker.io", "mirror.lab:5000", "_default" for the "*" mirror).
//
// containerd 1.6 rejects a hosts.toml without a [host] table ("invalid
// `host` tree") and then silently uses the registry's defaults, so every
// file has one: for a registry without mirrors, the registry itself. The
// `server` key is the registry's own endpoint, tried after the [host]
// entries; the "*" file has none, so that each registry keeps its own.
// Rewrites have no hosts.toml form; labctl's resolver applies them.
func (r *Registries) HostsFiles() map[string][]byte {
	files := map[string][]byte{}
	if r == nil {
		return files
	}
	registries := map[string]bool{}
	for name := range r.Mirrors {
		registries[name] = true
	}
	for name := range r.Configs {
		if name != "*" {
			registries[name] = true
		}
	}
	for registry := range registries {
		var b strings.Builder
		fmt.Fprintln(&b, hostsHeader)
		var server *url.URL
		dir := registry
		if registry == "*" {
			dir = "_default"
		} else {
			server = r.defaultEndpoint(registry)
			fmt.Fprintf(&b, "server = %s\n", tomlstr.Quote(server.String()))
			r.writeTLS(&b, "", registry)
		}
		hosts := 0
		for _, e := range r.Mirrors[registry].Endpoints {
			u, err := endpointURL(e)
			if err != nil || (server != nil && u.Host == server.Host && u.Scheme == server.Scheme && (u.Path == "" || u.Path == "/v2")) {
				continue // the default endpoint is the server, without rewrites
			}
			r.writeHost(&b, u, []string{"pull", "resolve"})
			hosts++
		}
		if hosts == 0 {
			if server == nil {
				continue // a "*" mirror without endpoints
			}
			r.writeHost(&b, server, []string{"pull", "resolve", "push"})
		}
		files[dir] = []byte(b.String())
	}
	return files
}

func (r *Registries) writeHost(b *strings.Builder, u *url.URL, capabilities []string) {
	hostURL := *u
	override := false
	switch hostURL.Path {
	case "", "/", "/v2":
		hostURL.Path = "/v2"
	default:
		override = true
	}
	fmt.Fprintf(b, "\n[host.%s]\n", tomlstr.Quote(hostURL.String()))
	quoted := make([]string, len(capabilities))
	for i, c := range capabilities {
		quoted[i] = tomlstr.Quote(c)
	}
	fmt.Fprintf(b, "  capabilities = [%s]\n", strings.Join(quoted, ", "))
	if override {
		fmt.Fprintf(b, "  override_path = true\n")
	}
	r.writeTLS(b, "  ", u.Host)
}

func (r *Registries) writeTLS(b *strings.Builder, indent, host string) {
	t := r.config(host).TLS
	if t == nil {
		return
	}
	if t.InsecureSkipVerify {
		fmt.Fprintf(b, "%sskip_verify = true\n", indent)
	}
	if t.CAFile != "" {
		fmt.Fprintf(b, "%sca = %s\n", indent, tomlstr.Quote(t.CAFile))
	}
	if t.CertFile != "" {
		fmt.Fprintf(b, "%sclient = [[%s, %s]]\n", indent, tomlstr.Quote(t.CertFile), tomlstr.Quote(t.KeyFile))
	}
}

// WriteHostsDir writes HostsFiles into dir (<dir>/<registry>/hosts.toml)
// and removes the registry directories that an earlier labctl wrote and
// this configuration no longer has. Directories labctl did not write stay.
func (r *Registries) WriteHostsDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := r.HostsFiles()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; keep || !e.IsDir() {
			continue
		}
		if ours(filepath.Join(dir, e.Name(), "hosts.toml")) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for name, data := range files {
		path := filepath.Join(dir, name, "hosts.toml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ours tells whether labctl wrote the hosts.toml at path.
func ours(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(line) == hostsHeader
}
