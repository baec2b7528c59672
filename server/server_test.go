package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"labctl/internal/syncbuf"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clientcmdlatest "k8s.io/client-go/tools/clientcmd/api/latest"

	"labctl/datastore"
	"labctl/server"
	"labctl/server/loopback"
	"labctl/server/pki"
)

// running is a server started by start.
type running struct {
	addr   net.Addr
	cancel context.CancelFunc
	done   chan error
	logs   *syncbuf.Buffer
}

// start runs server.Run with cfg on 127.0.0.1 and a free port, and waits
// until it serves. The test fails if Run has not returned when it ends.
func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.BindAddress = netip.MustParseAddr("127.0.0.1")
	cfg.HTTPSPort = 0
	ready := make(chan net.Addr, 1)
	cfg.Ready = func(a net.Addr) { ready <- a }

	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("server.Run did not return after its context was cancelled")
		}
	})
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		t.Fatalf("server.Run returned before it was ready: %v\nlogs:\n%s", err, logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("server not ready after 15s\nlogs:\n%s", logs)
	}
	return r
}

// stop cancels the server and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("server.Run did not return within 15s of cancel")
		return nil
	}
}

// insecureClient skips certificate verification, to tell whether anything
// answers at all.
func insecureClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
}

// anonymousClient trusts the cluster CA in dataDir and has no client
// certificate.
func anonymousClient(t *testing.T, dataDir string) *http.Client {
	t.Helper()
	return tlsClient(t, dataDir, nil)
}

// certClient trusts the cluster CA in dataDir and presents the client
// certificate NAME.crt, NAME.key from certDir.
func certClient(t *testing.T, dataDir, certDir, name string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return tlsClient(t, dataDir, &cert)
}

func tlsClient(t *testing.T, dataDir string, cert *tls.Certificate) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(tlsDir(dataDir), "server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in server-ca.crt")
	}
	cfg := &tls.Config{RootCAs: roots}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func tlsDir(dataDir string) string { return filepath.Join(dataDir, "server", "tls") }

