package apiserver

import (
	"context"
	"fmt"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/authn"
)

// The review resources are verbs, not objects: a POST asks a question
// (may this user do that? who am I?) and the answer comes back in the
// status of the object sent; nothing is stored.

// reviewFunc answers a review: it fills obj's status.
type reviewFunc func(ctx context.Context, obj runtime.Object) error

func reviewResources() []*Resource {
	create := []string{"create"}
	authz := func(kind, plural string, namespaced bool) *Resource {
		return &Resource{GVK: schema.GroupVersionKind{Group: "authorization.k8s.io", Version: "v1", Kind: kind}, Plural: plural, Namespaced: namespaced, Verbs: create}
	}
	return []*Resource{
		authz("LocalSubjectAccessReview", "localsubjectaccessreviews", true),
		authz("SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
		authz("SelfSubjectRulesReview", "selfsubjectrulesreviews", false),
		authz("SubjectAccessReview", "subjectaccessreviews", false),
		{GVK: schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "SelfSubjectReview"}, Plural: "selfsubjectreviews", Verbs: create},
		{GVK: schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenReview"}, Plural: "tokenreviews", Verbs: create},
	}
}

// review returns how to answer a review resource, or nil for others.
func (s *Server) review(r *Resource) reviewFunc {
	switch r.GVK.Kind {
	case "SelfSubjectAccessReview":
		return func(ctx context.Context, obj runtime.Object) error {
			rev := obj.(*authorizationv1.SelfSubjectAccessReview)
			u, _ := authn.UserFrom(ctx)
			rev.Status = s.decide(ctx, u, rev.Spec.ResourceAttributes, rev.Spec.NonResourceAttributes)
			return nil
		}
	case "SubjectAccessReview", "LocalSubjectAccessReview":
		return func(ctx context.Context, obj runtime.Object) error {
			var spec *authorizationv1.SubjectAccessReviewSpec
			var status *authorizationv1.SubjectAccessReviewStatus
			switch rev := obj.(type) {
			case *authorizationv1.SubjectAccessReview:
				spec, status = &rev.Spec, &rev.Status
			case *authorizationv1.LocalSubjectAccessReview:
				spec, status = &rev.Spec, &rev.Status
				if spec.ResourceAttributes == nil || spec.ResourceAttributes.Namespace != rev.Namespace {
					return apierrors.NewBadRequest(fmt.Sprintf("spec.resourceAttributes.namespace must match namespace: %v", rev.Namespace))
				}
			}
			if spec.User == "" && len(spec.Groups) == 0 {
				return apierrors.NewBadRequest("at least one of user or group must be specified")
			}
			u := &authn.User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
			*status = s.decide(ctx, u, spec.ResourceAttributes, spec.NonResourceAttributes)
			return nil
		}
	case "SelfSubjectRulesReview":
		return func(ctx context.Context, obj runtime.Object) error {
			rev := obj.(*authorizationv1.SelfSubjectRulesReview)
			u, _ := authn.UserFrom(ctx)
			if u.InGroup(authn.SystemPrivilegedGroup) {
				rev.Status.ResourceRules = []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
				rev.Status.NonResourceRules = []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}
				return nil
			}
			rev.Status.Incomplete = true
			rev.Status.EvaluationError = "only members of system:masters are authorized until RBAC is served"
			return nil
		}
	case "TokenReview":
		return func(ctx context.Context, obj runtime.Object) error {
			return s.reviewToken(ctx, obj.(*authenticationv1.TokenReview))
		}
	case "SelfSubjectReview":
		return func(ctx context.Context, obj runtime.Object) error {
			rev := obj.(*authenticationv1.SelfSubjectReview)
			if u, ok := authn.UserFrom(ctx); ok {
				rev.Status.UserInfo = authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
				if len(u.Extra) > 0 {
					rev.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
					for k, v := range u.Extra {
						rev.Status.UserInfo.Extra[k] = v
					}
				}
			}
			return nil
		}
	}
	return nil
}

// decide asks the authorizer about the attributes of a review.
func (s *Server) decide(ctx context.Context, u *authn.User, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	if s.cfg.Authorizer == nil {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "no authorizer configured"}
	}
	a := authn.Attributes{User: u}
	switch {
	case ra != nil:
		a.ResourceRequest = true
		a.Verb, a.APIGroup, a.APIVersion = ra.Verb, ra.Group, ra.Version
		a.Resource, a.Subresource, a.Namespace, a.Name = ra.Resource, ra.Subresource, ra.Namespace, ra.Name
	case nra != nil:
		a.Verb, a.Path = nra.Verb, nra.Path
	default:
		return authorizationv1.SubjectAccessReviewStatus{EvaluationError: "exactly one of nonResourceAttributes or resourceAttributes must be specified"}
	}
	d, reason, err := s.cfg.Authorizer.Authorize(ctx, a)
	st := authorizationv1.SubjectAccessReviewStatus{Allowed: d == authn.DecisionAllow, Denied: d == authn.DecisionDeny, Reason: reason}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}

// createReview answers a POST to a review resource.
func (c *call) createReview(fn reviewFunc) error {
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	obj, _, err := c.s.decodeBody(c.r, c.res, data, false)
	if err != nil {
		return err
	}
	if err := fn(c.ctx, obj); err != nil {
		return err
	}
	c.respond(http.StatusCreated, obj)
	return nil
}
