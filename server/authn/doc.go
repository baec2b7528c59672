// Package authn decides who sends a request to the API server and whether
// they may do what it asks, the way kube-apiserver's authentication and
// authorization filters do.
//
// An Authenticator turns a request's credentials into a User. X509 reads
// the client certificate that the TLS handshake verified against the
// cluster CA: its common name is the user's name, its organizations the
// user's groups, and every such user is also in system:authenticated.
// Union tries several authenticators in turn; bearer tokens (service
// account tokens) join it in a later issue.
//
// An Authorizer decides on Attributes: who, which verb, and which resource
// or plain path (see package labctl/server/request). Masters allows members
// of system:masters, as kube-apiserver always does, and has no opinion on
// anyone else; RBAC will sit beside it later.
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
