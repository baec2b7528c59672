package request_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"labctl/server/request"
)

func TestParse(t *testing.T) {
	type want struct {
		resource                                 bool
		verb, group, version, ns, res, sub, name string
		parts                                    []string
	}
	tests := []struct {
		method, url string
		want        want
	}{
		// Plain paths and discovery.
		{"GET", "/", want{verb: "get"}},
		{"GET", "/healthz", want{verb: "get"}},
		{"POST", "/healthz", want{verb: "post"}},
		{"HEAD", "/version", want{verb: "head"}},
		{"GET", "/api", want{verb: "get"}},
		{"GET", "/api/v1", want{verb: "get"}},
		{"GET", "/apis", want{verb: "get"}},
		{"GET", "/apis/apps", want{verb: "get"}},
		{"GET", "/apis/apps/v1", want{verb: "get"}},
		{"GET", "/openapi/v2", want{verb: "get"}},
		{"GET", "/other/v1/pods", want{verb: "get"}},

		// Collections, across namespaces and in one.
		{"GET", "/api/v1/pods", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/ns1/pods", want{true, "list", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
		{"GET", "/apis/apps/v1/namespaces/ns1/deployments", want{true, "list", "apps", "v1", "ns1", "deployments", "", "", []string{"deployments"}}},
		{"HEAD", "/api/v1/nodes", want{true, "list", "", "v1", "", "nodes", "", "", []string{"nodes"}}},
		{"POST", "/api/v1/namespaces/ns1/pods", want{true, "create", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
		{"DELETE", "/api/v1/namespaces/ns1/pods", want{true, "deletecollection", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
		{"PUT", "/api/v1/namespaces/ns1/pods", want{true, "update", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},

		// Watches: the query, and the old path form.
		{"GET", "/api/v1/namespaces/ns1/pods?watch=true", want{true, "watch", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=1&resourceVersion=10", want{true, "watch", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=", want{true, "watch", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=false", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=FALSE", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?watch=0", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/watch/pods", want{true, "watch", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/watch/namespaces/ns1/pods", want{true, "watch", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/watch/namespaces/ns1/pods/p1", want{true, "watch", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"GET", "/apis/apps/v1/watch/namespaces/ns1/deployments", want{true, "watch", "apps", "v1", "ns1", "deployments", "", "", []string{"deployments"}}},

		// A field selector on the name names the object.
		{"GET", "/api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dp1", want{true, "list", "", "v1", "ns1", "pods", "", "p1", []string{"pods"}}},
		{"GET", "/api/v1/namespaces/ns1/configmaps?watch=true&fieldSelector=metadata.name==cm1", want{true, "watch", "", "v1", "ns1", "configmaps", "", "cm1", []string{"configmaps"}}},
		{"GET", "/api/v1/pods?fieldSelector=metadata.name!%3Dp1", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?fieldSelector=metadata.name%3D..", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},
		{"GET", "/api/v1/pods?fieldSelector=((", want{true, "list", "", "v1", "", "pods", "", "", []string{"pods"}}},

		// Objects.
		{"GET", "/api/v1/namespaces/ns1/pods/p1", want{true, "get", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"PUT", "/api/v1/namespaces/ns1/pods/p1", want{true, "update", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"PATCH", "/api/v1/namespaces/ns1/pods/p1", want{true, "patch", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"DELETE", "/api/v1/namespaces/ns1/pods/p1", want{true, "delete", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"OPTIONS", "/api/v1/namespaces/ns1/pods/p1", want{true, "", "", "v1", "ns1", "pods", "", "p1", []string{"pods", "p1"}}},
		{"GET", "/api/v1/nodes/n1", want{true, "get", "", "v1", "", "nodes", "", "n1", []string{"nodes", "n1"}}},
		{"GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", want{true, "get", "rbac.authorization.k8s.io", "v1", "", "clusterroles", "", "admin", []string{"clusterroles", "admin"}}},

		// Subresources.
		{"GET", "/api/v1/namespaces/ns1/pods/p1/log", want{true, "get", "", "v1", "ns1", "pods", "log", "p1", []string{"pods", "p1", "log"}}},
		{"PUT", "/api/v1/namespaces/ns1/pods/p1/status", want{true, "update", "", "v1", "ns1", "pods", "status", "p1", []string{"pods", "p1", "status"}}},
		{"POST", "/api/v1/namespaces/ns1/pods/p1/exec", want{true, "create", "", "v1", "ns1", "pods", "exec", "p1", []string{"pods", "p1", "exec"}}},
		{"GET", "/apis/apps/v1/namespaces/ns1/deployments/d1/scale", want{true, "get", "apps", "v1", "ns1", "deployments", "scale", "d1", []string{"deployments", "d1", "scale"}}},
		{"GET", "/api/v1/namespaces/ns1/services/s1/proxy/a/b", want{true, "get", "", "v1", "ns1", "services", "proxy", "s1", []string{"services", "s1", "proxy", "a", "b"}}},
		{"GET", "/api/v1/proxy/namespaces/ns1/services/s1/a/b", want{true, "proxy", "", "v1", "ns1", "services", "", "s1", []string{"services", "s1", "a", "b"}}},

		// Namespaces themselves.
		{"GET", "/api/v1/namespaces", want{true, "list", "", "v1", "", "namespaces", "", "", []string{"namespaces"}}},
		{"GET", "/api/v1/namespaces/ns1", want{true, "get", "", "v1", "ns1", "namespaces", "", "ns1", []string{"namespaces", "ns1"}}},
		{"DELETE", "/api/v1/namespaces/ns1", want{true, "delete", "", "v1", "ns1", "namespaces", "", "ns1", []string{"namespaces", "ns1"}}},
		{"PUT", "/api/v1/namespaces/ns1/status", want{true, "update", "", "v1", "ns1", "namespaces", "status", "ns1", []string{"namespaces", "ns1", "status"}}},
		{"PUT", "/api/v1/namespaces/ns1/finalize", want{true, "update", "", "v1", "ns1", "namespaces", "finalize", "ns1", []string{"namespaces", "ns1", "finalize"}}},

		// Trailing slashes do not count.
		{"GET", "/api/v1/namespaces/ns1/pods/", want{true, "list", "", "v1", "ns1", "pods", "", "", []string{"pods"}}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			info, err := request.Parse(r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := want{info.IsResourceRequest, info.Verb, info.APIGroup, info.APIVersion, info.Namespace,
				info.Resource, info.Subresource, info.Name, info.Parts}
			if got.resource != tt.want.resource || got.verb != tt.want.verb || got.group != tt.want.group ||
				got.version != tt.want.version || got.ns != tt.want.ns || got.res != tt.want.res ||
				got.sub != tt.want.sub || got.name != tt.want.name || !slices.Equal(got.parts, tt.want.parts) {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, tt.want)
			}
			if info.Path != r.URL.Path {
				t.Errorf("Path %q, want %q", info.Path, r.URL.Path)
			}
			wantPrefix := ""
			if tt.want.resource {
				wantPrefix = strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
			}
			if info.APIPrefix != wantPrefix {
				t.Errorf("APIPrefix %q, want %q", info.APIPrefix, wantPrefix)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, url := range []string{"/api/v1/watch", "/apis/apps/v1/proxy/"} {
		t.Run(url, func(t *testing.T) {
			_, err := request.Parse(httptest.NewRequest(http.MethodGet, url, nil))
			if err == nil || !strings.Contains(err.Error(), "names no resource") {
				t.Errorf("Parse(%s) = %v, want an error saying it names no resource", url, err)
			}
		})
	}
}

func TestInfoContext(t *testing.T) {
	if _, ok := request.InfoFrom(context.Background()); ok {
		t.Error("InfoFrom an empty context reports an Info")
	}
	info := &request.Info{Path: "/healthz", Verb: "get"}
	got, ok := request.InfoFrom(request.WithInfo(context.Background(), info))
	if !ok || got != info {
		t.Errorf("InfoFrom(WithInfo(info)) = %v, %v; want info, true", got, ok)
	}
}
