package authn_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"labctl/server/authn"
)

// withChain returns a request whose TLS handshake verified a chain with a
// leaf of that subject.
func withChain(subject pkix.Name) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	leaf := &x509.Certificate{Subject: subject, Raw: []byte(subject.CommonName)}
	r.TLS = &tls.ConnectionState{
		PeerCertificates: []*x509.Certificate{leaf},
		VerifiedChains:   [][]*x509.Certificate{{leaf, {Subject: pkix.Name{CommonName: "ca"}}}},
	}
	return r
}

func TestX509(t *testing.T) {
	unverified := httptest.NewRequest(http.MethodGet, "/api", nil)
	unverified.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "mallory"}}}}
	noCert := httptest.NewRequest(http.MethodGet, "/api", nil)
	noCert.TLS = &tls.ConnectionState{}

	tests := []struct {
		name       string
		req        *http.Request
		wantOK     bool
		wantName   string
		wantGroups []string
	}{
		{"plain HTTP", httptest.NewRequest(http.MethodGet, "/api", nil), false, "", nil},
		{"no client certificate", noCert, false, "", nil},
		{"certificate not verified", unverified, false, "", nil},
		{"no common name", withChain(pkix.Name{Organization: []string{"system:masters"}}), false, "", nil},
		{"admin", withChain(pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}}),
			true, "system:admin", []string{"system:masters", "system:authenticated"}},
		{"no organization", withChain(pkix.Name{CommonName: "system:kube-proxy"}),
			true, "system:kube-proxy", []string{"system:authenticated"}},
		{"node", withChain(pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}),
			true, "system:node:n1", []string{"system:nodes", "system:authenticated"}},
		{"authenticated already named", withChain(pkix.Name{CommonName: "bob", Organization: []string{"system:authenticated", "dev"}}),
			true, "bob", []string{"system:authenticated", "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok, err := authn.X509{}.AuthenticateRequest(tt.req)
			if err != nil {
				t.Fatalf("AuthenticateRequest: %v", err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if u != nil {
					t.Errorf("user %+v with ok false", u)
				}
				return
			}
			if u.Name != tt.wantName || !slices.Equal(u.Groups, tt.wantGroups) {
				t.Errorf("user %q in %q, want %q in %q", u.Name, u.Groups, tt.wantName, tt.wantGroups)
			}
			sum := sha256.Sum256([]byte(tt.wantName))
			if got, want := u.Extra[authn.CredentialIDKey], []string{"X509SHA256=" + hex.EncodeToString(sum[:])}; !slices.Equal(got, want) {
				t.Errorf("credential id %q, want %q", got, want)
			}
		})
	}
}

// TestX509KeepsOrganizations: adding system:authenticated does not write
// into the certificate's own slice.
func TestX509KeepsOrganizations(t *testing.T) {
	orgs := make([]string, 1, 4)
	orgs[0] = "dev"
	r := withChain(pkix.Name{CommonName: "bob", Organization: orgs})
	if _, _, err := (authn.X509{}).AuthenticateRequest(r); err != nil {
		t.Fatal(err)
	}
	if got := r.TLS.VerifiedChains[0][0].Subject.Organization; !slices.Equal(got, []string{"dev"}) || slices.Contains(orgs[:2], "system:authenticated") {
		t.Errorf("certificate organizations now %q", got)
	}
}

func TestUnion(t *testing.T) {
	errBad := errors.New("bad token")
	none := authn.AuthenticatorFunc(func(*http.Request) (*authn.User, bool, error) { return nil, false, nil })
	fails := authn.AuthenticatorFunc(func(*http.Request) (*authn.User, bool, error) { return nil, false, errBad })
	is := func(name string) authn.Authenticator {
		return authn.AuthenticatorFunc(func(*http.Request) (*authn.User, bool, error) { return &authn.User{Name: name}, true, nil })
	}
	tests := []struct {
		name     string
		union    authn.Union
		wantUser string
		wantErr  error
	}{
		{"empty", nil, "", nil},
		{"none find one", authn.Union{none, nil, none}, "", nil},
		{"the first that finds one", authn.Union{none, is("alice"), is("bob")}, "alice", nil},
		{"an error does not stop the others", authn.Union{fails, is("bob")}, "bob", nil},
		{"errors when none finds one", authn.Union{none, fails}, "", errBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok, err := tt.union.AuthenticateRequest(httptest.NewRequest(http.MethodGet, "/", nil))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if ok != (tt.wantUser != "") || (ok && u.Name != tt.wantUser) {
				t.Errorf("user %+v, ok %v; want %q", u, ok, tt.wantUser)
			}
		})
	}
}

func TestUserContext(t *testing.T) {
	if _, ok := authn.UserFrom(context.Background()); ok {
		t.Error("UserFrom an empty context reports a user")
	}
	if _, ok := authn.UserFrom(authn.WithUser(context.Background(), nil)); ok {
		t.Error("UserFrom reports a nil user")
	}
	u := &authn.User{Name: "alice"}
	if got, ok := authn.UserFrom(authn.WithUser(context.Background(), u)); !ok || got != u {
		t.Errorf("UserFrom(WithUser(u)) = %v, %v; want u, true", got, ok)
	}
}

func TestMasters(t *testing.T) {
	tests := []struct {
		user *authn.User
		want authn.Decision
	}{
		{&authn.User{Name: "system:admin", Groups: []string{"system:masters", "system:authenticated"}}, authn.DecisionAllow},
		{&authn.User{Name: "system:masters", Groups: []string{"system:authenticated"}}, authn.DecisionNoOpinion},
		{&authn.User{Name: "system:kube-proxy", Groups: []string{"system:authenticated"}}, authn.DecisionNoOpinion},
		{&authn.User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}, authn.DecisionNoOpinion},
		{nil, authn.DecisionNoOpinion},
	}
	for _, tt := range tests {
		d, _, err := authn.Masters{}.Authorize(context.Background(), authn.Attributes{User: tt.user, Verb: "delete", ResourceRequest: true, Resource: "nodes"})
		if err != nil || d != tt.want {
			t.Errorf("Authorize(%+v) = %v, %v; want %v", tt.user, d, err, tt.want)
		}
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[authn.Decision]string{
		authn.DecisionDeny: "deny", authn.DecisionAllow: "allow", authn.DecisionNoOpinion: "no opinion", 7: "Decision(7)",
	} {
		if got := d.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(d), got, want)
		}
	}
	if !strings.Contains(authn.Decision(0).String(), "deny") {
		t.Error("the zero Decision does not deny")
	}
}
