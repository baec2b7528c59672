package authn

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Service account names, groups and claims, as kube-apiserver has them.
const (
	// ServiceAccountUsernamePrefix starts the user name of every service
	// account: system:serviceaccount:<namespace>:<name>.
	ServiceAccountUsernamePrefix = "system:serviceaccount:"
	// AllServiceAccountsGroup is the group of every service account.
	AllServiceAccountsGroup = "system:serviceaccounts"
	// ServiceAccountGroupPrefix starts the group of a namespace's service
	// accounts: system:serviceaccounts:<namespace>.
	ServiceAccountGroupPrefix = "system:serviceaccounts:"
	// LegacyIssuer is the issuer of the long-lived tokens in Secrets of
	// type kubernetes.io/service-account-token.
	LegacyIssuer = "kubernetes/serviceaccount"
	// The Extra keys of a service account bound to a pod or node.
	PodNameKey  = "authentication.kubernetes.io/pod-name"
	PodUIDKey   = "authentication.kubernetes.io/pod-uid"
	NodeNameKey = "authentication.kubernetes.io/node-name"
	NodeUIDKey  = "authentication.kubernetes.io/node-uid"
	// MinTokenExpirationSeconds and MaxTokenExpirationSeconds bound a
	// requested token's lifetime (10 minutes and 2^32 s), as upstream's
	// TokenRequest validation does.
	MinTokenExpirationSeconds = 10 * 60
	MaxTokenExpirationSeconds = 1 << 32
)

// tokenLeeway is the clock skew allowed on exp, nbf and iat, and how long
// a deleted object's tokens keep working: go-jose's DefaultLeeway.
const tokenLeeway = time.Minute

// ServiceAccountUsername returns the user name of service account name in
// namespace.
func ServiceAccountUsername(namespace, name string) string {
	return ServiceAccountUsernamePrefix + namespace + ":" + name
}

// splitServiceAccountUsername returns the namespace and name of a service
// account user name.
func splitServiceAccountUsername(username string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(username, ServiceAccountUsernamePrefix)
	if !found {
		return "", "", false
	}
	namespace, name, found = strings.Cut(rest, ":")
	if !found || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

// ServiceAccountGetter finds the live objects that service account tokens
// name; only the API server reads the store, so it provides this. A
// missing object is an error (the API's NotFound).
type ServiceAccountGetter interface {
	GetServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	GetSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
}

// ---- claims

// numericDate is a JWT time: seconds since the epoch.
type numericDate int64

func newNumericDate(t time.Time) *numericDate {
	d := numericDate(t.Unix())
	return &d
}

func (d *numericDate) time() time.Time { return time.Unix(int64(*d), 0) }

// UnmarshalJSON accepts integers and floats, as go-jose does.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("go-jose/go-jose/jwt: expected number value to unmarshal")
	}
	*d = numericDate(f)
	return nil
}

// audience is the aud claim: a string or a list of strings; written as a
// list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience")
	}
	*a = l
	return nil
}

type objectRef struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// kubernetesClaims are the kubernetes.io claims of a bound token.
type kubernetesClaims struct {
	Namespace      string       `json:"namespace,omitempty"`
	ServiceAccount objectRef    `json:"serviceaccount,omitempty"`
	Pod            *objectRef   `json:"pod,omitempty"`
	Secret         *objectRef   `json:"secret,omitempty"`
	Node           *objectRef   `json:"node,omitempty"`
	WarnAfter      *numericDate `json:"warnafter,omitempty"`
}

// tokenClaims are every claim labctl's tokens carry: the registered ones,
// kubernetes.io for bound tokens, and the flat legacy ones.
type tokenClaims struct {
	Issuer     string            `json:"iss,omitempty"`
	Subject    string            `json:"sub,omitempty"`
	Audience   audience          `json:"aud,omitempty"`
	Expiry     *numericDate      `json:"exp,omitempty"`
	NotBefore  *numericDate      `json:"nbf,omitempty"`
	IssuedAt   *numericDate      `json:"iat,omitempty"`
	ID         string            `json:"jti,omitempty"`
	Kubernetes *kubernetesClaims `json:"kubernetes.io,omitempty"`
}

