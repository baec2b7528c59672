package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// SignClient issues a client certificate for key pub with common name cn
// in groups orgs, signed by the cluster CA, valid as long as the leaves
// Ensure issues. It is how a joining node gets its system:node:<name>
// identity without its private key leaving the node.
func (p *PKI) SignClient(pub crypto.PublicKey, cn string, orgs []string) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(LeafValidity)
	if notAfter.After(p.CA.Cert.NotAfter) {
		notAfter = p.CA.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA.Cert, pub, p.CA.Key)
	if err != nil {
		return nil, fmt.Errorf("sign a certificate for %q: %w", cn, err)
	}
	return encodeCert(der), nil
}
