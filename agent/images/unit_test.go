package images

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker/config"
)

func TestPullPolicy(t *testing.T) {
	for _, tc := range []struct {
		image string
		want  PullPolicy
	}{
		{"nginx", PullAlways},
		{"nginx:latest", PullAlways},
		{"docker.io/library/nginx:latest", PullAlways},
		{"registry.local:5000/app", PullAlways},
		{"nginx:1.25", PullIfNotPresent},
		{"localhost:5000/app:v1", PullIfNotPresent},
		{"nginx@sha256:" + strings.Repeat("a", 64), PullIfNotPresent},
		{"nginx:latest@sha256:" + strings.Repeat("a", 64), PullAlways},
		{"NGINX", PullIfNotPresent}, // does not parse: upstream's default
	} {
		if got := DefaultPullPolicy(tc.image); got != tc.want {
			t.Errorf("DefaultPullPolicy(%q) = %s, want %s", tc.image, got, tc.want)
		}
	}

	for _, tc := range []struct {
		policy  PullPolicy
		present bool
		want    bool
	}{
		{PullAlways, true, true},
		{PullAlways, false, true},
		{PullIfNotPresent, true, false},
		{PullIfNotPresent, false, true},
		{PullNever, true, false},
		{PullNever, false, false},
	} {
		if got := ShouldPull(tc.policy, tc.present); got != tc.want {
			t.Errorf("ShouldPull(%s, present=%v) = %v, want %v", tc.policy, tc.present, got, tc.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	d := "sha256:" + strings.Repeat("b", 64)
	for in, want := range map[string]string{
		"nginx":                        "docker.io/library/nginx:latest",
		"nginx:1.25":                   "docker.io/library/nginx:1.25",
		"me/app":                       "docker.io/me/app:latest",
		"nginx@" + d:                   "docker.io/library/nginx@" + d,
		"registry.local:5000/app":      "registry.local:5000/app:latest",
		"127.0.0.1:5000/test:1":        "127.0.0.1:5000/test:1",
		"docker.io/library/busybox:1":  "docker.io/library/busybox:1",
		"index.docker.io/library/x:2":  "docker.io/library/x:2",
		"localhost/app":                "localhost/app:latest",
		"quay.io/coreos/etcd:v3.5.0-0": "quay.io/coreos/etcd:v3.5.0-0",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"NGINX", "nginx:", "a b", ""} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q): no error", bad)
		}
	}
	if got := Familiar("docker.io/library/nginx:latest"); got != "nginx:latest" {
		t.Errorf("Familiar = %s", got)
	}
	for in, want := range map[string]string{"nginx": "nginx:latest", "nginx:1": "nginx:1", "nginx:latest": "nginx:latest",
		"nginx@" + d: "nginx@" + d, "localhost:5000/a": "localhost:5000/a:latest"} {
		if got, err := applyDefaultImageTag(in); err != nil || got != want {
			t.Errorf("applyDefaultImageTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func dockerConfigJSON(server, user, pass string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return []byte(`{"auths":{"` + server + `":{"auth":"` + auth + `"}}}`)
}

func TestKeyring(t *testing.T) {
	k, err := newKeyring([]PullSecret{
		{Name: "hub", DockerConfigJSON: dockerConfigJSON("https://index.docker.io/v1/", "hubuser", "hubpass")},
		{Name: "corp", DockerConfigJSON: []byte(`{"auths":{"*.corp.lab":{"username":"wild","password":"w"},"reg.corp.lab/team":{"username":"team","password":"t"}}}`)},
		{Name: "old", Dockercfg: []byte(`{"localhost:5000":{"username":"local","password":"l"}}`)},
		{Name: "empty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	users := func(repo string) string {
		var u []string
		for _, a := range k.lookup(repo) {
			u = append(u, a.Username)
		}
		return strings.Join(u, ",")
	}
	for repo, want := range map[string]string{
		"docker.io/library/nginx":  "hubuser",
		"docker.io/me/app":         "hubuser",
		"reg.corp.lab/team/app":    "team,wild",
		"reg.corp.lab/other/app":   "wild",
		"corp.lab/app":             "",
		"localhost:5000/app":       "local",
		"localhost:5001/app":       "",
		"quay.io/coreos/etcd":      "",
		"deep.reg.corp.lab/x/y":    "",
		"registry.local:5000/team": "",
	} {
		if got := users(repo); got != want {
			t.Errorf("lookup(%s) = %q, want %q", repo, got, want)
		}
	}
	if a := k.lookup("docker.io/library/nginx"); len(a) != 1 || a[0].Password != "hubpass" || a[0].Source != "hub" {
		t.Errorf("hub credentials: %+v", a)
	}
	if _, err := newKeyring([]PullSecret{{Name: "bad", DockerConfigJSON: []byte("{")}}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := newKeyring([]PullSecret{{Name: "bad64", DockerConfigJSON: []byte(`{"auths":{"x":{"auth":"!!"}}}`)}}); err == nil {
		t.Error("bad auth: no error")
	}
}

func TestRegistriesHostsFiles(t *testing.T) {
	yaml := `
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.lab:5000"
      - "127.0.0.1:5001"
      - "https://registry-1.docker.io"
    rewrite:
      "^library/(.*)": "mirrored/$1"
  "*":
    endpoint: ["https://cache.lab/prefix"]
  127.0.0.1:5002:
    endpoint: []
configs:
  mirror.lab:5000:
    auth:
      auth: ` + base64.StdEncoding.EncodeToString([]byte("lab:secret")) + `
    tls:
      ca_file: ca.pem
      cert_file: /etc/c.pem
      key_file: /etc/k.pem
  secure.lab:
    tls:
      insecure_skip_verify: true
  docker.io:
    auth: {username: hub, password: hubpw}
`
	r, err := ParseRegistries([]byte(yaml), "/etc/labctl")
	if err != nil {
		t.Fatal(err)
	}
	files := r.HostsFiles()
	want := map[string][]string{
		"docker.io": {
			hostsHeader + "\nserver = \"https://registry-1.docker.io\"\n",
			"[host.\"https://mirror.lab:5000/v2\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/etc/labctl/ca.pem\"\n  client = [[\"/etc/c.pem\", \"/etc/k.pem\"]]\n",
			"[host.\"http://127.0.0.1:5001/v2\"]\n",
		},
		"_default":        {"[host.\"https://cache.lab/prefix\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n"},
		"127.0.0.1:5002":  {"server = \"http://127.0.0.1:5002\"\n", "[host.\"http://127.0.0.1:5002/v2\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"},
		"secure.lab":      {"server = \"https://secure.lab\"\nskip_verify = true\n", "[host.\"https://secure.lab/v2\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  skip_verify = true\n"},
		"mirror.lab:5000": {"server = \"https://mirror.lab:5000\"\nca = \"/etc/labctl/ca.pem\"\n"},
	}
	if len(files) != len(want) {
		t.Errorf("files for %v, want %d", keys(files), len(want))
	}
	for dir, parts := range want {
		got := string(files[dir])
		for _, p := range parts {
			if !strings.Contains(got, p) {
				t.Errorf("%s/hosts.toml lacks %q:\n%s", dir, p, got)
			}
		}
		// containerd 1.6 needs a [host] table in every file.
		if !strings.Contains(got, "[host.") {
			t.Errorf("%s/hosts.toml has no [host] table", dir)
		}
	}
	if strings.Contains(string(files["docker.io"]), "registry-1.docker.io/v2") {
		t.Errorf("the default endpoint is listed as a mirror:\n%s", files["docker.io"])
	}
	if strings.Contains(string(files["_default"]), "server") {
		t.Errorf("_default has a server:\n%s", files["_default"])
	}

	if got, ok := r.rewrite("docker.io", "library/nginx"); !ok || got != "mirrored/nginx" {
		t.Errorf("rewrite = %q, %v", got, ok)
	}
	if _, ok := r.rewrite("docker.io", "me/app"); ok {
		t.Error("rewrite of me/app")
	}
	if a, ok := r.auth("mirror.lab:5000"); !ok || a.Username != "lab" || a.Password != "secret" {
		t.Errorf("auth(mirror.lab:5000) = %+v, %v", a, ok)
	}
	if a, ok := r.auth("registry-1.docker.io"); !ok || a.Username != "hub" {
		t.Errorf("auth(registry-1.docker.io) = %+v, %v", a, ok)
	}
	if _, ok := r.auth("other.lab"); ok {
		t.Error("auth for other.lab")
	}

	// WriteHostsDir replaces its own files and leaves others alone.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "stale.lab"), 0o755)
	os.WriteFile(filepath.Join(dir, "stale.lab", "hosts.toml"), []byte(hostsHeader+"\nserver = \"https://stale.lab\"\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "hand.lab"), 0o755)
	os.WriteFile(filepath.Join(dir, "hand.lab", "hosts.toml"), []byte("server = \"https://hand.lab\"\n"), 0o644)
	if err := r.WriteHostsDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale.lab")); !os.IsNotExist(err) {
		t.Error("stale.lab was not removed")
	}
	if _, err := os.Stat(filepath.Join(dir, "hand.lab", "hosts.toml")); err != nil {
		t.Error("hand.lab was removed")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "docker.io", "hosts.toml")); err != nil || !strings.Contains(string(b), "mirror.lab") {
		t.Errorf("docker.io/hosts.toml: %v %s", err, b)
	}

	for _, bad := range []string{
		"mirrors:\n  docker.io:\n    endpoints: [x]\n",          // typo
		"mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n", // scheme
		"mirrors:\n  docker.io:\n    rewrite: {\"(\": x}\n",     // regexp
		"configs:\n  x:\n    auth: {auth: \"!!\"}\n",
		"mirrors:\n  https://docker.io:\n    endpoint: [\"https://m\"]\n",
	} {
		if _, err := ParseRegistries([]byte(bad), "/"); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
	if r, err := ParseRegistries(nil, "/"); err != nil || len(r.HostsFiles()) != 0 {
		t.Errorf("empty file: %v", err)
	}
	if r, err := LoadRegistries(filepath.Join(dir, "none.yaml")); err != nil || r == nil {
		t.Errorf("missing file: %v", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBackOff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBackOff(10*time.Second, 300*time.Second, func() time.Time { return now })
	if b.inBackOff("k") {
		t.Fatal("in back-off before a failure")
	}
	waits := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for _, w := range waits {
		b.next("k")
		now = now.Add(w*time.Second - time.Millisecond)
		if !b.inBackOff("k") {
			t.Fatalf("not in back-off just before %vs", w)
		}
		now = now.Add(time.Millisecond)
		if b.inBackOff("k") {
			t.Fatalf("still in back-off after %vs", w)
		}
	}
	// Quiet for more than twice the maximum: start over.
	now = now.Add(601 * time.Second)
	b.next("k")
	now = now.Add(10 * time.Second)
	if b.inBackOff("k") {
		t.Error("the back-off did not start over")
	}
	b.gc()
	now = now.Add(time.Hour)
	b.gc()
	if len(b.entries) != 0 {
		t.Error("gc kept an old entry")
	}
}

func TestPullErrorIs(t *testing.T) {
	cause := errors.New("boom")
	err := error(&PullError{Reason: ErrImagePull, Message: "failed", Err: cause})
	if !errors.Is(err, ErrImagePull) || errors.Is(err, ErrImagePullBackOff) || !errors.Is(err, cause) {
		t.Error("errors.Is does not see the reason or the cause")
	}
	if err.Error() != "ErrImagePull: failed" {
		t.Errorf("Error() = %s", err)
	}
	if !IsTarball("a.tar.gz") || !IsTarball("a.tar") || IsTarball("a.txt") || baseName("/x/busybox.tar.zst") != "busybox" {
		t.Error("tarball names")
	}
}

// TestHostsFilesAgreeWithContainerd reads the written hosts.toml files back
// through containerd's own ConfigureHosts, as both labctl's pulls and
// containerd's CRI plugin do.
func TestHostsFilesAgreeWithContainerd(t *testing.T) {
	r, err := ParseRegistries([]byte(`
mirrors:
  docker.io:
    endpoint: ["https://mirror.lab:5000", "127.0.0.1:5001"]
  "*":
    endpoint: ["https://cache.lab/prefix"]
  localhost:5002:
    endpoint: []
configs:
  secure.lab:
    tls: {insecure_skip_verify: true}
`), "/")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := r.WriteHostsDir(dir); err != nil {
		t.Fatal(err)
	}
	hosts := dedupeHosts(config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(dir)}))
	for registry, want := range map[string][]string{
		"docker.io":      {"https://mirror.lab:5000/v2", "http://127.0.0.1:5001/v2", "https://registry-1.docker.io/v2"},
		"quay.io":        {"https://cache.lab/prefix", "https://quay.io/v2"},
		"localhost:5002": {"http://localhost:5002/v2"},
		"secure.lab":     {"https://secure.lab/v2"},
	} {
		list, err := hosts(registry)
		if err != nil {
			t.Fatalf("%s: %v", registry, err)
		}
		var got []string
		for _, h := range list {
			got = append(got, h.Scheme+"://"+h.Host+h.Path)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: hosts %v, want %v", registry, got, want)
		}
		if registry == "secure.lab" {
			tr, ok := list[0].Client.Transport.(*http.Transport)
			if !ok || tr.TLSClientConfig == nil || !tr.TLSClientConfig.InsecureSkipVerify {
				t.Errorf("secure.lab does not skip verification")
			}
		}
	}
}
