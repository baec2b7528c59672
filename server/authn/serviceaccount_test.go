package authn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/authn"
)

// objects is a ServiceAccountGetter over a map, as the API server's store.
type objects struct {
	mu sync.Mutex
	m  map[string]any // "kind/ns/name"
}

func newObjects() *objects { return &objects{m: map[string]any{}} }

func (o *objects) put(kind, ns, name string, obj any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[kind+"/"+ns+"/"+name] = obj
}

func (o *objects) del(kind, ns, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, kind+"/"+ns+"/"+name)
}

func get[T any](o *objects, kind, resource, ns, name string) (T, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, ok := o.m[kind+"/"+ns+"/"+name]
	if !ok {
		var zero T
		return zero, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
	}
	return obj.(T), nil
}

func (o *objects) GetServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	return get[*corev1.ServiceAccount](o, "sa", "serviceaccounts", ns, name)
}

func (o *objects) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	return get[*corev1.Pod](o, "pod", "pods", ns, name)
}

func (o *objects) GetSecret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	return get[*corev1.Secret](o, "secret", "secrets", ns, name)
}

func (o *objects) GetNode(_ context.Context, name string) (*corev1.Node, error) {
	return get[*corev1.Node](o, "node", "nodes", "", name)
}

const testIssuer = "https://kubernetes.default.svc.cluster.local"

var apiAudiences = []string{testIssuer, "labctl"}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testKey is one RSA key for the package's tests (generating them is slow).
func testKey(t *testing.T) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

type fixture struct {
	clk    *clock
	objs   *objects
	issuer *authn.TokenIssuer
	tokens *authn.ServiceAccountTokens
	sa     *corev1.ServiceAccount
}

func newFixture(t *testing.T, key crypto.Signer) *fixture {
	t.Helper()
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	issuer, err := authn.NewTokenIssuer(testIssuer, key, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		clk:    clk,
		objs:   newObjects(),
		issuer: issuer,
		sa:     &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "builder", UID: "sa-uid-1"}},
	}
	f.tokens = &authn.ServiceAccountTokens{
		Issuers:      []string{testIssuer},
		Keys:         []crypto.PublicKey{key.Public()},
		APIAudiences: apiAudiences,
		Getter:       f.objs,
		Now:          clk.Now,
	}
	f.objs.put("sa", "team", "builder", f.sa)
	return f
}

func (f *fixture) mint(t *testing.T, bound authn.BoundObjects, auds []string, exp time.Duration) string {
	t.Helper()
	if auds == nil {
		auds = apiAudiences
	}
	tok, expiry, err := f.issuer.ServiceAccountToken(f.sa, bound, auds, exp)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clk.Now().Add(exp); !expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", expiry, want)
	}
	return tok
}

// decode returns a token's header and payload.
func decode(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWT", token)
	}
	for i, into := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

