package pki_test

import (
	"crypto/tls"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clientcmdlatest "k8s.io/client-go/tools/clientcmd/api/latest"

	"labctl/server/pki"
)

// loadKubeconfig reads a kubeconfig as clientcmd.LoadFromFile does and
// builds the rest.Config that its current context means, as
// clientcmd.NewDefaultClientConfig does for these fields. (Package
// clientcmd itself needs a module that go.mod does not list yet.)
func loadKubeconfig(t *testing.T, path string) (*clientcmdapi.Config, *rest.Config) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := clientcmdlatest.Codec.Decode(data,
		&schema.GroupVersionKind{Version: clientcmdlatest.Version, Kind: "Config"}, clientcmdapi.NewConfig())
	if err != nil {
		t.Fatalf("decode %s: %v\n%s", path, err, data)
	}
	cfg := obj.(*clientcmdapi.Config)
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		t.Fatalf("current context %q not in %s", cfg.CurrentContext, path)
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	if cluster == nil || user == nil {
		t.Fatalf("context %q names a missing cluster %q or user %q", cfg.CurrentContext, kctx.Cluster, kctx.AuthInfo)
	}
	return cfg, &rest.Config{
		Host: cluster.Server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cluster.CertificateAuthorityData,
			CertData: user.ClientCertificateData,
			KeyData:  user.ClientKeyData,
		},
	}
}

// TestWriteKubeconfig: the admin kubeconfig is a file kubectl reads, with
// the mode asked for, and the client it makes is verified by a server that
// trusts the cluster CA only, and verifies that server.
func TestWriteKubeconfig(t *testing.T) {
	p := ensure(t, pki.Config{Dir: t.TempDir()})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.TLS.VerifiedChains[0][0].Subject.CommonName)
	}))
	srv.Listener.Close()
	srv.Listener = listenLoopback(t)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.Serving.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.CertPool(),
	}
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	url := pki.LocalServerURL(netip.Addr{}, int(port))

	dir := t.TempDir()
	for _, tt := range []struct {
		name     string
		path     string
		existing fs.FileMode // mode of a file already there; 0 for none
		mode     fs.FileMode
	}{
		{"new file in new directories", filepath.Join(dir, "etc", "labctl", "labctl.yaml"), 0, 0o600},
		{"readable by all", filepath.Join(dir, "readable.yaml"), 0, 0o644},
		{"replaces a file, mode and all", filepath.Join(dir, "existing.yaml"), 0o666, 0o640},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.existing != 0 {
				if err := os.WriteFile(tt.path, []byte("old"), tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(tt.path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := pki.WriteKubeconfig(tt.path, tt.mode, url, p.CA.CertPEM, p.Admin.CertPEM, p.Admin.KeyPEM); err != nil {
				t.Fatalf("WriteKubeconfig: %v", err)
			}
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.mode {
				t.Errorf("kubeconfig has mode %v, want %v", fi.Mode().Perm(), tt.mode)
			}

			cfg, restCfg := loadKubeconfig(t, tt.path)
			if cfg.CurrentContext != "default" || cfg.Contexts["default"].Cluster != "default" || cfg.Contexts["default"].AuthInfo != "default" {
				t.Errorf("context %q = %+v, want default with cluster and user default", cfg.CurrentContext, cfg.Contexts[cfg.CurrentContext])
			}
			if got := cfg.Clusters["default"].Server; got != url || !strings.HasPrefix(got, "https://127.0.0.1:") {
				t.Errorf("server %q, want %q", got, url)
			}

			client, err := rest.HTTPClientFor(restCfg)
			if err != nil {
				t.Fatalf("rest.HTTPClientFor: %v", err)
			}
			resp, err := client.Get(restCfg.Host + "/whoami")
			if err != nil {
				t.Fatalf("GET with the kubeconfig's client: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != "system:admin" {
				t.Errorf("GET = %d %q, want 200 system:admin", resp.StatusCode, body)
			}
		})
	}
}

func TestWriteKubeconfigErrors(t *testing.T) {
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		path string
		mode fs.FileMode
		want string
	}{
		{"directory under a file", filepath.Join(aFile, "kube", "config"), 0o600, "create the directory of the kubeconfig"},
		{"mode beyond permissions", filepath.Join(t.TempDir(), "config"), os.ModeSetuid | 0o600, "bits beyond the permissions"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := pki.WriteKubeconfig(tt.path, tt.mode, "https://127.0.0.1:6443", nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("WriteKubeconfig = %v, want an error containing %q and the path", err, tt.want)
			}
		})
	}
}