// kubeconfigClient reads a kubeconfig as clientcmd.LoadFromFile does and
// returns the server URL of its current context and a client-go client for
// it. (Package clientcmd itself needs a module that go.mod does not list
// yet.)
func kubeconfigClient(t *testing.T, path string) (string, *http.Client) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := clientcmdlatest.Codec.Decode(data,
		&schema.GroupVersionKind{Version: clientcmdlatest.Version, Kind: "Config"}, clientcmdapi.NewConfig())
	if err != nil {
		t.Fatalf("decode the kubeconfig %s: %v", path, err)
	}
	cfg := obj.(*clientcmdapi.Config)
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil || cfg.AuthInfos[kctx.AuthInfo] == nil {
		t.Fatalf("kubeconfig %s has no complete current context:\n%s", path, data)
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	restCfg := &rest.Config{
		Host:    cluster.Server,
		Timeout: 5 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   cluster.CertificateAuthorityData,
			CertData: user.ClientCertificateData,
			KeyData:  user.ClientKeyData,
		},
	}
	rt, err := rest.TransportFor(restCfg)
	if err != nil {
		t.Fatalf("rest.TransportFor: %v", err)
	}
	return cluster.Server, &http.Client{Transport: rt, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

func TestRunServesHealth(t *testing.T) {
	for _, endpoint := range []string{"memory://", ""} {
		name := endpoint
		if name == "" {
			name = "embedded bbolt"
		}
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			kubeconfig := filepath.Join(t.TempDir(), "labctl.yaml")
			r := start(t, server.Config{DataDir: dataDir, DatastoreEndpoint: endpoint, KubeconfigPath: kubeconfig})
			base := "https://" + r.addr.String()
			c := anonymousClient(t, dataDir)

			for _, path := range []string{"/healthz", "/livez", "/readyz"} {
				if code, body := get(t, c, http.MethodGet, base+path); code != http.StatusOK || body != "ok" {
					t.Errorf("GET %s = %d %q, want 200 \"ok\"", path, code, body)
				}
			}
			if code, _ := get(t, c, http.MethodHead, base+"/healthz"); code != http.StatusOK {
				t.Errorf("HEAD /healthz = %d, want 200", code)
			}
			if code, _ := get(t, c, http.MethodPost, base+"/healthz"); code != http.StatusMethodNotAllowed {
				t.Errorf("POST /healthz = %d, want 405", code)
			}
			if code, body := get(t, c, http.MethodGet, base+"/api"); code != http.StatusUnauthorized {
				t.Errorf("anonymous GET /api = %d %q, want 401", code, body)
			}
			_, admin := kubeconfigClient(t, kubeconfig)
			if code, body := get(t, admin, http.MethodGet, base+"/api"); code != http.StatusOK || !strings.Contains(body, `"kind":"APIVersions"`) {
				t.Errorf("admin GET /api = %d %s, want 200 and the APIVersions", code, body)
			}

			dbDir := filepath.Join(dataDir, "server", "db")
			fi, err := os.Stat(dbDir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s has mode %v, want 0700", dbDir, fi.Mode().Perm())
			}

			if err := r.stop(t); err != nil {
				t.Fatalf("Run returned %v after cancel, want nil", err)
			}
			if _, err := insecureClient().Get(base + "/healthz"); err == nil {
				t.Error("the server still answers after Run returned")
			}
			logs := r.logs.String()
			if !strings.Contains(logs, `msg="server ready" address=`+r.addr.String()+" took=") {
				t.Errorf("no ready line with the address and the start time in the logs:\n%s", logs)
			}

			if endpoint == "" {
				// Run closed the store: its file lock is free again.
				if _, err := os.Stat(filepath.Join(dbDir, datastore.DBFileName)); err != nil {
					t.Fatalf("no bbolt file: %v", err)
				}
				s, err := datastore.Open(datastore.Config{Dir: dbDir, OpenTimeout: 2 * time.Second})
				if err != nil {
					t.Fatalf("reopen the store after Run returned: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestRunTightensDatastoreDir(t *testing.T) {
	dataDir := t.TempDir()
	dbDir := filepath.Join(dataDir, "server", "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := start(t, server.Config{DataDir: dataDir, DatastoreEndpoint: "memory://"})
	fi, err := os.Stat(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("existing %s left with mode %v, want 0700", dbDir, fi.Mode().Perm())
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestRunCertificate checks the serving certificate: the one in the data
// directory, signed by the cluster CA, for server authentication, and valid
// for the server's names and addresses.
func TestRunCertificate(t *testing.T) {
	dataDir := t.TempDir()
	r := start(t, server.Config{DataDir: dataDir, DatastoreEndpoint: "memory://", NodeName: "node-1",
		NodeIP: netip.MustParseAddr("192.168.1.10"), AdvertiseAddress: netip.MustParseAddr("203.0.113.7")})
	conn, err := tls.Dial("tcp", r.addr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	onDisk, err := tls.LoadX509KeyPair(filepath.Join(tlsDir(dataDir), "serving-kube-apiserver.crt"),
		filepath.Join(tlsDir(dataDir), "serving-kube-apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Raw, onDisk.Certificate[0]) {
		t.Error("the server presents another certificate than serving-kube-apiserver.crt")
	}
	// What a client that trusts the CA in the data directory and nothing
	// else accepts.
	roots := anonymousClient(t, dataDir).Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, name := range []string{"127.0.0.1", "::1", "localhost", "node-1", "kubernetes", "kubernetes.default.svc.cluster.local",
		"10.43.0.1", "192.168.1.10", "203.0.113.7"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("certificate not valid for %s: %v", name, err)
		}
	}
}

// TestRunAuthentication: the admin kubeconfig gets through, a request
// without a client certificate gets 401 except on the health paths, a
// certificate outside system:masters gets 403, and one from another CA
// does not get through the handshake.
func TestRunAuthentication(t *testing.T) {
	dataDir := t.TempDir()
	kubeconfig := filepath.Join(t.TempDir(), "etc", "labctl", "labctl.yaml")
	r := start(t, server.Config{DataDir: dataDir, DatastoreEndpoint: "memory://", KubeconfigPath: kubeconfig, KubeconfigMode: 0o640})
	base := "https://" + r.addr.String()

	fi, err := os.Stat(kubeconfig)
	if err != nil {
		t.Fatalf("no admin kubeconfig: %v", err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("kubeconfig mode %v, want 0640", fi.Mode().Perm())
	}
	serverURL, admin := kubeconfigClient(t, kubeconfig)
	if want := "https://127.0.0.1:" + strconv.Itoa(r.addr.(*net.TCPAddr).Port); serverURL != want {
		t.Errorf("kubeconfig server %q, want %q", serverURL, want)
	}

	const unauthorized = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}` + "\n"
	anonymous := anonymousClient(t, dataDir)
	kubeProxy := certClient(t, dataDir, tlsDir(dataDir), "client-kube-proxy")
	tests := []struct {
		name     string
		client   *http.Client
		path     string
		wantCode int
		wantBody string // "" for any
	}{
		{"admin on health", admin, "/healthz", http.StatusOK, "ok"},
		{"admin on readiness", admin, "/readyz", http.StatusOK, "ok"},
		{"admin on an unknown path", admin, "/no/such/path", http.StatusNotFound, ""},
		{"admin on the API", admin, "/api/v1/namespaces/default/pods", http.StatusOK, ""},
		{"anonymous on health", anonymous, "/healthz", http.StatusOK, "ok"},
		{"anonymous on liveness", anonymous, "/livez", http.StatusOK, "ok"},
		{"anonymous on readiness", anonymous, "/readyz", http.StatusOK, "ok"},
		{"anonymous on an unknown path", anonymous, "/no/such/path", http.StatusUnauthorized, unauthorized},
		{"anonymous on the API", anonymous, "/api/v1/namespaces/default/pods", http.StatusUnauthorized, unauthorized},
		{"kube-proxy on health", kubeProxy, "/healthz", http.StatusOK, "ok"},
		{"kube-proxy on a path", kubeProxy, "/no/such/path", http.StatusForbidden,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:kube-proxy\" cannot get path \"/no/such/path\"","reason":"Forbidden","details":{},"code":403}` + "\n"},
		{"kube-proxy on a resource", kubeProxy, "/api/v1/nodes/n1", http.StatusForbidden,
			`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"n1\" is forbidden: User \"system:kube-proxy\" cannot get resource \"nodes\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"name":"n1","kind":"nodes"},"code":403}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, tt.client, http.MethodGet, base+tt.path)
			if code != tt.wantCode || (tt.wantBody != "" && body != tt.wantBody) {
				t.Errorf("GET %s = %d %s, want %d %s", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}

	t.Run("certificate from another CA", func(t *testing.T) {
		otherDir := t.TempDir()
		if _, err := pki.Ensure(pki.Config{Dir: otherDir}); err != nil {
			t.Fatal(err)
		}
		// Go's client sends a certificate only when its issuer is among
		// the CAs the server names, which another cluster's CA is not
		// (unless both were made in the same second: same name). Then the
		// request goes without one; it must not get through either way.
		if code, body, err := tryGet(certClient(t, dataDir, otherDir, "client-admin"), base+"/no/such/path"); err == nil && code != http.StatusUnauthorized {
			t.Errorf("GET /no/such/path with a certificate from another CA = %d %s, want 401 or a failed handshake", code, body)
		}
		// A client that sends it anyway fails the handshake.
		foreign := certClient(t, dataDir, otherDir, "client-admin")
		tlsCfg := foreign.Transport.(*http.Transport).TLSClientConfig
		cert := tlsCfg.Certificates[0]
		tlsCfg.Certificates = nil
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		code, _, err := tryGet(foreign, base+"/healthz")
		if err == nil {
			t.Fatalf("GET /healthz presenting a certificate from another CA = %d, want a failed handshake", code)
		}
		if !strings.Contains(err.Error(), "tls") {
			t.Errorf("error %q is not about TLS", err)
		}
	})
}

// tryGet is get for requests that may fail.
func tryGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestRunRestart: a second start with the same data directory keeps the CA,
// so that the first start's kubeconfig still works, and rewrites the
// kubeconfig for the new port.
func TestRunRestart(t *testing.T) {
	dataDir := t.TempDir()
	kubeconfig := filepath.Join(t.TempDir(), "labctl.yaml")
	cfg := server.Config{DataDir: dataDir, DatastoreEndpoint: "memory://", KubeconfigPath: kubeconfig}
	first := start(t, cfg)
	caFile := filepath.Join(tlsDir(dataDir), "server-ca.crt")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	_, firstAdmin := kubeconfigClient(t, kubeconfig)
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	second := start(t, cfg)
	again, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, again) {
		t.Error("the second start made a new CA")
	}
	serverURL, _ := kubeconfigClient(t, kubeconfig)
	if want := "https://127.0.0.1:" + strconv.Itoa(second.addr.(*net.TCPAddr).Port); serverURL != want {
		t.Errorf("kubeconfig server %q after the restart, want %q", serverURL, want)
	}
	if code, _ := get(t, firstAdmin, http.MethodGet, "https://"+second.addr.String()+"/no/such/path"); code != http.StatusNotFound {
		t.Errorf("the first start's admin credentials get %d from the second start, want 404", code)
	}
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	caWithoutKey := t.TempDir()
	if _, err := pki.Ensure(pki.Config{Dir: tlsDir(caWithoutKey)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tlsDir(caWithoutKey), "server-ca.key")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cfg  server.Config
		want []string // substrings of the error
	}{{
		name: "port in use",
		cfg: server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "memory://",
			BindAddress: netip.MustParseAddr("127.0.0.1"), HTTPSPort: busyPort},
		want: []string{"listen on 127.0.0.1:", "address already in use"},
	}, {
		name: "data dir under a file",
		cfg:  server.Config{DataDir: filepath.Join(aFile, "labctl"), DatastoreEndpoint: "memory://"},
		want: []string{"create the datastore directory", aFile},
	}, {
		name: "unknown datastore endpoint",
		cfg:  server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "mysql://x"},
		want: []string{"open the datastore in ", "mysql://x"},
	}, {
		name: "kubeconfig under a file",
		cfg: server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "memory://", BindAddress: netip.MustParseAddr("127.0.0.1"),
			KubeconfigPath: filepath.Join(aFile, "labctl.yaml")},
		want: []string{"write the admin kubeconfig", aFile},
	}, {
		name: "CA without its key",
		cfg:  server.Config{DataDir: caWithoutKey, DatastoreEndpoint: "memory://"},
		want: []string{"set up the certificates in", "server-ca.key", "not creating a new CA"},
	}, {
		name: "invalid configuration",
		cfg:  server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "memory://", ClusterDNS: netip.MustParseAddr("10.42.0.10")},
		want: []string{"invalid server configuration", "outside the service CIDR"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := server.Run(ctx, tt.cfg)
			if err == nil {
				t.Fatal("Run returned nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRunReturnsWhenCancelledEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := server.Run(ctx, server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "memory://",
		BindAddress: netip.MustParseAddr("127.0.0.1")})
	// Either the listener refuses the cancelled context, or Run starts and
	// stops at once; it must not hang or leave anything running.
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want nil or context.Canceled", err)
	}
}

func TestValidate(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	base := server.Config{DataDir: "/var/lib/labctl", NodeName: "node-1"}
	tests := []struct {
		name   string
		change func(c *server.Config)
		want   string // substring of the error; "" for valid
	}{
		{"defaults", func(c *server.Config) {}, ""},
		{"traefik names the ingress add-on", func(c *server.Config) { c.Disable = []string{"traefik", "coredns"} }, ""},
		{"IPv6 ranges", func(c *server.Config) {
			c.ClusterCIDR, c.ServiceCIDR, c.ClusterDNS = pfx("fd00:42::/56"), pfx("fd00:43::/112"), addr("fd00:43::a")
		}, ""},
		{"no data dir", func(c *server.Config) { c.DataDir = "" }, "no data directory (data-dir)"},
		{"overlapping ranges", func(c *server.Config) { c.ServiceCIDR = pfx("10.42.128.0/17"); c.ClusterDNS = addr("10.42.128.10") },
			"cluster CIDR (cluster-cidr) 10.42.0.0/16 overlaps service CIDR (service-cidr) 10.42.128.0/17"},
		{"dns outside the service range", func(c *server.Config) { c.ClusterDNS = addr("10.44.0.10") },
			"cluster DNS address (cluster-dns) 10.44.0.10 is outside the service CIDR (service-cidr) 10.43.0.0/16"},
		{"dns on the kubernetes service", func(c *server.Config) { c.ClusterDNS = addr("10.43.0.1") }, "is reserved"},
		{"host bits", func(c *server.Config) { c.ClusterCIDR = pfx("10.42.1.0/16") }, "10.42.1.0/16 has host bits set: use 10.42.0.0/16"},
		{"upper-case node name", func(c *server.Config) { c.NodeName = "Node1" }, `node name (node-name) "Node1"`},
		{"node name with underscore", func(c *server.Config) { c.NodeName = "node_1" }, `'_' is not allowed`},
		{"bad cluster domain", func(c *server.Config) { c.ClusterDomain = "cluster..local" }, "cluster domain (cluster-domain)"},
		{"unknown add-on", func(c *server.Config) { c.Disable = []string{"coredn"} }, `unknown add-on "coredn"`},
		{"port out of range", func(c *server.Config) { c.HTTPSPort = 70000 }, "out of range"},
		{"unspecified advertise address", func(c *server.Config) { c.AdvertiseAddress = addr("0.0.0.0") }, "advertise address (advertise-address) 0.0.0.0"},
		{"mode beyond permissions", func(c *server.Config) { c.KubeconfigMode = os.ModeSetuid | 0o600 }, "write-kubeconfig-mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Errorf("Validate() = nil, want an error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDisabled(t *testing.T) {
	cfg := server.Config{Disable: []string{"traefik", "local-storage"}}
	for addon, want := range map[string]bool{
		server.AddonIngress: true, server.AddonLocalStorage: true,
		server.AddonCoreDNS: false, server.AddonMetricsServer: false,
	} {
		if got := cfg.Disabled(addon); got != want {
			t.Errorf("Disabled(%q) = %v, want %v", addon, got, want)
		}
	}
}

// TestRunInProcessClients: the controllers, the add-ons and the server's
// own node reach the API in-process (package loopback), each as the
// identity its kubeconfig holds, and the kubeconfigs are still written.
func TestRunInProcessClients(t *testing.T) {
	dataDir := t.TempDir()
	kubeconfig := filepath.Join(t.TempDir(), "labctl.yaml")
	type hook struct {
		user, kubeconfig string
		inProcess        bool
		err              error
	}
	agentSaw, addonsSaw := make(chan hook, 1), make(chan hook, 1)
	// whoami asks the API who the transport's requests come from, as
	// `kubectl auth whoami` does, through client-go.
	whoami := func(ctx context.Context, kubeconfig string, rt http.RoundTripper) hook {
		_, inProcess := rt.(*loopback.Transport)
		h := hook{kubeconfig: kubeconfig, inProcess: inProcess}
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1", Transport: rt})
		if err != nil {
			h.err = err
			return h
		}
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			h.err = err
			return h
		}
		h.user = review.Status.UserInfo.Username
		return h
	}
	r := start(t, server.Config{
		DataDir: dataDir, DatastoreEndpoint: "memory://", KubeconfigPath: kubeconfig, NodeName: "node-a",
		Agent: func(ctx context.Context, kubeconfig string, rt http.RoundTripper) error {
			agentSaw <- whoami(ctx, kubeconfig, rt)
			return nil
		},
		Addons: func(ctx context.Context, kubeconfig string, rt http.RoundTripper) error {
			addonsSaw <- whoami(ctx, kubeconfig, rt)
			return nil
		},
	})
	for _, c := range []struct {
		name, user, kubeconfig string
		saw                    chan hook
	}{
		{"agent", "system:node:node-a", filepath.Join(dataDir, "agent", "kubelet.kubeconfig"), agentSaw},
		{"add-ons", "system:addons", filepath.Join(dataDir, "server", "addons.kubeconfig"), addonsSaw},
	} {
		select {
		case h := <-c.saw:
			if h.err != nil || h.user != c.user || !h.inProcess || h.kubeconfig != c.kubeconfig {
				t.Errorf("%s: user %q (err %v), in-process %v, kubeconfig %s; want %s, true, %s",
					c.name, h.user, h.err, h.inProcess, h.kubeconfig, c.user, c.kubeconfig)
			}
			if _, err := os.Stat(c.kubeconfig); err != nil {
				t.Errorf("%s: no kubeconfig written: %v", c.name, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: the hook did not run within 15 s", c.name)
		}
	}

	// The controllers work: they take their Lease as this node.
	_, admin := kubeconfigClient(t, kubeconfig)
	url := "https://" + r.addr.String() + "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body := get(t, admin, http.MethodGet, url)
		if code == http.StatusOK && strings.Contains(body, `"holderIdentity":"node-a"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no controller manager Lease held by node-a after 15 s: %d %s\nlogs:\n%s", code, body, r.logs)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if logs := r.logs.String(); strings.Contains(logs, "panic serving") {
		t.Errorf("an in-process request panicked:\n%s", logs)
	}
}