func TestServiceAccountTokenClaims(t *testing.T) {
	key := testKey(t)
	f := newFixture(t, key)
	tok := f.mint(t, authn.BoundObjects{}, nil, time.Hour)
	header, payload := decode(t, tok)
	kid, _ := authn.KeyID(key.Public())
	if header["alg"] != "RS256" || header["kid"] != kid || len(header) != 2 {
		t.Errorf("header %v, want alg RS256 and kid %s only", header, kid)
	}
	now := f.clk.Now().Unix()
	want := map[string]any{
		"iss": testIssuer,
		"sub": "system:serviceaccount:team:builder",
		"aud": []any{testIssuer, "labctl"},
		"iat": float64(now), "nbf": float64(now), "exp": float64(now + 3600),
		"kubernetes.io": map[string]any{
			"namespace":      "team",
			"serviceaccount": map[string]any{"name": "builder", "uid": "sa-uid-1"},
		},
	}
	jti, _ := payload["jti"].(string)
	if len(jti) != 36 {
		t.Errorf("jti %q, want a UUID", jti)
	}
	delete(payload, "jti")
	if got, _ := json.Marshal(payload); string(got) != mustJSON(want) {
		t.Errorf("claims\n got %s\nwant %s", got, mustJSON(want))
	}
	// The payload's members are sorted, as go-jose writes them.
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.HasPrefix(string(raw), `{"aud":[`) {
		t.Errorf("payload %s does not start with aud", raw)
	}

	resp, ok, err := f.tokens.AuthenticateToken(context.Background(), tok)
	if err != nil || !ok {
		t.Fatalf("a fresh token: %v %v", ok, err)
	}
	u := resp.User
	if u.Name != "system:serviceaccount:team:builder" || u.UID != "sa-uid-1" ||
		!slices.Equal(u.Groups, []string{"system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"}) {
		t.Errorf("user %+v", u)
	}
	if got := u.Extra[authn.CredentialIDKey]; !slices.Equal(got, []string{"JTI=" + jti}) {
		t.Errorf("credential id %v, want JTI=%s", got, jti)
	}
	if !slices.Equal(resp.Audiences, apiAudiences) {
		t.Errorf("audiences %v", resp.Audiences)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestServiceAccountTokenRefused(t *testing.T) {
	key := testKey(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, key)
	good := f.mint(t, authn.BoundObjects{}, nil, time.Hour)

	otherIssuer, _ := authn.NewTokenIssuer(testIssuer, other, f.clk.Now)
	foreign, _, _ := otherIssuer.ServiceAccountToken(f.sa, authn.BoundObjects{}, apiAudiences, time.Hour)
	// The same header and claims as good, signed by another RSA key.
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + parts[1] + "." + resign(t, otherRSA, parts[0]+"."+parts[1])
	// good's header and signature over changed claims.
	_, claims := decode(t, good)
	claims["sub"] = "system:serviceaccount:team:admin"
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(mustJSON(claims))) + "." + parts[2]

	tests := []struct {
		name    string
		token   func() string
		ctx     context.Context
		wantErr string // "" with wantOK false: not recognised
		wantOK  bool
	}{
		{name: "good", token: func() string { return good }, wantOK: true},
		{name: "expired", token: func() string {
			return f.mint(t, authn.BoundObjects{}, nil, 10*time.Minute)
		}, ctx: nil, wantErr: ""}, // replaced below
		{name: "another key", token: func() string { return foreign }, wantErr: "invalid signature, no keys found"},
		{name: "another key, same kid", token: func() string { return forged }, wantErr: "go-jose/go-jose: error in cryptographic primitive"},
		{name: "tampered claims", token: func() string { return tampered }, wantErr: "go-jose/go-jose: error in cryptographic primitive"},
		{name: "another issuer", token: func() string {
			i, _ := authn.NewTokenIssuer("https://elsewhere.example", key, f.clk.Now)
			tok, _, _ := i.ServiceAccountToken(f.sa, authn.BoundObjects{}, apiAudiences, time.Hour)
			return tok
		}},
		{name: "not a JWT", token: func() string { return "0123456789abcdef" }},
		{name: "wrong audience", token: func() string {
			return f.mint(t, authn.BoundObjects{}, []string{"vault"}, time.Hour)
		}, wantErr: `token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local" "labctl"]`},
		{name: "audience asked for", token: func() string {
			return f.mint(t, authn.BoundObjects{}, []string{"vault"}, time.Hour)
		}, ctx: authn.WithAudiences(context.Background(), []string{"vault"}), wantOK: true},
		{name: "token for the API, asked for another audience", token: func() string { return good },
			ctx: authn.WithAudiences(context.Background(), []string{"vault"}), wantErr: `token audiences ["https://kubernetes.default.svc.cluster.local" "labctl"] is invalid for the target audiences ["vault"]`},
	}
	// Expired: a token minted an hour ago for ten minutes; the minute of
	// leeway does not save it.
	f.clk.add(-time.Hour)
	expired := f.mint(t, authn.BoundObjects{}, nil, 10*time.Minute)
	f.clk.add(time.Hour)
	tests[1].token = func() string { return expired }
	tests[1].wantErr = "service account token has expired"

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			resp, ok, err := f.tokens.AuthenticateToken(ctx, tt.token())
			got := ""
			if err != nil {
				got = err.Error()
			}
			if ok != tt.wantOK || got != tt.wantErr {
				t.Fatalf("got ok=%v err=%q, want ok=%v err=%q", ok, got, tt.wantOK, tt.wantErr)
			}
			if ok && resp.User.Name != "system:serviceaccount:team:builder" {
				t.Errorf("user %q", resp.User.Name)
			}
		})
	}
}

