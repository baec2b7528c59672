package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"labctl/datastore"
	"labctl/server"
)

// syncBuffer is a bytes.Buffer that the server's goroutines and the test
// can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a server started by start.
type running struct {
	addr   net.Addr
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

// start runs server.Run with cfg on 127.0.0.1 and a free port, and waits
// until it serves. The test fails if Run has not returned when it ends.
func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	logs := &syncBuffer{}
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

// insecureClient skips certificate verification: the server's certificate
// is self-signed until the cluster CA exists.
func insecureClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
	}
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
			r := start(t, server.Config{DataDir: dataDir, DatastoreEndpoint: endpoint})
			base := "https://" + r.addr.String()
			c := insecureClient()

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
			if code, _ := get(t, c, http.MethodGet, base+"/api"); code != http.StatusNotFound {
				t.Errorf("GET /api = %d, want 404 until the API server exists", code)
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

// TestRunCertificate checks the ephemeral certificate: self-signed, for
// server authentication, and valid for the loopback address.
func TestRunCertificate(t *testing.T) {
	r := start(t, server.Config{DataDir: t.TempDir(), DatastoreEndpoint: "memory://", NodeName: "node-1"})
	conn, err := tls.Dial("tcp", r.addr.String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, name := range []string{"127.0.0.1", "localhost", "node-1", "kubernetes.default.svc.cluster.local", "10.43.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("certificate not valid for %s: %v", name, err)
		}
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