// legacyClaims are a legacy token's claims.
type legacyClaims struct {
	Issuer             string `json:"iss"`
	Subject            string `json:"sub"`
	ServiceAccountName string `json:"kubernetes.io/serviceaccount/service-account.name"`
	ServiceAccountUID  string `json:"kubernetes.io/serviceaccount/service-account.uid"`
	SecretName         string `json:"kubernetes.io/serviceaccount/secret.name"`
	Namespace          string `json:"kubernetes.io/serviceaccount/namespace"`
}

// ---- issuing

// TokenIssuer signs service account tokens, as kube-apiserver does with
// --service-account-signing-key-file and --service-account-issuer.
type TokenIssuer struct {
	issuer string
	signer *jwtSigner
	now    func() time.Time
}

// NewTokenIssuer returns an issuer that signs with key (RSA or ECDSA) and
// names issuer as the tokens' iss. now is the clock; nil is time.Now.
func NewTokenIssuer(issuer string, key crypto.Signer, now func() time.Time) (*TokenIssuer, error) {
	if issuer == "" {
		return nil, errors.New("service account tokens: no issuer given")
	}
	s, err := newJWTSigner(key)
	if err != nil {
		return nil, fmt.Errorf("service account tokens: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &TokenIssuer{issuer: issuer, signer: s, now: now}, nil
}

// Issuer is the iss of the tokens it signs.
func (t *TokenIssuer) Issuer() string { return t.issuer }

// BoundObjects are what a token may be bound to: a pod (and the node it
// runs on), a secret, or a node. A bound token stops working when its
// object goes.
type BoundObjects struct {
	Pod    *corev1.Pod
	Secret *corev1.Secret
	Node   *corev1.Node
}

// ServiceAccountToken signs a token for sa, bound to bound, for audiences,
// valid from now for expiration (TokenRequest and projected volumes). It
// returns the token and when it expires.
func (t *TokenIssuer) ServiceAccountToken(sa *corev1.ServiceAccount, bound BoundObjects, audiences []string, expiration time.Duration) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(expiration)
	k := &kubernetesClaims{
		Namespace:      sa.Namespace,
		ServiceAccount: objectRef{Name: sa.Name, UID: string(sa.UID)},
	}
	switch {
	case bound.Pod != nil:
		k.Pod = &objectRef{Name: bound.Pod.Name, UID: string(bound.Pod.UID)}
		if bound.Node != nil {
			k.Node = &objectRef{Name: bound.Node.Name, UID: string(bound.Node.UID)}
		}
	case bound.Secret != nil:
		k.Secret = &objectRef{Name: bound.Secret.Name, UID: string(bound.Secret.UID)}
	case bound.Node != nil:
		k.Node = &objectRef{Name: bound.Node.Name, UID: string(bound.Node.UID)}
	}
	claims := tokenClaims{
		Issuer:     t.issuer,
		Subject:    ServiceAccountUsername(sa.Namespace, sa.Name),
		Audience:   audiences,
		IssuedAt:   newNumericDate(now),
		NotBefore:  newNumericDate(now),
		Expiry:     newNumericDate(exp),
		ID:         string(uuid.NewUUID()),
		Kubernetes: k,
	}
	token, err := t.signer.sign(claims)
	return token, exp, err
}

// LegacyToken signs the long-lived token of a Secret of type
// kubernetes.io/service-account-token for sa: issuer LegacyIssuer, no
// audience and no expiry, valid while the Secret holds it and sa exists.
func (t *TokenIssuer) LegacyToken(sa *corev1.ServiceAccount, secret *corev1.Secret) (string, error) {
	return t.signer.sign(legacyClaims{
		Issuer:             LegacyIssuer,
		Subject:            ServiceAccountUsername(sa.Namespace, sa.Name),
		ServiceAccountName: sa.Name,
		ServiceAccountUID:  string(sa.UID),
		SecretName:         secret.Name,
		Namespace:          sa.Namespace,
	})
}

// ---- authenticating

// TokenResponse is who a token authenticates, and for which audiences.
type TokenResponse struct {
	User      *User
	Audiences []string
}

// TokenAuthenticator authenticates a bearer token. Like Authenticator, it
// returns ok false and no error for a token it does not recognise, and an
// error for one it recognises but refuses.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (*TokenResponse, bool, error)
}

