// Package join is the joining side of server/join: with the server's URL
// and a join token it fetches the cluster CA (checked against the token's
// hash), makes the node's key and has the server sign its certificate,
// and writes the kubeconfig the node agent uses from then on.
package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	serverjoin "labctl/server/join"
)

// Credentials are what a node needs to reach the API as itself.
type Credentials struct {
	// Server is the API server's URL.
	Server string
	// CAPEM is the cluster CA; CertPEM and KeyPEM the node's client
	// certificate (system:node:<name>) and key.
	CAPEM, CertPEM, KeyPEM []byte
}

// Join gets the node's credentials from the server at serverURL with
// token.
func Join(ctx context.Context, serverURL *url.URL, token, nodeName string) (Credentials, error) {
	tok, err := serverjoin.Parse(token)
	if err != nil {
		return Credentials{}, err
	}
	base := strings.TrimSuffix(serverURL.String(), "/")
	// The CA, over TLS that nothing can verify yet: the token's hash does.
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Proxy: http.ProxyFromEnvironment}}
	caPEM, err := fetch(ctx, insecure, http.MethodGet, base+serverjoin.CACertsPath, nil, "")
	if err != nil {
		return Credentials{}, fmt.Errorf("fetch the cluster CA from %s: %w", base, err)
	}
	if tok.CAHash != "" && serverjoin.CAHash(caPEM) != tok.CAHash {
		return Credentials{}, fmt.Errorf("the server at %s has a different CA than the token names: is the token from this server? (print it with `labctl token` there)", base)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return Credentials{}, fmt.Errorf("the server at %s sent no CA certificate", base)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Credentials{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return Credentials{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Credentials{}, err
	}
	body, _ := json.Marshal(serverjoin.NodeCertificateRequest{NodeName: nodeName,
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))})
	verified := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: http.ProxyFromEnvironment}}
	certPEM, err := fetch(ctx, verified, http.MethodPost, base+serverjoin.NodeCertificatePath, body, tok.Secret)
	if err != nil {
		return Credentials{}, fmt.Errorf("get the node's certificate from %s: %w", base, err)
	}
	return Credentials{Server: base, CAPEM: caPEM, CertPEM: certPEM,
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})}, nil
}

func fetch(ctx context.Context, c *http.Client, method, url string, body []byte, secret string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if secret != "" {
		req.SetBasicAuth("node", secret)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// WriteKubeconfig writes creds as a kubeconfig at path (mode 0600).
func WriteKubeconfig(path string, creds Credentials) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["labctl"] = &clientcmdapi.Cluster{Server: creds.Server, CertificateAuthorityData: creds.CAPEM}
	cfg.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificateData: creds.CertPEM, ClientKeyData: creds.KeyPEM}
	cfg.Contexts["labctl"] = &clientcmdapi.Context{Cluster: "labctl", AuthInfo: "node"}
	cfg.CurrentContext = "labctl"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write the node's kubeconfig %q: %w", path, err)
	}
	return nil
}
