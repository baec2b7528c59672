package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"labctl/server/pki"
)

// ensure runs pki.Ensure with cfg on dir and fails the test on error.
func ensure(t *testing.T, cfg pki.Config) *pki.PKI {
	t.Helper()
	p, err := pki.Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return p
}

// readFiles returns the contents of every file in dir by name.
func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// allFiles is every file a first start with a node name creates.
var allFiles = []string{
	"client-admin.crt", "client-admin.key",
	"client-controller.crt", "client-controller.key",
	"client-kube-proxy.crt", "client-kube-proxy.key",
	"client-kubelet.crt", "client-kubelet.key",
	"client-scheduler.crt", "client-scheduler.key",
	"kube-apiserver-kubelet-client.crt", "kube-apiserver-kubelet-client.key",
	"server-ca.crt", "server-ca.key",
	"service.key", "service.pub",
	"serving-kube-apiserver.crt", "serving-kube-apiserver.key",
}

func TestEnsureFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server", "tls")
	start := time.Now()
	p := ensure(t, pki.Config{Dir: dir, NodeName: "node-1"})

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	files := readFiles(t, dir)
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range files {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, allFiles) {
		t.Errorf("files in %s:\n%v\nwant:\n%v", dir, got, allFiles)
	}
	for name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}

	ca := readCert(t, filepath.Join(dir, "server-ca.crt"))
	if !ca.IsCA || !strings.HasPrefix(ca.Subject.CommonName, "labctl-server-ca@") {
		t.Errorf("CA: IsCA %v, subject %q; want a CA named labctl-server-ca@<unix time>", ca.IsCA, ca.Subject.CommonName)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if years := ca.NotAfter.Sub(start).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid for %.1f years, want 10", years)
	}
	if !bytes.Equal(p.CA.CertPEM, files["server-ca.crt"]) {
		t.Error("PKI.CA.CertPEM differs from server-ca.crt")
	}

	roots := p.CertPool()
	tests := []struct {
		file   string
		pair   pki.KeyPair
		cn     string
		orgs   []string
		server bool
	}{
		{"serving-kube-apiserver", p.Serving, "kube-apiserver", nil, true},
		{"client-admin", p.Admin, "system:admin", []string{"system:masters"}, false},
		{"client-controller", p.ControllerManager, "system:kube-controller-manager", nil, false},
		{"client-scheduler", p.Scheduler, "system:kube-scheduler", nil, false},
		{"client-kube-proxy", p.KubeProxy, "system:kube-proxy", nil, false},
		{"client-kubelet", p.Kubelet, "system:node:node-1", []string{"system:nodes"}, false},
		{"kube-apiserver-kubelet-client", p.KubeletClient, "kube-apiserver-kubelet-client", []string{"system:masters"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, tt.file+".crt"))
			if cert.Subject.CommonName != tt.cn || !slices.Equal(cert.Subject.Organization, tt.orgs) {
				t.Errorf("subject CN %q O %q, want CN %q O %q", cert.Subject.CommonName, cert.Subject.Organization, tt.cn, tt.orgs)
			}
			usage := x509.ExtKeyUsageClientAuth
			if tt.server {
				usage = x509.ExtKeyUsageServerAuth
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("does not verify against the CA for %v: %v", usage, err)
			}
			if days := cert.NotAfter.Sub(start).Hours() / 24; days < 364 || days > 366 {
				t.Errorf("valid for %.0f days, want 365", days)
			}
			if !tt.pair.Cert.Equal(cert) || tt.pair.CertFile != filepath.Join(dir, tt.file+".crt") {
				t.Errorf("PKI holds another certificate or path (%s) than the file", tt.pair.CertFile)
			}
			if _, err := tt.pair.TLSCertificate().Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("TLSCertificate does not verify: %v", err)
			}
		})
	}

	block, _ := pem.Decode(files["service.pub"])
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("service.pub is not a PEM public key:\n%s", files["service.pub"])
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if rsaPub, ok := pub.(*rsa.PublicKey); !ok || rsaPub.N.BitLen() != 2048 || !rsaPub.Equal(p.ServiceAccountKey.Public()) {
		t.Errorf("service.pub holds %T, want the RSA 2048 public half of the service account key", pub)
	}
}