type audiencesKey struct{}

// WithAudiences returns a copy of ctx asking token authenticators for a
// token valid for one of auds (TokenReview's spec.audiences); without it
// they want the API's audiences.
func WithAudiences(ctx context.Context, auds []string) context.Context {
	return context.WithValue(ctx, audiencesKey{}, auds)
}

func audiencesFrom(ctx context.Context) ([]string, bool) {
	auds, ok := ctx.Value(audiencesKey{}).([]string)
	return auds, ok
}

func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ServiceAccountTokens authenticates service account tokens as
// kube-apiserver does: the signature, the issuer, the audiences, the
// times (with a minute's leeway), and then the live objects the token
// names: its ServiceAccount, and the Pod, Secret or Node it is bound to,
// each with the same UID. A legacy token (issuer LegacyIssuer) must still
// be in its Secret. The user is system:serviceaccount:<ns>:<name> in
// system:serviceaccounts, system:serviceaccounts:<ns> and
// system:authenticated.
type ServiceAccountTokens struct {
	// Issuers are the iss values accepted on bound tokens (the issuer of
	// the TokenIssuer, and any earlier ones); LegacyIssuer is accepted
	// too, for legacy tokens.
	Issuers []string
	// Keys verify the signatures: the service account key's public half,
	// and any earlier ones.
	Keys []crypto.PublicKey
	// APIAudiences are the API server's audiences: those a token without
	// aud is for, and those asked for when the context names none
	// (WithAudiences). Empty accepts any audience.
	APIAudiences []string
	// Getter finds the objects tokens name; required.
	Getter ServiceAccountGetter
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// AuthenticateToken implements TokenAuthenticator.
func (a *ServiceAccountTokens) AuthenticateToken(ctx context.Context, token string) (*TokenResponse, bool, error) {
	tok, ok := parseJWT(token)
	if !ok {
		return nil, false, nil
	}
	// The issuer, unverified, says whether the token is ours at all.
	var peek struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(tok.payload, &peek) != nil {
		return nil, false, nil
	}
	legacy := peek.Issuer == LegacyIssuer
	if !legacy && !slices.Contains(a.Issuers, peek.Issuer) {
		return nil, false, nil
	}

	var errs []error
	verified := false
	for _, key := range a.Keys {
		if tok.header.Kid != "" {
			if kid, err := KeyID(key); err != nil || kid != tok.header.Kid {
				continue
			}
		}
		if err := tok.verify(key); err != nil {
			errs = append(errs, err)
			continue
		}
		verified = true
		break
	}
	if !verified {
		if len(errs) == 0 {
			return nil, false, errors.New("invalid signature, no keys found")
		}
		return nil, false, aggregate(errs)
	}

	var claims tokenClaims
	if err := json.Unmarshal(tok.payload, &claims); err != nil {
		return nil, false, fmt.Errorf("go-jose/go-jose: %w", err)
	}
	tokenAuds := []string(claims.Audience)
	if len(tokenAuds) == 0 {
		// Legacy tokens have none: they are for the API server only.
		tokenAuds = a.APIAudiences
	}
	requested, ok := audiencesFrom(ctx)
	if !ok {
		requested = a.APIAudiences
	}
	auds := intersect(tokenAuds, requested)
	if len(auds) == 0 && len(a.APIAudiences) != 0 {
		return nil, false, fmt.Errorf("token audiences %q is invalid for the target audiences %q", tokenAuds, requested)
	}

	var user *User
	var err error
	if legacy {
		var lc legacyClaims
		if err := json.Unmarshal(tok.payload, &lc); err != nil {
			return nil, false, fmt.Errorf("go-jose/go-jose: %w", err)
		}
		user, err = a.validateLegacy(ctx, token, claims, lc)
	} else {
		user, err = a.validateBound(ctx, claims)
	}
	if err != nil {
		return nil, false, err
	}
	return &TokenResponse{User: user, Audiences: auds}, true, nil
}

func (a *ServiceAccountTokens) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// validateTimes checks exp, nbf and iat with go-jose's leeway and
// kube-apiserver's words.
func validateTimes(c tokenClaims, now time.Time) error {
	switch {
	case c.NotBefore != nil && now.Add(tokenLeeway).Before(c.NotBefore.time()):
		return errors.New("service account token is not valid yet")
	case c.Expiry != nil && now.Add(-tokenLeeway).After(c.Expiry.time()):
		return errors.New("service account token has expired")
	case c.IssuedAt != nil && now.Add(tokenLeeway).Before(c.IssuedAt.time()):
		return errors.New("service account token is issued in the future")
	}
	return nil
}

// validateBound checks a bound token against the live objects, as
// upstream's pkg/serviceaccount validator does.
func (a *ServiceAccountTokens) validateBound(ctx context.Context, c tokenClaims) (*User, error) {
	now := a.now()
	if err := validateTimes(c, now); err != nil {
		return nil, err
	}
	k := c.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount.Name == "" {
		return nil, errors.New("service account token claims could not be validated due to unexpected private claim")
	}
	// Things deleted more than the leeway ago no longer back a token.
	deletedBefore := now.Add(-tokenLeeway)
	ns := k.Namespace
	sa, err := a.Getter.GetServiceAccount(ctx, ns, k.ServiceAccount.Name)
	if err != nil {
		return nil, err
	}
	if string(sa.UID) != k.ServiceAccount.UID {
		return nil, fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.UID, k.ServiceAccount.UID)
	}
	if sa.DeletionTimestamp != nil && sa.DeletionTimestamp.Time.Before(deletedBefore) {
		return nil, fmt.Errorf("service account %s/%s has been deleted", ns, k.ServiceAccount.Name)
	}
	invalidated := errors.New("service account token has been invalidated")
	if ref := k.Secret; ref != nil {
		secret, err := a.Getter.GetSecret(ctx, ns, ref.Name)
		if err != nil {
			return nil, invalidated
		}
		if string(secret.UID) != ref.UID {
			return nil, fmt.Errorf("secret UID (%s) does not match service account secret ref claim (%s)", secret.UID, ref.UID)
		}
		if secret.DeletionTimestamp != nil && secret.DeletionTimestamp.Time.Before(deletedBefore) {
			return nil, invalidated
		}
	}
	u := &User{
		Name:   ServiceAccountUsername(ns, sa.Name),
		UID:    string(sa.UID),
		Groups: []string{AllServiceAccountsGroup, ServiceAccountGroupPrefix + ns, AllAuthenticated},
		Extra:  map[string][]string{},
	}
	if ref := k.Pod; ref != nil {
		pod, err := a.Getter.GetPod(ctx, ns, ref.Name)
		if err != nil {
			return nil, invalidated
		}
		if pod.DeletionTimestamp != nil && pod.DeletionTimestamp.Time.Before(deletedBefore) {
			return nil, invalidated
		}
		if string(pod.UID) != ref.UID {
			return nil, fmt.Errorf("pod UID (%s) does not match service account pod ref claim (%s)", pod.UID, ref.UID)
		}
		u.Extra[PodNameKey] = []string{ref.Name}
		u.Extra[PodUIDKey] = []string{ref.UID}
	}
	if ref := k.Node; ref != nil {
		if k.Pod == nil {
			// Bound to the node itself: it must still be there.
			node, err := a.Getter.GetNode(ctx, ref.Name)
			if err != nil {
				return nil, invalidated
			}
			if node.DeletionTimestamp != nil && node.DeletionTimestamp.Time.Before(deletedBefore) {
				return nil, invalidated
			}
			if string(node.UID) != ref.UID {
				return nil, fmt.Errorf("node UID (%s) does not match service account node ref claim (%s)", node.UID, ref.UID)
			}
		}
		u.Extra[NodeNameKey] = []string{ref.Name}
		u.Extra[NodeUIDKey] = []string{ref.UID}
	}
	if c.ID != "" {
		u.Extra[CredentialIDKey] = []string{"JTI=" + c.ID}
	}
	if len(u.Extra) == 0 {
		u.Extra = nil
	}
	return u, nil
}

