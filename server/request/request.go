// Package request tells what an HTTP request to the API server asks for:
// which verb on which resource, or which plain path. Authorization decides
// on it and the API handlers route on it.
//
// Parse follows kube-apiserver's RequestInfoFactory: paths under /api
// (the core group) and /apis/<group> are resource requests, everything else
// (/healthz, /version, /api, /apis/apps, /openapi/v2, ...) is a
// non-resource request whose verb is the HTTP method in lower case.
//
//	/api/v1/namespaces                          namespaces
//	/api/v1/namespaces/x                        namespaces, name x
//	/api/v1/namespaces/x/status                 namespaces, name x, subresource status
//	/api/v1/namespaces/x/pods                   pods in namespace x
//	/api/v1/namespaces/x/pods/y/log             pods, name y, subresource log
//	/apis/apps/v1/deployments                   deployments in every namespace
//	/api/v1/watch/namespaces/x/pods             watch pods (the old watch paths)
//	/api/v1/proxy/nodes/n/anything              proxy nodes n (no subresource)
//
// The verb of a resource request comes from the method: POST create,
// GET and HEAD get, PUT update, PATCH patch, DELETE delete. A get without a
// name is a list, or a watch when the query says watch=true (any value but
// "false" and "0"); a delete without a name is a deletecollection. A list
// or watch whose field selector asks for exactly one metadata.name gets
// that name, so that authorization can limit it to the named object.
package request

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/fields"
)

// Info is what a request asks for.
type Info struct {
	// IsResourceRequest is true for requests about API resources, false for
	// plain paths such as /healthz or discovery.
	IsResourceRequest bool
	// Path is the URL path.
	Path string
	// Verb is the Kubernetes verb (get, list, watch, create, update,
	// patch, delete, deletecollection, proxy) of a resource request, and
	// the HTTP method in lower case (get, post, ...) of another request.
	// An unknown method of a resource request leaves it empty.
	Verb string
	// APIPrefix is "api" or "apis" for resource requests.
	APIPrefix string
	// APIGroup is the API group; "" for the core group.
	APIGroup string
	// APIVersion is the API version, such as v1.
	APIVersion string
	// Namespace is the namespace; "" for cluster-scoped requests and for
	// requests across all namespaces.
	Namespace string
	// Resource is the resource, such as pods (not the kind, Pod).
	Resource string
	// Subresource is the subresource, such as status or log.
	Subresource string
	// Name is the object's name, when the path or the field selector
	// names one.
	Name string
	// Parts are the path's segments from the resource on:
	// resource/name/subresource/...
	Parts []string
}

// Verbs of resource requests.
const (
	VerbGet              = "get"
	VerbList             = "list"
	VerbWatch            = "watch"
	VerbCreate           = "create"
	VerbUpdate           = "update"
	VerbPatch            = "patch"
	VerbDelete           = "delete"
	VerbDeleteCollection = "deletecollection"
	VerbProxy            = "proxy"
)

// Parse returns what r asks for. Its error says why a path under /api or
// /apis makes no sense (the returned Info then holds what was understood);
// any other request parses.
func Parse(r *http.Request) (*Info, error) {
	info := &Info{Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)

	// /api/<version>/<resource>... or /apis/<group>/<version>/<resource>...;
	// shorter paths are discovery, not resources.
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		info.APIPrefix, info.APIVersion, parts = parts[0], parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		info.APIPrefix, info.APIGroup, info.APIVersion, parts = parts[0], parts[1], parts[2], parts[3:]
	default:
		return info, nil
	}
	info.IsResourceRequest = true

	// Verbs in the path: /watch/... and /proxy/... (deprecated forms).
	if parts[0] == VerbWatch || parts[0] == VerbProxy {
		if len(parts) < 2 {
			return info, fmt.Errorf("path %q names no resource after %q", r.URL.Path, parts[0])
		}
		info.Verb, parts = parts[0], parts[1:]
	} else {
		info.Verb = methodVerb(r.Method)
	}

	// namespaces/<ns>/<resource>/... is <resource> in <ns>, except for the
	// namespace's own subresources: namespaces/<ns>/status is the
	// namespace <ns>'s status.
	if parts[0] == "namespaces" && len(parts) > 1 {
		info.Namespace = parts[1]
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	info.Parts = parts

	info.Resource = parts[0]
	if len(parts) > 1 {
		info.Name = parts[1]
	}
	if len(parts) > 2 && info.Verb != VerbProxy {
		info.Subresource = parts[2]
	}

	if info.Name == "" && info.Verb == VerbGet {
		info.Verb = VerbList
		q := r.URL.Query()
		if w, ok := q["watch"]; ok && len(w) > 0 && !strings.EqualFold(w[0], "false") && w[0] != "0" {
			info.Verb = VerbWatch
		}
		if sel, err := fields.ParseSelector(q.Get("fieldSelector")); err == nil {
			if name, ok := sel.RequiresExactMatch("metadata.name"); ok && len(path.IsValidPathSegmentName(name)) == 0 {
				info.Name = name
			}
		}
	}
	if info.Name == "" && info.Verb == VerbDelete {
		info.Verb = VerbDeleteCollection
	}
	return info, nil
}

// methodVerb returns the verb of a resource request with an HTTP method,
// before list, watch and deletecollection are told apart.
func methodVerb(method string) string {
	switch method {
	case http.MethodPost:
		return VerbCreate
	case http.MethodGet, http.MethodHead:
		return VerbGet
	case http.MethodPut:
		return VerbUpdate
	case http.MethodPatch:
		return VerbPatch
	case http.MethodDelete:
		return VerbDelete
	}
	return ""
}

// splitPath returns the segments of a URL path, without empty ones at
// either end.
func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

type infoKey struct{}

// WithInfo returns a copy of ctx that carries info.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the Info that ctx carries, if any.
func InfoFrom(ctx context.Context) (*Info, bool) {
	info, ok := ctx.Value(infoKey{}).(*Info)
	return info, ok && info != nil
}