func TestEnsureWithoutNodeName(t *testing.T) {
	dir := t.TempDir()
	p := ensure(t, pki.Config{Dir: dir})
	if _, err := os.Stat(filepath.Join(dir, "client-kubelet.crt")); !os.IsNotExist(err) {
		t.Errorf("client-kubelet.crt written without a node name (stat: %v)", err)
	}
	if p.Kubelet.Cert != nil {
		t.Error("PKI.Kubelet set without a node name")
	}
}

// TestEnsureSecondStart: a second start loads everything and rewrites
// nothing.
func TestEnsureSecondStart(t *testing.T) {
	dir := t.TempDir()
	cfg := pki.Config{Dir: dir, NodeName: "node-1", IPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}}
	first := ensure(t, cfg)
	before := readFiles(t, dir)
	second := ensure(t, cfg)
	after := readFiles(t, dir)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s changed on the second start", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d files after the second start, %d before", len(after), len(before))
	}
	if !first.CA.Cert.Equal(second.CA.Cert) || !bytes.Equal(first.CA.KeyPEM, second.CA.KeyPEM) {
		t.Error("the second start has another CA")
	}
}

// TestEnsureIssuesAgain: what changes between two starts issues which
// certificates again; the CA and the service account key never change.
func TestEnsureIssuesAgain(t *testing.T) {
	serving := []string{"serving-kube-apiserver.crt", "serving-kube-apiserver.key"}
	clients := []string{
		"client-admin.crt", "client-admin.key", "client-controller.crt", "client-controller.key",
		"client-kube-proxy.crt", "client-kube-proxy.key", "client-kubelet.crt", "client-kubelet.key",
		"client-scheduler.crt", "client-scheduler.key",
		"kube-apiserver-kubelet-client.crt", "kube-apiserver-kubelet-client.key",
	}
	base := pki.Config{NodeName: "node-1", IPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}}
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string, c *pki.Config)
		changed []string // files that must change; every other file must not
		reason  string   // in the log
	}{{
		name:   "nothing",
		change: func(*testing.T, string, *pki.Config) {},
	}, {
		name: "new node IP",
		change: func(_ *testing.T, _ string, c *pki.Config) {
			c.IPs = append(c.IPs, netip.MustParseAddr("fd00::10"))
		},
		changed: serving,
		reason:  "names or addresses changed",
	}, {
		name: "advertise address dropped: still covered",
		change: func(_ *testing.T, _ string, c *pki.Config) {
			c.IPs = nil
		},
	}, {
		name: "new service CIDR",
		change: func(_ *testing.T, _ string, c *pki.Config) {
			c.ServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")
		},
		changed: serving,
		reason:  "names or addresses changed",
	}, {
		name:    "new cluster domain",
		change:  func(_ *testing.T, _ string, c *pki.Config) { c.ClusterDomain = "lab.example" },
		changed: serving,
		reason:  "names or addresses changed",
	}, {
		name:    "extra DNS name",
		change:  func(_ *testing.T, _ string, c *pki.Config) { c.DNSNames = []string{"api.lab.example"} },
		changed: serving,
		reason:  "names or addresses changed",
	}, {
		name:    "new node name",
		change:  func(_ *testing.T, _ string, c *pki.Config) { c.NodeName = "node-2" },
		changed: append([]string{"client-kubelet.crt", "client-kubelet.key"}, serving...),
	}, {
		name: "within 90 days of expiry",
		change: func(_ *testing.T, _ string, c *pki.Config) {
			c.Now = func() time.Time { return time.Now().Add(280 * 24 * time.Hour) }
		},
		changed: append(slices.Clone(clients), serving...),
		reason:  "expires within 90 days",
	}, {
		name: "more than 90 days left",
		change: func(_ *testing.T, _ string, c *pki.Config) {
			c.Now = func() time.Time { return time.Now().Add(260 * 24 * time.Hour) }
		},
	}, {
		name: "key removed",
		change: func(t *testing.T, dir string, _ *pki.Config) {
			if err := os.Remove(filepath.Join(dir, "client-admin.key")); err != nil {
				t.Fatal(err)
			}
		},
		changed: []string{"client-admin.crt", "client-admin.key"},
		reason:  "key unreadable",
	}, {
		name: "certificate removed",
		change: func(t *testing.T, dir string, _ *pki.Config) {
			if err := os.Remove(filepath.Join(dir, "client-scheduler.crt")); err != nil {
				t.Fatal(err)
			}
		},
		changed: []string{"client-scheduler.crt", "client-scheduler.key"},
		reason:  "missing",
	}, {
		name: "key of another certificate",
		change: func(t *testing.T, dir string, _ *pki.Config) {
			copyFile(t, filepath.Join(dir, "client-scheduler.key"), filepath.Join(dir, "client-admin.key"))
		},
		changed: []string{"client-admin.crt", "client-admin.key"},
		reason:  "key does not match",
	}, {
		name: "signed by another CA",
		change: func(t *testing.T, dir string, _ *pki.Config) {
			other := t.TempDir()
			ensure(t, pki.Config{Dir: other})
			for _, f := range []string{"client-admin.crt", "client-admin.key"} {
				copyFile(t, filepath.Join(other, f), filepath.Join(dir, f))
			}
		},
		changed: []string{"client-admin.crt", "client-admin.key"},
		reason:  "not signed by the cluster CA",
	}, {
		name: "service.pub removed",
		change: func(t *testing.T, dir string, _ *pki.Config) {
			if err := os.Remove(filepath.Join(dir, "service.pub")); err != nil {
				t.Fatal(err)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := base
			cfg.Dir = dir
			ensure(t, cfg)
			before := readFiles(t, dir)

			tt.change(t, dir, &cfg)
			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			p := ensure(t, cfg)
			after := readFiles(t, dir)

			for name, b := range before {
				want := slices.Contains(tt.changed, name)
				if got := !bytes.Equal(b, after[name]); got != want {
					t.Errorf("%s changed: %v, want %v", name, got, want)
				}
			}
			if tt.reason != "" && !strings.Contains(logs.String(), tt.reason) {
				t.Errorf("logs do not give the reason %q:\n%s", tt.reason, logs.String())
			}
			if tt.reason == "" && len(tt.changed) == 0 && logs.Len() > 0 {
				t.Errorf("logs for a start that changes nothing:\n%s", logs.String())
			}
			// Whatever happened, the certificates verify against the CA
			// and cover the names asked for.
			now := time.Now()
			if cfg.Now != nil {
				now = cfg.Now()
			}
			dnsNames, ips := pki.ServingSANs(cfg)
			checkServing(t, p, now, dnsNames, ips)
			if _, err := p.Admin.Cert.Verify(x509.VerifyOptions{Roots: p.CertPool(), CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("admin certificate does not verify: %v", err)
			}
			for name := range after {
				if strings.Contains(name, ".tmp") {
					t.Errorf("temporary file %s left behind", name)
				}
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkServing checks that p's serving certificate verifies against p's CA
// for every name and address.
func checkServing(t *testing.T, p *pki.PKI, now time.Time, dnsNames []string, ips []netip.Addr) {
	t.Helper()
	names := slices.Clone(dnsNames)
	for _, ip := range ips {
		names = append(names, ip.String())
	}
	for _, name := range names {
		opts := x509.VerifyOptions{DNSName: name, Roots: p.CertPool(), CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if _, err := p.Serving.Cert.Verify(opts); err != nil {
			t.Errorf("serving certificate not valid for %s: %v", name, err)
		}
	}
}

func TestServingSANs(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name      string
		cfg       pki.Config
		wantNames []string
		wantIPs   []netip.Addr
	}{{
		name: "defaults",
		cfg:  pki.Config{},
		wantNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		wantIPs: []netip.Addr{addr("127.0.0.1"), addr("::1"), addr("10.43.0.1")},
	}, {
		name: "everything",
		cfg: pki.Config{NodeName: "node-1", ClusterDomain: "lab.example", ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
			IPs:      []netip.Addr{addr("192.168.1.10"), {}, addr("0.0.0.0"), addr("192.168.1.10"), addr("::ffff:192.168.1.11")},
			DNSNames: []string{"API.Lab.Example", "localhost"}},
		wantNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.lab.example", "node-1", "api.lab.example"},
		wantIPs: []netip.Addr{addr("127.0.0.1"), addr("::1"), addr("10.96.0.1"), addr("192.168.1.10"), addr("192.168.1.11")},
	}, {
		name: "IPv6 service range",
		cfg:  pki.Config{ServiceCIDR: netip.MustParsePrefix("fd00:43::/112")},
		wantNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		wantIPs: []netip.Addr{addr("127.0.0.1"), addr("::1"), addr("fd00:43::1")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, ips := pki.ServingSANs(tt.cfg)
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names %q, want %q", names, tt.wantNames)
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("IPs %v, want %v", ips, tt.wantIPs)
			}

			cfg := tt.cfg
			cfg.Dir = t.TempDir()
			checkServing(t, ensure(t, cfg), time.Now(), names, ips)
		})
	}
}

// TestEnsureKeepsCA: a CA that cannot be used stops Ensure instead of being
// replaced, and its files stay as they were.
func TestEnsureKeepsCA(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string
	}{{
		name: "key removed",
		change: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "server-ca.key")); err != nil {
				t.Fatal(err)
			}
		},
		want: "exists but its key cannot be read",
	}, {
		name: "key of another CA",
		change: func(t *testing.T, dir string) {
			other := t.TempDir()
			ensure(t, pki.Config{Dir: other})
			copyFile(t, filepath.Join(other, "server-ca.key"), filepath.Join(dir, "server-ca.key"))
		},
		want: "does not belong to the CA certificate",
	}, {
		name: "certificate garbled",
		change: func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "server-ca.crt"), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: "no PEM CERTIFICATE block",
	}, {
		name: "not a CA",
		change: func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "client-admin.crt"), filepath.Join(dir, "server-ca.crt"))
			copyFile(t, filepath.Join(dir, "client-admin.key"), filepath.Join(dir, "server-ca.key"))
		},
		want: "is not a CA certificate",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ensure(t, pki.Config{Dir: dir})
			tt.change(t, dir)
			before := readFiles(t, dir)
			_, err := pki.Ensure(pki.Config{Dir: dir})
			if err == nil {
				t.Fatal("Ensure succeeded, want an error")
			}
			for _, want := range []string{tt.want, "not creating a new CA", filepath.Join(dir, "server-ca.crt")} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			after := readFiles(t, dir)
			for name, b := range before {
				if !bytes.Equal(b, after[name]) {
					t.Errorf("%s changed although Ensure failed", name)
				}
			}
		})
	}
}