// resign signs input with key as RS256 would.
func resign(t *testing.T, key *rsa.PrivateKey, input string) string {
	t.Helper()
	h := crypto.SHA256.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

func TestServiceAccountTokenTimes(t *testing.T) {
	f := newFixture(t, testKey(t))
	tok := f.mint(t, authn.BoundObjects{}, nil, 10*time.Minute)
	check := func(when string, wantErr string) {
		t.Helper()
		_, ok, err := f.tokens.AuthenticateToken(context.Background(), tok)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if ok != (wantErr == "") || got != wantErr {
			t.Errorf("%s: ok=%v err=%q, want err %q", when, ok, got, wantErr)
		}
	}
	f.clk.add(-90 * time.Second)
	check("90 s before it was issued", "service account token is not valid yet")
	f.clk.add(60 * time.Second)
	check("30 s before it was issued (leeway)", "")
	f.clk.add(30*time.Second + 10*time.Minute + 50*time.Second)
	check("50 s after it expired (leeway)", "")
	f.clk.add(20 * time.Second)
	check("70 s after it expired", "service account token has expired")
}

func TestServiceAccountTokenLiveObjects(t *testing.T) {
	f := newFixture(t, testKey(t))
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "pod-uid-1"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-uid-1"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "s", UID: "secret-uid-1"}}
	f.objs.put("pod", "team", "web", pod)
	f.objs.put("node", "", "node-1", node)
	f.objs.put("secret", "team", "s", secret)

	podTok := f.mint(t, authn.BoundObjects{Pod: pod, Node: node}, nil, time.Hour)
	_, claims := decode(t, podTok)
	k := claims["kubernetes.io"].(map[string]any)
	if mustJSON(k["pod"]) != `{"name":"web","uid":"pod-uid-1"}` || mustJSON(k["node"]) != `{"name":"node-1","uid":"node-uid-1"}` {
		t.Errorf("bound claims %v", k)
	}
	resp, ok, err := f.tokens.AuthenticateToken(ctx, podTok)
	if !ok || err != nil {
		t.Fatalf("pod-bound token: %v", err)
	}
	for key, want := range map[string]string{authn.PodNameKey: "web", authn.PodUIDKey: "pod-uid-1", authn.NodeNameKey: "node-1", authn.NodeUIDKey: "node-uid-1"} {
		if got := resp.User.Extra[key]; !slices.Equal(got, []string{want}) {
			t.Errorf("extra %s = %v, want %s", key, got, want)
		}
	}
	secretTok := f.mint(t, authn.BoundObjects{Secret: secret}, nil, time.Hour)
	nodeTok := f.mint(t, authn.BoundObjects{Node: node}, nil, time.Hour)
	plain := f.mint(t, authn.BoundObjects{}, nil, time.Hour)
	for _, tok := range []string{secretTok, nodeTok, plain} {
		if _, ok, err := f.tokens.AuthenticateToken(ctx, tok); !ok || err != nil {
			t.Fatalf("bound token: %v", err)
		}
	}

	refused := func(what, tok, wantErr string) {
		t.Helper()
		_, ok, err := f.tokens.AuthenticateToken(ctx, tok)
		if ok || err == nil || err.Error() != wantErr {
			t.Errorf("%s: ok=%v err=%v, want %q", what, ok, err, wantErr)
		}
	}
	// A pod of the same name but another UID does not revive the token.
	f.objs.put("pod", "team", "web", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", UID: "pod-uid-2"}})
	refused("pod recreated", podTok, "pod UID (pod-uid-2) does not match service account pod ref claim (pod-uid-1)")
	f.objs.del("pod", "team", "web")
	refused("pod deleted", podTok, "service account token has been invalidated")
	f.objs.del("secret", "team", "s")
	refused("secret deleted", secretTok, "service account token has been invalidated")
	// Deleted but still there (finalizers): fine for the leeway's minute.
	gone := metav1.NewTime(f.clk.Now().Add(-30 * time.Second))
	f.objs.put("node", "", "node-1", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-uid-1", DeletionTimestamp: &gone}})
	if _, ok, err := f.tokens.AuthenticateToken(ctx, nodeTok); !ok {
		t.Errorf("node deleted 30 s ago: %v", err)
	}
	f.clk.add(time.Minute)
	refused("node deleted 90 s ago", nodeTok, "service account token has been invalidated")

	f.objs.put("sa", "team", "builder", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "builder", UID: "sa-uid-2"}})
	refused("service account recreated", plain, "service account UID (sa-uid-2) does not match claim (sa-uid-1)")
	f.objs.del("sa", "team", "builder")
	refused("service account deleted", plain, `serviceaccounts "builder" not found`)
}

func TestLegacyServiceAccountToken(t *testing.T) {
	f := newFixture(t, testKey(t))
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "builder-token", UID: "secret-uid"}, Type: corev1.SecretTypeServiceAccountToken}
	tok, err := f.issuer.LegacyToken(f.sa, secret)
	if err != nil {
		t.Fatal(err)
	}
	_, claims := decode(t, tok)
	want := `{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"team","kubernetes.io/serviceaccount/secret.name":"builder-token","kubernetes.io/serviceaccount/service-account.name":"builder","kubernetes.io/serviceaccount/service-account.uid":"sa-uid-1","sub":"system:serviceaccount:team:builder"}`
	if got := mustJSON(claims); got != want {
		t.Errorf("legacy claims\n got %s\nwant %s", got, want)
	}
	refused := func(what, wantErr string) {
		t.Helper()
		_, ok, err := f.tokens.AuthenticateToken(ctx, tok)
		if ok || err == nil || err.Error() != wantErr {
			t.Errorf("%s: ok=%v err=%v, want %q", what, ok, err, wantErr)
		}
	}
	refused("no secret", "token has been invalidated")
	secret.Data = map[string][]byte{"token": []byte("something else")}
	f.objs.put("secret", "team", "builder-token", secret)
	refused("secret holds another token", "token does not match server's copy")
	secret.Data["token"] = []byte(tok)
	resp, ok, err := f.tokens.AuthenticateToken(ctx, tok)
	if !ok || err != nil {
		t.Fatalf("legacy token: %v", err)
	}
	if resp.User.Name != "system:serviceaccount:team:builder" || resp.User.UID != "sa-uid-1" || len(resp.User.Extra) != 0 ||
		!slices.Equal(resp.Audiences, apiAudiences) {
		t.Errorf("legacy token user %+v audiences %v", resp.User, resp.Audiences)
	}
	// A legacy token has no audience: it is for the API only.
	if _, ok, err := f.tokens.AuthenticateToken(authn.WithAudiences(ctx, []string{"vault"}), tok); ok || err == nil {
		t.Errorf("legacy token for another audience accepted")
	}
	f.objs.del("sa", "team", "builder")
	refused("service account deleted", `serviceaccounts "builder" not found`)
}

func TestECDSAServiceAccountKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, key)
	tok := f.mint(t, authn.BoundObjects{}, nil, time.Hour)
	if h, _ := decode(t, tok); h["alg"] != "ES256" {
		t.Errorf("alg %v, want ES256", h["alg"])
	}
	if sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2]); len(sig) != 64 {
		t.Errorf("ES256 signature of %d bytes, want r||s, 64", len(sig))
	}
	if _, ok, err := f.tokens.AuthenticateToken(context.Background(), tok); !ok || err != nil {
		t.Fatalf("ES256 token: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	f := newFixture(t, testKey(t))
	good := f.mint(t, authn.BoundObjects{}, nil, time.Hour)
	f.clk.add(-2 * time.Hour)
	expired := f.mint(t, authn.BoundObjects{}, nil, time.Hour)
	f.clk.add(2 * time.Hour)
	b := authn.BearerToken{Tokens: f.tokens}
	tests := []struct {
		header   string
		wantUser string
		wantErr  string
	}{
		{header: ""},
		{header: "Basic dXNlcjpwYXNz"},
		{header: "Bearer"},
		{header: "Bearer " + good, wantUser: "system:serviceaccount:team:builder"},
		{header: "bearer  " + good, wantUser: "system:serviceaccount:team:builder"},
		{header: "Bearer " + expired, wantErr: "[invalid bearer token, service account token has expired]"},
		{header: "Bearer not-a-token", wantErr: "invalid bearer token"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/api/v1/pods", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		u, ok, err := b.AuthenticateRequest(r)
		got := ""
		if err != nil {
			got = err.Error()
		}
		switch {
		case got != tt.wantErr:
			t.Errorf("%.30q: error %q, want %q", tt.header, got, tt.wantErr)
		case tt.wantUser != "" && (!ok || u.Name != tt.wantUser):
			t.Errorf("%.30q: user %v %v, want %s", tt.header, u, ok, tt.wantUser)
		case tt.wantUser == "" && ok:
			t.Errorf("%.30q: authenticated %v", tt.header, u)
		}
	}
	// In a union after X509, a bad token makes the request fail.
	r, _ := http.NewRequest("GET", "/version", nil)
	r.Header.Set("Authorization", "Bearer "+expired)
	if _, ok, err := (authn.Union{authn.X509{}, b}).AuthenticateRequest(r); ok || err == nil {
		t.Errorf("union with an expired token: ok=%v err=%v", ok, err)
	}
	// ReviewToken is TokenReview's view.
	if _, err := b.ReviewToken(context.Background(), "nonsense", nil); err == nil || err.Error() != "invalid bearer token" {
		t.Errorf("review of nonsense: %v", err)
	}
	resp, err := b.ReviewToken(context.Background(), good, []string{"labctl", "other"})
	if err != nil || !slices.Equal(resp.Audiences, []string{"labctl"}) {
		t.Errorf("review for labctl: %+v %v", resp, err)
	}
}

func TestAuthenticatedDefaults(t *testing.T) {
	sa := &authn.User{Name: "system:serviceaccount:team:builder", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"}}
	anon := &authn.User{Name: authn.Anonymous, Groups: []string{authn.AllUnauthenticated}}
	res := func(verb, group, resource, sub string) authn.Attributes {
		return authn.Attributes{User: sa, Verb: verb, ResourceRequest: true, APIGroup: group, APIVersion: "v1", Resource: resource, Subresource: sub}
	}
	path := func(verb, p string) authn.Attributes { return authn.Attributes{User: sa, Verb: verb, Path: p} }
	tests := []struct {
		a    authn.Attributes
		want authn.Decision
	}{
		{res("create", "authentication.k8s.io", "selfsubjectreviews", ""), authn.DecisionAllow},
		{res("create", "authorization.k8s.io", "selfsubjectaccessreviews", ""), authn.DecisionAllow},
		{res("create", "authorization.k8s.io", "selfsubjectrulesreviews", ""), authn.DecisionAllow},
		{res("create", "authentication.k8s.io", "tokenreviews", ""), authn.DecisionNoOpinion},
		{res("create", "authorization.k8s.io", "subjectaccessreviews", ""), authn.DecisionNoOpinion},
		{res("list", "", "pods", ""), authn.DecisionNoOpinion},
		{res("create", "", "serviceaccounts", "token"), authn.DecisionNoOpinion},
		{path("get", "/api"), authn.DecisionAllow},
		{path("get", "/api/v1"), authn.DecisionAllow},
		{path("get", "/apis/apps/v1"), authn.DecisionAllow},
		{path("get", "/openapi/v3/api/v1"), authn.DecisionAllow},
		{path("get", "/version"), authn.DecisionAllow},
		{path("get", "/livez"), authn.DecisionAllow},
		{path("get", "/apiary"), authn.DecisionNoOpinion},
		{path("post", "/api"), authn.DecisionNoOpinion},
		{path("get", "/debug/pprof/"), authn.DecisionNoOpinion},
		{path("get", "/metrics"), authn.DecisionNoOpinion},
		{authn.Attributes{User: anon, Verb: "get", Path: "/api"}, authn.DecisionNoOpinion},
	}
	for _, tt := range tests {
		if got, _, err := (authn.AuthenticatedDefaults{}).Authorize(context.Background(), tt.a); got != tt.want || err != nil {
			t.Errorf("%s %s%s %s/%s: %v %v, want %v", tt.a.User.Name, tt.a.Verb, tt.a.Path, tt.a.APIGroup, tt.a.Resource, got, err, tt.want)
		}
	}
}
