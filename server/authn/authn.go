package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
)

// Well-known users and groups, as Kubernetes names them.
const (
	// Anonymous is the user of a request without credentials.
	Anonymous = "system:anonymous"
	// AllUnauthenticated is the group of Anonymous.
	AllUnauthenticated = "system:unauthenticated"
	// AllAuthenticated is the group of every authenticated user.
	AllAuthenticated = "system:authenticated"
	// SystemPrivilegedGroup is system:masters, allowed everything.
	SystemPrivilegedGroup = "system:masters"
	// CredentialIDKey is the Extra key that identifies the credential a
	// user authenticated with, for audit: X509SHA256=<hex sha256 of the
	// certificate> for client certificates.
	CredentialIDKey = "authentication.kubernetes.io/credential-id"
)

// User is who sends a request.
type User struct {
	// Name is the user name, such as system:admin or system:node:node-1.
	Name string
	// UID identifies the user across name changes; "" when unknown.
	UID string
	// Groups are the groups the user is in.
	Groups []string
	// Extra holds what else the authenticator knows, by key.
	Extra map[string][]string
}

// InGroup reports whether u is in group; a nil u is in none.
func (u *User) InGroup(group string) bool {
	return u != nil && slices.Contains(u.Groups, group)
}

type userKey struct{}

// WithUser returns a copy of ctx that carries u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user that ctx carries, if any.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

// Authenticator tells who sends a request. It returns ok false and a nil
// error when the request carries none of the credentials it knows, and an
// error when it carries some that are not valid.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (u *User, ok bool, err error)
}

// AuthenticatorFunc is a function that is an Authenticator.
type AuthenticatorFunc func(r *http.Request) (*User, bool, error)

// AuthenticateRequest calls f(r).
func (f AuthenticatorFunc) AuthenticateRequest(r *http.Request) (*User, bool, error) { return f(r) }

// X509 authenticates a request by the client certificate that the TLS
// handshake verified (tls.Config.ClientAuth VerifyClientCertIfGiven or
// stricter, with ClientCAs the cluster CA): the certificate's common name
// is the user's name, its organizations are the user's groups, and
// AllAuthenticated is added. A request without a verified certificate, or
// whose certificate has no common name, carries no credentials for it. The
// zero X509 is ready to use.
type X509 struct{}

// AuthenticateRequest implements Authenticator.
func (X509) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	cert := r.TLS.VerifiedChains[0][0]
	if cert.Subject.CommonName == "" {
		return nil, false, nil
	}
	groups := slices.Clone(cert.Subject.Organization)
	if !slices.Contains(groups, AllAuthenticated) {
		groups = append(groups, AllAuthenticated)
	}
	sum := sha256.Sum256(cert.Raw)
	return &User{
		Name:   cert.Subject.CommonName,
		Groups: groups,
		Extra:  map[string][]string{CredentialIDKey: {"X509SHA256=" + hex.EncodeToString(sum[:])}},
	}, true, nil
}

// Union is an Authenticator that asks each of its authenticators in turn
// and returns the first user found. When none finds one, it returns the
// errors of those that failed, joined, or no error when none did.
type Union []Authenticator

// AuthenticateRequest implements Authenticator.
func (u Union) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	var errs []error
	for _, a := range u {
		if a == nil {
			continue
		}
		user, ok, err := a.AuthenticateRequest(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return user, true, nil
		}
	}
	return nil, false, errors.Join(errs...)
}
