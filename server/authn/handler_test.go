package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labctl/server/authn"
	"labctl/server/request"
)

// byHeader authenticates the user named in the X-Test-User header, in the
// groups of X-Test-Groups, and fails on X-Test-Fail.
func byHeader(r *http.Request) (*authn.User, bool, error) {
	if r.Header.Get("X-Test-Fail") != "" {
		return nil, false, errors.New("credentials expired")
	}
	name := r.Header.Get("X-Test-User")
	if name == "" {
		return nil, false, nil
	}
	var groups []string
	if g := r.Header.Get("X-Test-Groups"); g != "" {
		groups = strings.Split(g, ",")
	}
	return &authn.User{Name: name, Groups: groups}, true, nil
}

// seen is what the protected handler saw.
type seen struct {
	user *authn.User
	info *request.Info
}

const unauthorizedBody = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}` + "\n"

func TestHandler(t *testing.T) {
	type req struct {
		method, path, user, groups string
		fail                       bool
	}
	tests := []struct {
		name       string
		req        req
		wantCode   int
		wantUser   string         // user the protected handler saw, if reached
		wantStatus *metav1.Status // body when refused
		wantBody   string         // exact body when set
	}{{
		name:     "anonymous on a health path",
		req:      req{method: "GET", path: "/healthz"},
		wantCode: 200, wantUser: "system:anonymous",
	}, {
		name:     "anonymous on /version",
		req:      req{method: "GET", path: "/version"},
		wantCode: 200, wantUser: "system:anonymous",
	}, {
		name:     "anonymous POST on a health path is the routes' business",
		req:      req{method: "POST", path: "/livez"},
		wantCode: 200, wantUser: "system:anonymous",
	}, {
		name:     "user without rights on a health path",
		req:      req{method: "GET", path: "/readyz", user: "bob"},
		wantCode: 200, wantUser: "bob",
	}, {
		name:     "anonymous elsewhere",
		req:      req{method: "GET", path: "/api/v1/namespaces/default/pods"},
		wantCode: 401, wantBody: unauthorizedBody,
	}, {
		name:     "anonymous on a health subpath",
		req:      req{method: "GET", path: "/healthz/etcd"},
		wantCode: 401, wantBody: unauthorizedBody,
	}, {
		name:     "anonymous on an unknown path",
		req:      req{method: "GET", path: "/nothing"},
		wantCode: 401, wantBody: unauthorizedBody,
	}, {
		name:     "failed credentials on a health path",
		req:      req{method: "GET", path: "/healthz", fail: true},
		wantCode: 401, wantBody: unauthorizedBody,
	}, {
		name:     "master on a resource",
		req:      req{method: "DELETE", path: "/api/v1/nodes/n1", user: "system:admin", groups: "system:masters,system:authenticated"},
		wantCode: 200, wantUser: "system:admin",
	}, {
		name:     "master on an unknown path",
		req:      req{method: "GET", path: "/nothing", user: "system:admin", groups: "system:masters"},
		wantCode: 200, wantUser: "system:admin",
	}, {
		name:     "non-master on a namespaced object",
		req:      req{method: "GET", path: "/api/v1/namespaces/default/pods/p1", user: "bob", groups: "system:authenticated"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `pods "p1" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"`,
			Details: &metav1.StatusDetails{Name: "p1", Kind: "pods"},
		},
	}, {
		name:     "non-master on a subresource",
		req:      req{method: "GET", path: "/api/v1/namespaces/default/pods/p1/log", user: "bob"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `pods "p1" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"`,
			Details: &metav1.StatusDetails{Name: "p1", Kind: "pods"},
		},
	}, {
		name:     "non-master on a grouped collection across namespaces",
		req:      req{method: "GET", path: "/apis/apps/v1/deployments?watch=true", user: "system:kube-proxy"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `deployments.apps is forbidden: User "system:kube-proxy" cannot watch resource "deployments" in API group "apps" at the cluster scope`,
			Details: &metav1.StatusDetails{Group: "apps", Kind: "deployments"},
		},
	}, {
		name:     "non-master creating in a namespace",
		req:      req{method: "POST", path: "/apis/apps/v1/namespaces/lab/deployments", user: "bob"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `deployments.apps is forbidden: User "bob" cannot create resource "deployments" in API group "apps" in the namespace "lab"`,
			Details: &metav1.StatusDetails{Group: "apps", Kind: "deployments"},
		},
	}, {
		name:     "non-master on a path",
		req:      req{method: "GET", path: "/apis", user: "bob"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `forbidden: User "bob" cannot get path "/apis"`,
			Details: &metav1.StatusDetails{},
		},
	}, {
		name:     "authorizer reason",
		req:      req{method: "GET", path: "/api/v1/nodes", user: "carol"},
		wantCode: 403,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "Forbidden", Code: 403,
			Message: `nodes is forbidden: User "carol" cannot list resource "nodes" in API group "" at the cluster scope: carol is on holiday`,
			Details: &metav1.StatusDetails{Kind: "nodes"},
		},
	}, {
		name:     "authorizer error",
		req:      req{method: "GET", path: "/api/v1/nodes", user: "dave"},
		wantCode: 500,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "InternalError", Code: 500,
			Message: `Internal error occurred: authorize the request: policy store down`,
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Message: "authorize the request: policy store down"}}},
		},
	}, {
		name:     "path that makes no sense",
		req:      req{method: "GET", path: "/api/v1/watch", user: "system:admin", groups: "system:masters"},
		wantCode: 400,
		wantStatus: &metav1.Status{
			Status: "Failure", Reason: "BadRequest", Code: 400,
			Message: `path "/api/v1/watch" names no resource after "watch"`,
		},
	}}

	authz := authn.AuthorizerFunc(func(ctx context.Context, a authn.Attributes) (authn.Decision, string, error) {
		switch a.User.Name {
		case "carol":
			return authn.DecisionDeny, "carol is on holiday", nil
		case "dave":
			return authn.DecisionNoOpinion, "", errors.New("policy store down")
		}
		if u, ok := authn.UserFrom(ctx); !ok || u != a.User {
			t.Errorf("authorizer context carries user %v, want %v", u, a.User)
		}
		return authn.Masters{}.Authorize(ctx, a)
	})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *seen
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = &seen{}
				got.user, _ = authn.UserFrom(r.Context())
				got.info, _ = request.InfoFrom(r.Context())
			})
			var logs bytes.Buffer
			h, err := authn.NewHandler(authn.Config{
				Authenticator: authn.AuthenticatorFunc(byHeader),
				Authorizer:    authz,
				Logger:        slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}, next)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(tt.req.method, tt.req.path, nil)
			if tt.req.user != "" {
				r.Header.Set("X-Test-User", tt.req.user)
				r.Header.Set("X-Test-Groups", tt.req.groups)
			}
			if tt.req.fail {
				r.Header.Set("X-Test-Fail", "yes")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.req.method, tt.req.path, rec.Code, rec.Body, tt.wantCode)
			}
			if tt.wantUser != "" {
				switch {
				case got == nil:
					t.Fatal("the protected handler was not called")
				case got.user == nil || got.user.Name != tt.wantUser:
					t.Errorf("protected handler saw user %+v, want %q", got.user, tt.wantUser)
				case got.info == nil || got.info.Path != r.URL.Path:
					t.Errorf("protected handler saw request info %+v, want one for %s", got.info, r.URL.Path)
				}
				if tt.wantUser == "system:anonymous" && !slices.Equal(got.user.Groups, []string{"system:unauthenticated"}) {
					t.Errorf("anonymous user in groups %q, want system:unauthenticated", got.user.Groups)
				}
				return
			}
			if got != nil {
				t.Error("the protected handler was called for a refused request")
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body\n%s\nwant\n%s", rec.Body, tt.wantBody)
			}
			var st metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatalf("body is not a Status: %v\n%s", err, rec.Body)
			}
			if st.Kind != "Status" || st.APIVersion != "v1" {
				t.Errorf("kind %q apiVersion %q, want Status v1", st.Kind, st.APIVersion)
			}
			if tt.wantStatus != nil {
				want := *tt.wantStatus
				want.TypeMeta = st.TypeMeta
				gotJSON, _ := json.Marshal(st)
				wantJSON, _ := json.Marshal(want)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("status\n%s\nwant\n%s", gotJSON, wantJSON)
				}
			}
			if tt.wantCode == 500 && !strings.Contains(logs.String(), "policy store down") {
				t.Errorf("authorizer error not logged:\n%s", logs.String())
			}
		})
	}
}

func TestHandlerPublicPaths(t *testing.T) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tt := range []struct {
		name   string
		public []string
		path   string
		want   int
	}{
		{"default", nil, "/livez", 200},
		{"none", []string{}, "/livez", 401},
		{"own list", []string{"/ping"}, "/ping", 200},
		{"own list replaces the default", []string{"/ping"}, "/healthz", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := authn.NewHandler(authn.Config{Authenticator: authn.Union{}, Authorizer: authn.Masters{}, PublicPaths: tt.public}, next)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, rec.Code, tt.want)
			}
		})
	}
}

func TestNewHandlerErrors(t *testing.T) {
	next := http.NotFoundHandler()
	for _, tt := range []struct {
		cfg  authn.Config
		next http.Handler
		want string
	}{
		{authn.Config{Authorizer: authn.Masters{}}, next, "no authenticator"},
		{authn.Config{Authenticator: authn.X509{}}, next, "no authorizer"},
		{authn.Config{Authenticator: authn.X509{}, Authorizer: authn.Masters{}}, nil, "no handler"},
	} {
		if _, err := authn.NewHandler(tt.cfg, tt.next); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewHandler = %v, want an error containing %q", err, tt.want)
		}
	}
}