// TestEnsureOwnCA: a CA put in place beforehand, with an RSA key in PKCS #1
// as openssl writes it, is used and not replaced.
func TestEnsureOwnCA(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "my own CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "server-ca.crt"), caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, "server-ca.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	p := ensure(t, pki.Config{Dir: dir})
	if !bytes.Equal(p.CA.CertPEM, caPEM) {
		t.Error("Ensure replaced the CA put in place")
	}
	if _, err := p.Serving.Cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: p.CertPool()}); err != nil {
		t.Errorf("serving certificate not signed by the CA put in place: %v", err)
	}
}

// TestEnsureErrors: failures name the file or directory.
func TestEnsureErrors(t *testing.T) {
	aFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cfg  pki.Config
		want string
	}{
		{"no directory", pki.Config{}, "no directory"},
		{"directory under a file", pki.Config{Dir: filepath.Join(aFile, "tls")}, `create the certificate directory "` + aFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.Ensure(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ensure = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLocalServerURL(t *testing.T) {
	for _, tt := range []struct {
		bind netip.Addr
		want string
	}{
		{netip.Addr{}, "https://127.0.0.1:6443"},
		{netip.MustParseAddr("0.0.0.0"), "https://127.0.0.1:6443"},
		{netip.MustParseAddr("::"), "https://127.0.0.1:6443"},
		{netip.MustParseAddr("127.0.0.1"), "https://127.0.0.1:6443"},
		{netip.MustParseAddr("192.168.1.10"), "https://192.168.1.10:6443"},
		{netip.MustParseAddr("::1"), "https://[::1]:6443"},
	} {
		if got := pki.LocalServerURL(tt.bind, 6443); got != tt.want {
			t.Errorf("LocalServerURL(%v, 6443) = %q, want %q", tt.bind, got, tt.want)
		}
	}
}

// listenLoopback returns a listener on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
