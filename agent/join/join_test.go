package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"labctl/server/join"
	"labctl/server/pki"
)

// server serves server/join's handler over TLS with the cluster's serving
// certificate, as labctl server does.
func server(t *testing.T) (*pki.PKI, string, *url.URL) {
	t.Helper()
	p, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := join.EnsureSecret(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(join.Handler(join.Config{CAPEM: p.CA.CertPEM, Secret: secret, Signer: p}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Serving.TLSCertificate()}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return p, join.Token{CAHash: join.CAHash(p.CA.CertPEM), Secret: secret}.String(), u
}

func TestJoin(t *testing.T) {
	p, token, u := server(t)
	ctx := context.Background()
	creds, err := Join(ctx, u, token, "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(creds.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:worker-1" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("subject %v", cert.Subject)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: p.CertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the node's certificate does not verify against the CA: %v", err)
	}
	if _, err := tls.X509KeyPair(creds.CertPEM, creds.KeyPEM); err != nil {
		t.Errorf("certificate and key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubelet.kubeconfig")
	if err := WriteKubeconfig(path, creds); err != nil {
		t.Fatal(err)
	}
	if cfg, err := clientcmd.BuildConfigFromFlags("", path); err != nil || cfg.Host != creds.Server {
		t.Errorf("kubeconfig: %v %v", cfg, err)
	}

	// A wrong secret, a token of another cluster, a malformed token.
	tok, _ := join.Parse(token)
	for _, tc := range []struct{ token, want string }{
		{join.Token{CAHash: tok.CAHash, Secret: "wrong"}.String(), "the join token is wrong"},
		{join.Token{CAHash: strings.Repeat("0", 64), Secret: tok.Secret}.String(), "different CA than the token names"},
		{"K10abc::server:x", "a join token reads"},
		{"", "a join token reads"},
	} {
		if _, err := Join(ctx, u, tc.token, "worker-1"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %q: %v, want an error with %q", tc.token, err, tc.want)
		}
	}
	// A bad node name is refused by the server.
	if _, err := Join(ctx, u, token, "Worker_1"); err == nil || !strings.Contains(err.Error(), "not a DNS name") {
		t.Errorf("bad node name: %v", err)
	}
	// A bare secret works, trusting the CA on first use.
	if _, err := Join(ctx, u, tok.Secret, "worker-2"); err != nil {
		t.Errorf("bare secret: %v", err)
	}
}