// validateLegacy checks a legacy token: it must still be in its Secret,
// and its ServiceAccount must still exist with the same UID.
func (a *ServiceAccountTokens) validateLegacy(ctx context.Context, token string, c tokenClaims, lc legacyClaims) (*User, error) {
	if err := validateTimes(c, a.now()); err != nil {
		return nil, err
	}
	switch {
	case lc.Subject == "":
		return nil, errors.New("sub claim is missing")
	case lc.Namespace == "":
		return nil, errors.New("namespace claim is missing")
	case lc.SecretName == "":
		return nil, errors.New("secretName claim is missing")
	case lc.ServiceAccountName == "":
		return nil, errors.New("serviceAccountName claim is missing")
	case lc.ServiceAccountUID == "":
		return nil, errors.New("serviceAccountUID claim is missing")
	}
	if ns, name, ok := splitServiceAccountUsername(lc.Subject); !ok || ns != lc.Namespace || name != lc.ServiceAccountName {
		return nil, errors.New("sub claim is invalid")
	}
	secret, err := a.Getter.GetSecret(ctx, lc.Namespace, lc.SecretName)
	if err != nil || secret.DeletionTimestamp != nil {
		return nil, errors.New("token has been invalidated")
	}
	if subtle.ConstantTimeCompare(secret.Data[corev1.ServiceAccountTokenKey], []byte(token)) == 0 {
		return nil, errors.New("token does not match server's copy")
	}
	sa, err := a.Getter.GetServiceAccount(ctx, lc.Namespace, lc.ServiceAccountName)
	if err != nil {
		return nil, err
	}
	if sa.DeletionTimestamp != nil {
		return nil, fmt.Errorf("ServiceAccount %s/%s has been deleted", lc.Namespace, lc.ServiceAccountName)
	}
	if string(sa.UID) != lc.ServiceAccountUID {
		return nil, fmt.Errorf("ServiceAccount UID (%s) does not match claim (%s)", sa.UID, lc.ServiceAccountUID)
	}
	return &User{
		Name:   ServiceAccountUsername(lc.Namespace, lc.ServiceAccountName),
		UID:    lc.ServiceAccountUID,
		Groups: []string{AllServiceAccountsGroup, ServiceAccountGroupPrefix + lc.Namespace, AllAuthenticated},
	}, nil
}

