package authn

import (
	"context"
	"slices"
	"strings"
)

// AuthenticatedDefaults allows every authenticated user (group
// system:authenticated) what kube-apiserver's bootstrap RBAC policy binds
// to that group, and nothing else:
//
//   - system:basic-user: create selfsubjectreviews (kubectl auth whoami),
//     selfsubjectaccessreviews and selfsubjectrulesreviews (kubectl auth
//     can-i);
//   - system:discovery: get /api, /api/*, /apis, /apis/*, /openapi,
//     /openapi/*, /version and /version/, which kubectl reads before
//     anything else;
//   - system:public-info-viewer: get /healthz, /livez, /readyz and
//     /version.
//
// It has no opinion on anything else, so that a user without other rights
// (a service account, until RBAC is served) learns who it is and gets 403
// with upstream's words for what it may not do. The zero value is ready
// to use.
type AuthenticatedDefaults struct{}

// basicUserResources are system:basic-user's resources, by API group.
var basicUserResources = map[string][]string{
	"authentication.k8s.io": {"selfsubjectreviews"},
	"authorization.k8s.io":  {"selfsubjectaccessreviews", "selfsubjectrulesreviews"},
}

// discoveryPaths are system:discovery's and system:public-info-viewer's
// paths; a trailing * matches any rest.
var discoveryPaths = []string{"/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
	"/healthz", "/livez", "/readyz"}

// Authorize implements Authorizer.
func (AuthenticatedDefaults) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	if !a.User.InGroup(AllAuthenticated) {
		return DecisionNoOpinion, "", nil
	}
	if a.ResourceRequest {
		if a.Verb == "create" && a.Subresource == "" && slices.Contains(basicUserResources[a.APIGroup], a.Resource) {
			return DecisionAllow, "", nil
		}
		return DecisionNoOpinion, "", nil
	}
	if a.Verb != "get" {
		return DecisionNoOpinion, "", nil
	}
	for _, p := range discoveryPaths {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(a.Path, prefix) || a.Path == p {
			return DecisionAllow, "", nil
		}
	}
	return DecisionNoOpinion, "", nil
}
