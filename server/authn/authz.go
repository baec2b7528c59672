package authn

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"labctl/server/request"
)

// Decision is what an Authorizer says about a request.
type Decision int

// Decisions, as kube-apiserver's authorizers give them. Only DecisionAllow
// lets a request through; the zero Decision denies.
const (
	// DecisionDeny refuses the request, whatever other authorizers say.
	DecisionDeny Decision = iota
	// DecisionAllow lets the request through.
	DecisionAllow
	// DecisionNoOpinion leaves the request to other authorizers; when
	// none allows it, it is refused.
	DecisionNoOpinion
)

func (d Decision) String() string {
	switch d {
	case DecisionDeny:
		return "deny"
	case DecisionAllow:
		return "allow"
	case DecisionNoOpinion:
		return "no opinion"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Attributes are what an Authorizer decides on: who asks, and for which
// verb on which resource (ResourceRequest) or which plain path.
type Attributes struct {
	// User is who asks.
	User *User
	// Verb is the Kubernetes verb (get, list, watch, create, update,
	// patch, delete, deletecollection, ...) of a resource request, or the
	// HTTP method in lower case for a path.
	Verb string
	// ResourceRequest tells a request for an API resource from one for a
	// plain path such as /healthz or discovery.
	ResourceRequest bool
	// APIGroup is the resource's API group; "" for the core group.
	APIGroup string
	// APIVersion is the resource's API version.
	APIVersion string
	// Resource is the resource, such as pods.
	Resource string
	// Subresource is the subresource, such as status or log.
	Subresource string
	// Namespace is the namespace; "" for cluster-scoped requests and for
	// those across all namespaces.
	Namespace string
	// Name is the object's name, when the request names one.
	Name string
	// Path is the URL path; what is decided on for a plain path.
	Path string
}

// AttributesFrom returns the Attributes of the request info describes,
// sent by u.
func AttributesFrom(u *User, info *request.Info) Attributes {
	return Attributes{
		User:            u,
		Verb:            info.Verb,
		ResourceRequest: info.IsResourceRequest,
		APIGroup:        info.APIGroup,
		APIVersion:      info.APIVersion,
		Resource:        info.Resource,
		Subresource:     info.Subresource,
		Namespace:       info.Namespace,
		Name:            info.Name,
		Path:            info.Path,
	}
}

// Authorizer decides whether a user may do what a request asks. The reason
// is for the user and the logs; it is added to the 403 message. An error
// means the authorizer could not decide.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (d Decision, reason string, err error)
}

// AuthorizerFunc is a function that is an Authorizer.
type AuthorizerFunc func(ctx context.Context, a Attributes) (Decision, string, error)

// Authorize calls f(ctx, a).
func (f AuthorizerFunc) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	return f(ctx, a)
}

// Masters allows everything to members of system:masters and has no
// opinion on anyone else, as kube-apiserver's privileged-group authorizer.
// The zero Masters is ready to use.
type Masters struct{}

// Authorize implements Authorizer.
func (Masters) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	if a.User.InGroup(SystemPrivilegedGroup) {
		return DecisionAllow, "", nil
	}
	return DecisionNoOpinion, "", nil
}

// AuthorizerUnion asks each authorizer in turn; the first that allows or denies
// decides, as kube-apiserver chains its authorizers. If none has an
// opinion, it has none either.
type AuthorizerUnion []Authorizer

// Authorize implements Authorizer.
func (u AuthorizerUnion) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	var reasons []string
	for _, az := range u {
		d, reason, err := az.Authorize(ctx, a)
		if err != nil {
			return DecisionNoOpinion, reason, err
		}
		if d != DecisionNoOpinion {
			return d, reason, nil
		}
		if reason != "" {
			reasons = append(reasons, reason)
		}
	}
	return DecisionNoOpinion, strings.Join(reasons, "; "), nil
}

// Users allows everything to the named users and has no opinion on
// others: labctl's own components (controllers, scheduler) until RBAC
// gives them upstream's bootstrap roles.
type Users []string

// Authorize implements Authorizer.
func (us Users) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	if a.User != nil && slices.Contains(us, a.User.Name) {
		return DecisionAllow, "", nil
	}
	return DecisionNoOpinion, "", nil
}