// ---- bearer tokens

// errInvalidBearerToken is kube-apiserver's word for a bearer token that
// no authenticator took.
var errInvalidBearerToken = errors.New("invalid bearer token")

// aggregateError lists several errors as k8s.io/apimachinery's aggregate
// does: one alone as itself, more as [a, b].
type aggregateError []error

func aggregate(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return aggregateError(errs)
}

func (e aggregateError) Error() string {
	if len(e) == 1 {
		return e[0].Error()
	}
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return "[" + strings.Join(msgs, ", ") + "]"
}

func (e aggregateError) Unwrap() []error { return e }

// BearerToken authenticates requests by their Authorization: Bearer
// header with a TokenAuthenticator. A token it refuses is an error in
// kube-apiserver's words: "[invalid bearer token, <why>]", or "invalid
// bearer token" for a token nothing recognised. A request without such a
// header carries no credentials for it.
type BearerToken struct {
	Tokens TokenAuthenticator
}

// AuthenticateRequest implements Authenticator.
func (b BearerToken) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	resp, ok, err := b.authenticate(r)
	if !ok || err != nil {
		return nil, false, err
	}
	return resp.User, true, nil
}

// authenticate returns the whole response, audiences included.
func (b BearerToken) authenticate(r *http.Request) (*TokenResponse, bool, error) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if auth == "" {
		return nil, false, nil
	}
	parts := strings.Fields(auth)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") {
		return nil, false, nil
	}
	token := parts[1]
	if token == "" {
		return nil, false, nil
	}
	resp, ok, err := b.Tokens.AuthenticateToken(r.Context(), token)
	switch {
	case ok && err == nil:
		return resp, true, nil
	case err != nil:
		return nil, false, aggregate([]error{errInvalidBearerToken, err})
	}
	return nil, false, errInvalidBearerToken
}

// ReviewToken authenticates token for audiences (none: the API's), as
// TokenReview does: it returns the response when the token holds, or the
// error that says why not.
func (b BearerToken) ReviewToken(ctx context.Context, token string, audiences []string) (*TokenResponse, error) {
	if len(audiences) > 0 {
		ctx = WithAudiences(ctx, audiences)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer "+token)
	resp, ok, err := b.authenticate(r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errInvalidBearerToken
	}
	return resp, nil
}
