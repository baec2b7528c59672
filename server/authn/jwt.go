package authn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// JSON Web Tokens in their compact form (RFC 7519, RFC 7515), signed with
// RS256 (RSA keys, what pki's service account key is) or ES256/384/512
// (ECDSA keys), as kube-apiserver signs service account tokens with
// go-jose: the header is {"alg":...,"kid":...}, where kid is derived from
// the public key.

// errCryptoPrimitive is go-jose's error for a signature that does not
// verify, which kube-apiserver passes on.
var errCryptoPrimitive = errors.New("go-jose/go-jose: error in cryptographic primitive")

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
}

// jwsAlgorithm returns the JWS algorithm and hash for a public key.
func jwsAlgorithm(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256", crypto.SHA256, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", crypto.SHA256, nil
		case elliptic.P384():
			return "ES384", crypto.SHA384, nil
		case elliptic.P521():
			return "ES512", crypto.SHA512, nil
		}
		return "", 0, errors.New("unknown ECDSA curve: must be P-256, P-384 or P-521")
	}
	return "", 0, fmt.Errorf("unsupported key type %T: use an RSA or ECDSA key", pub)
}

// KeyID is the key ID kube-apiserver gives a public key: the unpadded
// base64url SHA-256 of its PKIX DER form.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// jwtSigner signs JWTs with one key.
type jwtSigner struct {
	key  crypto.Signer
	alg  string
	hash crypto.Hash
	kid  string
}

func newJWTSigner(key crypto.Signer) (*jwtSigner, error) {
	if key == nil {
		return nil, errors.New("no signing key")
	}
	alg, hash, err := jwsAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &jwtSigner{key: key, alg: alg, hash: hash, kid: kid}, nil
}

// sign returns the compact JWT of claims. The payload's members come out
// sorted by name, as go-jose's merged claims do.
func (s *jwtSigner) sign(claims any) (string, error) {
	header, err := json.Marshal(jwtHeader{Alg: s.alg, Kid: s.kid})
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode the claims: %w", err)
	}
	// Through a map: sorted members, at every level.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", err
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	h := s.hash.New()
	h.Write([]byte(input))
	sig, err := s.key.Sign(rand.Reader, h.Sum(nil), s.hash)
	if err != nil {
		return "", fmt.Errorf("sign the token: %w", err)
	}
	if pub, ok := s.key.Public().(*ecdsa.PublicKey); ok {
		// crypto.Signer gives ASN.1; JWS wants r||s, each the curve's size.
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(sig, &rs); err != nil {
			return "", fmt.Errorf("sign the token: %w", err)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		rs.R.FillBytes(out[:size])
		rs.S.FillBytes(out[size:])
		sig = out
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// parsedJWT is a compact JWT taken apart, its signature not yet checked.
type parsedJWT struct {
	header  jwtHeader
	payload []byte
	input   string // header.payload, what the signature covers
	sig     []byte
}

// parseJWT splits a compact JWT; it reports false for anything else.
func parseJWT(token string) (*parsedJWT, bool) {
	if strings.HasPrefix(strings.TrimSpace(token), "{") {
		return nil, false // JWS JSON serialization: not a bearer token of ours
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, false
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	var h jwtHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, false
	}
	return &parsedJWT{header: h, payload: payload, input: parts[0] + "." + parts[1], sig: sig}, true
}

// verify checks the token's signature with pub.
func (t *parsedJWT) verify(pub crypto.PublicKey) error {
	alg, hash, err := jwsAlgorithm(pub)
	if err != nil {
		return err
	}
	if t.header.Alg != alg {
		return errors.New("go-jose/go-jose: unexpected signature algorithm in JWS header; expected " + alg)
	}
	h := hash.New()
	h.Write([]byte(t.input))
	digest := h.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, hash, digest, t.sig) != nil {
			return errCryptoPrimitive
		}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(t.sig) != 2*size {
			return errCryptoPrimitive
		}
		r := new(big.Int).SetBytes(t.sig[:size])
		s := new(big.Int).SetBytes(t.sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errCryptoPrimitive
		}
	}
	return nil
}
