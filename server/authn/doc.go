// Package authn decides who sends a request to the API server and whether
// they may do what it asks, the way kube-apiserver's authentication and
// authorization filters do.
//
// An Authenticator turns a request's credentials into a User. X509 reads
// the client certificate that the TLS handshake verified against the
// cluster CA: its common name is the user's name, its organizations the
// user's groups, and every such user is also in system:authenticated.
// Union tries several authenticators in turn, as kube-apiserver does:
// client certificates first, then bearer tokens.
//
// Service account tokens are JWTs signed with the service account key
// (RS256, or ES256/384/512 for an ECDSA key), as kube-apiserver signs
// them. TokenIssuer makes them: bound tokens (TokenRequest, projected
// volumes) with the iss, sub, aud, exp, nbf, iat and jti claims and the
// kubernetes.io claims (namespace, service account, and the pod, secret or
// node they are bound to), and the long-lived tokens of legacy
// kubernetes.io/service-account-token Secrets (issuer
// kubernetes/serviceaccount). ServiceAccountTokens checks them: signature,
// issuer, audiences, times with a minute's leeway, then the live objects
// through a ServiceAccountGetter (the API server reads them from the
// store), each with the UID the token names; the user is
// system:serviceaccount:<ns>:<name> in system:serviceaccounts,
// system:serviceaccounts:<ns> and system:authenticated. BearerToken reads
// the Authorization header for it, and refuses in kube-apiserver's words
// ("[invalid bearer token, service account token has expired]").
//
// An Authorizer decides on Attributes: who, which verb, and which resource
// or plain path (see package labctl/server/request). Masters allows members
// of system:masters, as kube-apiserver always does, and has no opinion on
// anyone else; AuthenticatedDefaults gives every authenticated user what
// upstream's default RBAC bindings give system:authenticated (discovery,
// kubectl auth whoami and can-i); RBAC will sit beside them later.
//
// NewHandler puts both in front of the API server's routes:
//
//   - A request without valid credentials gets 401 with the Status body
//     kube-apiserver sends ("Unauthorized").
//   - A request that no authorizer allows gets 403 with kube-apiserver's
//     Status and wording, e.g. `pods "p" is forbidden: User "bob" cannot
//     get resource "pods" in API group "" in the namespace "default"`.
//   - The public paths (/healthz, /livez, /readyz, /version by default) are
//     served to anyone. kube-apiserver gets there through its anonymous
//     user, system:anonymous in group system:unauthenticated, and the RBAC
//     role system:public-info-viewer; here the handler lets them through
//     without asking the authorizer, with a request without credentials
//     carrying that anonymous user.
//
// Handlers behind NewHandler find the user with UserFrom and the parsed
// request with request.InfoFrom.
package authn
