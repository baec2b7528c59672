// Package join lets a machine join the cluster with a token, as
// `k3s agent --token` does: the token names the cluster CA (by its
// SHA-256) and carries a secret, so the joining node can trust the server
// before it has any certificate, and the server can trust the node enough
// to give it a node identity.
//
// A token reads K10<sha256 of the CA certificate, hex>::server:<secret>.
// The server keeps its secret in <data-dir>/server/token (made on first
// start, mode 0600); `labctl token` prints the whole token.
//
// The server answers two paths outside the API's authentication:
//
//	GET  /cacerts                     the CA certificate (PEM), to anyone:
//	                                  the joining side checks it against the
//	                                  token's hash
//	POST /v1-labctl/node-certificate  with basic auth node:<secret> and a JSON
//	                                  {"nodeName", "publicKey" (PEM)}: the node's
//	                                  client certificate, system:node:<name> in
//	                                  system:nodes, signed by the CA (PEM)
//
// The node's private key never leaves the node.
package join

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Paths the server answers without the API's authentication.
const (
	CACertsPath         = "/cacerts"
	NodeCertificatePath = "/v1-labctl/node-certificate"
	tokenPrefix         = "K10"
	tokenUser           = "node"
)

// ErrBadToken is returned when a token is not in labctl's format.
var ErrBadToken = errors.New(`a join token reads K10<CA hash>::server:<secret> (print it with "labctl token" on the server)`)

// Token is a parsed join token.
type Token struct {
	// CAHash is the SHA-256 of the CA certificate's PEM, hex-encoded.
	CAHash string
	// Secret proves the holder may join.
	Secret string
}

// String formats the token as `labctl token` prints it.
func (t Token) String() string {
	return tokenPrefix + t.CAHash + "::server:" + t.Secret
}

// Parse reads a token. A bare secret (no CA hash) is accepted too, as
// k3s accepts one; the CA is then trusted on first use.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, ErrBadToken
	}
	if !strings.HasPrefix(s, tokenPrefix) {
		if strings.ContainsAny(s, ": \t") {
			return Token{}, ErrBadToken
		}
		return Token{Secret: s}, nil
	}
	hash, rest, ok := strings.Cut(strings.TrimPrefix(s, tokenPrefix), "::")
	user, secret, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || user != "server" || secret == "" || len(hash) != 64 {
		return Token{}, ErrBadToken
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return Token{}, ErrBadToken
	}
	return Token{CAHash: hash, Secret: secret}, nil
}

// CAHash is the hash a token carries for CA certificate caPEM.
func CAHash(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// EnsureSecret returns the secret kept in file, making it on first use.
func EnsureSecret(file string) (string, error) {
	if b, err := os.ReadFile(file); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read the join secret: %w", err)
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	secret := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the join secret: %w", err)
	}
	return secret, nil
}

// Signer issues a node's client certificate for its public key.
type Signer interface {
	SignClient(pub crypto.PublicKey, cn string, orgs []string) ([]byte, error)
}

// SignerFunc is a function that is a Signer.
type SignerFunc func(pub crypto.PublicKey, cn string, orgs []string) ([]byte, error)

// SignClient implements Signer.
func (f SignerFunc) SignClient(pub crypto.PublicKey, cn string, orgs []string) ([]byte, error) {
	return f(pub, cn, orgs)
}

// Config configures the server's side.
type Config struct {
	// CAPEM is the cluster CA certificate; required.
	CAPEM []byte
	// Secret is the join secret; required.
	Secret string
	// Signer signs node certificates; required.
	Signer Signer
	// Logger receives a line per node that joins; nil discards them.
	Logger *slog.Logger
}

// NodeCertificateRequest is the body of a node-certificate request.
type NodeCertificateRequest struct {
	NodeName  string `json:"nodeName"`
	PublicKey string `json:"publicKey"` // PEM, PKIX
}

// Handler serves CACertsPath and NodeCertificatePath.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CACertsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(cfg.CAPEM)
	})
	mux.HandleFunc("POST "+NodeCertificatePath, func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != tokenUser || subtle.ConstantTimeCompare([]byte(pass), []byte(cfg.Secret)) != 1 {
			http.Error(w, "the join token is wrong: copy it again from `labctl token` on the server", http.StatusUnauthorized)
			return
		}
		var req NodeCertificateRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "the request is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		if msg := validNodeName(req.NodeName); msg != "" {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		block, _ := pem.Decode([]byte(req.PublicKey))
		if block == nil {
			http.Error(w, "publicKey is not PEM", http.StatusBadRequest)
			return
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			http.Error(w, "publicKey: "+err.Error(), http.StatusBadRequest)
			return
		}
		cert, err := cfg.Signer.SignClient(pub, "system:node:"+req.NodeName, []string{"system:nodes"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cfg.Logger.Info("node certificate issued", "node", req.NodeName, "from", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(cert)
	})
	return mux
}

// validNodeName says what is wrong with a node name, or "".
func validNodeName(name string) string {
	if name == "" || len(name) > 253 {
		return "nodeName must be 1 to 253 characters"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("nodeName %q is not a DNS name", name)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("nodeName %q is not a DNS name (lower-case letters, digits, '-' and '.')", name)
			}
		}
	}
	return ""
}
