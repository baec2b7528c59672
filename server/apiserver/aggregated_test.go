package apiserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"labctl/server/apiserver"
)

// The Accept headers clients send for discovery.
const (
	acceptV2      = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	acceptV2Beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
	acceptPB      = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	// client-go 1.35 and later (and this module's), kubectl 1.35+.
	acceptClientGo = acceptV2 + ",application/json"
	// client-go 1.30 to 1.34: kubectl 1.30-1.34.
	acceptClientGo130 = acceptV2 + "," + acceptV2Beta1 + ",application/json"
	// client-go 1.26 to 1.29: kubectl 1.27.
	acceptKubectl127 = acceptV2Beta1 + ",application/json"
)

// startAPI serves a new API on a test HTTP server, like start, and also
// returns the Server, so that a test can add resources while it runs.
func startAPI(t testing.TB) (*apiserver.Server, *httptest.Server) {
	t.Helper()
	return serve(t, apiserver.Config{})
}

// exchange is one request a client made and what came back.
type exchange struct {
	path, accept, contentType string
	code                      int
}

// recorder keeps the requests that went through a rest.Config's
// transport.
type recorder struct {
	mu   sync.Mutex
	seen []exchange
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// config returns a client config for srv whose requests rec records.
func (rec *recorder) config(srv *httptest.Server) *rest.Config {
	return &rest.Config{Host: srv.URL, QPS: -1, WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil {
				rec.mu.Lock()
				rec.seen = append(rec.seen, exchange{r.URL.Path, r.Header.Get("Accept"), resp.Header.Get("Content-Type"), resp.StatusCode})
				rec.mu.Unlock()
			}
			return resp, err
		})
	}}
}

func (rec *recorder) take() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.seen
	rec.seen = nil
	return out
}

// discover runs client-go's full discovery (what kubectl api-resources
// does) and returns the groups and each group-version's resources.
func discover(t *testing.T, dc *discovery.DiscoveryClient) ([]*metav1.APIGroup, map[string]*metav1.APIResourceList) {
	t.Helper()
	groups, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	byGV := map[string]*metav1.APIResourceList{}
	for _, l := range lists {
		byGV[l.GroupVersion] = l
	}
	return groups, byGV
}

// TestAggregatedDiscoveryClientGo runs client-go's discovery client twice:
// forced to legacy discovery, and as it comes, preferring aggregated
// discovery. The second must read only /api and /apis, get the aggregated
// document (by its Content-Type, which is how client-go tells), and parse
// from it what the first parsed from each group-version.
func TestAggregatedDiscoveryClientGo(t *testing.T) {
	_, srv := startAPI(t)
	var rec recorder
	cfg := rec.config(srv)

	legacy, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	legacy.UseLegacyDiscovery = true
	wantGroups, wantLists := discover(t, legacy)
	perGV := 0
	for _, ex := range rec.take() {
		if ex.path != "/api" && ex.path != "/apis" {
			perGV++
		}
		if ex.contentType != "application/json" || ex.code != http.StatusOK {
			t.Errorf("legacy discovery: GET %s (Accept %q) = %d %q, want 200 application/json", ex.path, ex.accept, ex.code, ex.contentType)
		}
	}
	if perGV < 15 {
		t.Fatalf("legacy discovery read %d group-versions, want every one (about twenty)", perGV)
	}

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gotGroups, gotLists := discover(t, dc)
	seen := rec.take()
	var paths []string
	for _, ex := range seen {
		paths = append(paths, ex.path)
		if ex.accept != acceptClientGo {
			t.Errorf("client-go sent Accept %q for %s; this test expects %q", ex.accept, ex.path, acceptClientGo)
		}
		if ex.contentType != acceptV2 || ex.code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200 %q", ex.path, ex.code, ex.contentType, acceptV2)
		}
	}
	sort.Strings(paths)
	if !reflect.DeepEqual(paths, []string{"/api", "/apis"}) {
		t.Fatalf("aggregated discovery requested %v, want only /api and /apis (no /apis/<group>/<version>)", paths)
	}

	// Groups: the same, in the same order, preferred versions included.
	norm := func(gs []*metav1.APIGroup) []metav1.APIGroup {
		var out []metav1.APIGroup
		for _, g := range gs {
			c := *g
			c.TypeMeta, c.ServerAddressByClientCIDRs = metav1.TypeMeta{}, nil
			out = append(out, c)
		}
		return out
	}
	if g, w := norm(gotGroups), norm(wantGroups); !reflect.DeepEqual(g, w) {
		t.Errorf("groups from aggregated discovery differ from legacy:\n got %+v\nwant %+v", g, w)
	}
	// Resources: what legacy lists, less what the aggregated form does
	// not carry (storageVersionHash) and with the singular name client-go
	// copies from the resource into its subresources.
	if len(gotLists) != len(wantLists) {
		t.Errorf("aggregated discovery has %d group-versions, legacy %d", len(gotLists), len(wantLists))
	}
	for gv, want := range wantLists {
		got, ok := gotLists[gv]
		if !ok {
			t.Errorf("aggregated discovery lacks %s", gv)
			continue
		}
		byName := func(l *metav1.APIResourceList, legacy bool) map[string]metav1.APIResource {
			out := map[string]metav1.APIResource{}
			for _, r := range l.APIResources {
				if legacy {
					r.StorageVersionHash = ""
				} else if strings.Contains(r.Name, "/") {
					r.SingularName = ""
				}
				out[r.Name] = r
			}
			return out
		}
		if g, w := byName(got, false), byName(want, true); !reflect.DeepEqual(g, w) {
			t.Errorf("%s from aggregated discovery differs from legacy:\n got %+v\nwant %+v", gv, g, w)
		}
	}

	// Spot checks of what kubectl relies on.
	find := func(gv, name string) metav1.APIResource {
		for _, r := range gotLists[gv].APIResources {
			if r.Name == name {
				return r
			}
		}
		t.Errorf("aggregated discovery lacks %s in %s", name, gv)
		return metav1.APIResource{}
	}
	if r := find("v1", "pods"); !r.Namespaced || r.Kind != "Pod" || r.SingularName != "pod" || !reflect.DeepEqual(r.ShortNames, []string{"po"}) || !reflect.DeepEqual(r.Categories, []string{"all"}) {
		t.Errorf("pods: %+v", r)
	}
	if r := find("v1", "namespaces"); r.Namespaced || r.Kind != "Namespace" {
		t.Errorf("namespaces: %+v", r)
	}
	for name, want := range map[string]string{
		"v1/pods/status": "/Pod get,patch,update", "v1/pods/binding": "/Binding create",
		"v1/pods/eviction": "policy/v1/Eviction create", "v1/pods/log": "/Pod get",
		"v1/pods/exec": "/PodExecOptions create,get", "v1/pods/attach": "/PodAttachOptions create,get",
		"v1/pods/portforward": "/PodPortForwardOptions create,get", "v1/nodes/proxy": "/NodeProxyOptions create,delete,get,patch,update",
		"v1/serviceaccounts/token":  "authentication.k8s.io/v1/TokenRequest create",
		"apps/v1/deployments/scale": "autoscaling/v1/Scale get,patch,update",
	} {
		i := strings.LastIndex(name, "/")
		j := strings.LastIndex(name[:i], "/")
		r := find(name[:j], name[j+1:])
		gv := ""
		if r.Group != "" || r.Version != "" {
			gv = schema.GroupVersion{Group: r.Group, Version: r.Version}.String()
		}
		if got := gv + "/" + r.Kind + " " + strings.Join(r.Verbs, ","); got != want {
			t.Errorf("%s: kind and verbs %q, want %q", name, got, want)
		}
	}
	preferred, err := dc.ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	// client-go takes a group's first version as preferred: the HPA must
	// come from autoscaling/v2 alone.
	var hpa []string
	for _, l := range preferred {
		for _, r := range l.APIResources {
			if r.Name == "horizontalpodautoscalers" {
				hpa = append(hpa, l.GroupVersion)
			}
		}
	}
	if !reflect.DeepEqual(hpa, []string{"autoscaling/v2"}) {
		t.Errorf("preferred horizontalpodautoscalers from %v, want [autoscaling/v2]", hpa)
	}
}

// get sends GET path with accept (and If-None-Match when etag is set).
func get(t *testing.T, srv *httptest.Server, path, accept, etag string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decodeV2(t *testing.T, body []byte) *apidiscoveryv2.APIGroupDiscoveryList {
	t.Helper()
	var l apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if l.APIVersion != "apidiscovery.k8s.io/v2" || l.Kind != "APIGroupDiscoveryList" {
		t.Fatalf("want an apidiscovery.k8s.io/v2 APIGroupDiscoveryList, got %s %s", l.APIVersion, l.Kind)
	}
	return &l
}

// TestAggregatedDiscoveryNegotiation sends the Accept headers of each
// kubectl generation, and others, to /api and /apis, and checks which
// answer comes back: aggregated (in which version and format) or legacy,
// which must stay what it was.
func TestAggregatedDiscoveryNegotiation(t *testing.T) {
	_, srv := startAPI(t)
	const legacy = "application/json"
	for _, tc := range []struct{ accept, want string }{
		{"", legacy},
		{"application/json", legacy},
		{"*/*", legacy},
		{"application/json, */*", legacy},
		{acceptClientGo, acceptV2},
		{acceptClientGo130, acceptV2},
		{acceptKubectl127, acceptV2Beta1},
		{acceptV2 + ";profile=nopeer," + acceptClientGo, acceptV2},
		// Upstream passes over clauses without g/v/as on these
		// endpoints: legacy first still gets the aggregated form.
		{"application/json," + acceptV2Beta1, acceptV2Beta1},
		// q-values order the clauses; q=0 is "not acceptable".
		{acceptV2Beta1 + ";q=0.5," + acceptV2 + ";q=0.9,application/json;q=0.1", acceptV2},
		{acceptV2 + ";q=0,application/json", legacy},
		{acceptPB + ",application/json", acceptPB},
		{"application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", "application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"},
		{"*/*;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", acceptV2},
		{"application/*;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", acceptV2Beta1},
		// Not aggregated discovery as served here.
		{"application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", legacy},
		{"application/json;g=apidiscovery.example.com;v=v2;as=APIGroupDiscoveryList", legacy},
		{"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscovery", legacy},
		{"text/html;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", legacy},
		{"application/json;g=meta.k8s.io;v=v1;as=Table," + acceptV2, acceptV2},
	} {
		for _, path := range []string{"/api", "/apis"} {
			resp, body := get(t, srv, path, tc.accept, "")
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != http.StatusOK || ct != tc.want {
				t.Errorf("GET %s with Accept %q: %d %q, want 200 %q", path, tc.accept, resp.StatusCode, ct, tc.want)
				continue
			}
			if tc.want == legacy {
				// Legacy discovery as before: no ETag, the legacy kinds.
				var tm metav1.TypeMeta
				_ = json.Unmarshal(body, &tm)
				if want := map[string]string{"/api": "APIVersions", "/apis": "APIGroupList"}[path]; tm.Kind != want || resp.Header.Get("ETag") != "" {
					t.Errorf("GET %s with Accept %q: kind %q ETag %q, want legacy %s without ETag", path, tc.accept, tm.Kind, resp.Header.Get("ETag"), want)
				}
				continue
			}
			if resp.Header.Get("Vary") != "Accept" || resp.Header.Get("ETag") == "" {
				t.Errorf("GET %s with Accept %q: Vary %q ETag %q", path, tc.accept, resp.Header.Get("Vary"), resp.Header.Get("ETag"))
			}
		}
	}
}

// TestAggregatedDiscoveryDocument checks the document itself: the core
// group alone at /api, the named groups at /apis, versions in preference
// order and Current, resources with scope, responseKind, verbs, short
// names, categories and subresources; the same content in v2beta1 and
// protobuf.
func TestAggregatedDiscoveryDocument(t *testing.T) {
	_, srv := startAPI(t)
	_, body := get(t, srv, "/api", acceptV2, "")
	core := decodeV2(t, body)
	if len(core.Items) != 1 || core.Items[0].Name != "" || len(core.Items[0].Versions) != 1 || core.Items[0].Versions[0].Version != "v1" {
		t.Fatalf("/api: want the core group alone with v1, got %s", body)
	}
	_, body = get(t, srv, "/apis", acceptV2, "")
	apis := decodeV2(t, body)
	var names []string
	groups := map[string]apidiscoveryv2.APIGroupDiscovery{}
	for _, g := range apis.Items {
		names = append(names, g.Name)
		groups[g.Name] = g
		for _, v := range g.Versions {
			if v.Freshness != apidiscoveryv2.DiscoveryFreshnessCurrent || len(v.Resources) == 0 {
				t.Errorf("%s/%s: freshness %q with %d resources", g.Name, v.Version, v.Freshness, len(v.Resources))
			}
		}
	}
	// The order of legacy /apis.
	_, legacyBody := get(t, srv, "/apis", "application/json", "")
	var legacy metav1.APIGroupList
	if err := json.Unmarshal(legacyBody, &legacy); err != nil {
		t.Fatal(err)
	}
	var legacyNames []string
	for _, g := range legacy.Groups {
		legacyNames = append(legacyNames, g.Name)
	}
	if !reflect.DeepEqual(names, legacyNames) {
		t.Errorf("/apis groups %v, legacy order %v", names, legacyNames)
	}
	if groups[""].Name != "" || len(groups[""].Versions) != 0 {
		t.Errorf("/apis lists the core group")
	}
	var autoscaling []string
	for _, v := range groups["autoscaling"].Versions {
		autoscaling = append(autoscaling, v.Version)
	}
	if !reflect.DeepEqual(autoscaling, []string{"v2", "v1"}) {
		t.Errorf("autoscaling versions %v, want [v2 v1] (preferred first)", autoscaling)
	}
	var deploy *apidiscoveryv2.APIResourceDiscovery
	for i, r := range groups["apps"].Versions[0].Resources {
		if r.Resource == "deployments" {
			deploy = &groups["apps"].Versions[0].Resources[i]
		}
	}
	want := apidiscoveryv2.APIResourceDiscovery{
		Resource: "deployments", SingularResource: "deployment", Scope: apidiscoveryv2.ScopeNamespace,
		ResponseKind: &metav1.GroupVersionKind{Kind: "Deployment"},
		Verbs:        []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
		ShortNames:   []string{"deploy"}, Categories: []string{"all"},
		Subresources: []apidiscoveryv2.APISubresourceDiscovery{
			{Subresource: "scale", ResponseKind: &metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, Verbs: []string{"get", "patch", "update"}},
			{Subresource: "status", ResponseKind: &metav1.GroupVersionKind{Kind: "Deployment"}, Verbs: []string{"get", "patch", "update"}},
		},
	}
	if deploy == nil || !reflect.DeepEqual(*deploy, want) {
		t.Errorf("apps/v1 deployments:\n got %+v\nwant %+v", deploy, want)
	}
	for _, r := range groups["rbac.authorization.k8s.io"].Versions[0].Resources {
		if r.Resource == "clusterroles" && r.Scope != apidiscoveryv2.ScopeCluster {
			t.Errorf("clusterroles: scope %q", r.Scope)
		}
	}

	// v2beta1: the same content under the older apiVersion.
	resp, beta := get(t, srv, "/apis", acceptKubectl127, "")
	var b apidiscoveryv2beta1.APIGroupDiscoveryList
	if err := json.Unmarshal(beta, &b); err != nil || b.APIVersion != "apidiscovery.k8s.io/v2beta1" {
		t.Fatalf("v2beta1: %v %s", err, beta)
	}
	if got := bytes.Replace(beta, []byte(`"apiVersion":"apidiscovery.k8s.io/v2beta1"`), []byte(`"apiVersion":"apidiscovery.k8s.io/v2"`), 1); !bytes.Equal(got, body) {
		t.Errorf("the v2beta1 document is not the v2 one:\n%s\n%s", beta, body)
	}
	etag := resp.Header.Get("ETag")

	// Protobuf: decodes to the v2 document, with the same ETag.
	resp, pb := get(t, srv, "/apis", acceptPB, "")
	codecs := serializer.NewCodecFactory(discoveryScheme(t))
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), "application/vnd.kubernetes.protobuf")
	obj, _, err := codecs.DecoderToVersion(info.Serializer, apidiscoveryv2.SchemeGroupVersion).Decode(pb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromPB := obj.(*apidiscoveryv2.APIGroupDiscoveryList)
	fromPB.TypeMeta, apis.TypeMeta = metav1.TypeMeta{}, metav1.TypeMeta{}
	if !reflect.DeepEqual(fromPB, apis) {
		t.Errorf("the protobuf document differs from the JSON one")
	}
	if resp.Header.Get("ETag") != etag {
		t.Errorf("ETag: protobuf %q, v2beta1 %q: want the same for the same content", resp.Header.Get("ETag"), etag)
	}
}

func discoveryScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := apidiscoveryv2.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAggregatedDiscoveryETag: an unchanged document is 304 Not Modified
// to a client that sends its ETag back; a resource added while the server
// runs changes the document and its ETag, and clients see it at once.
func TestAggregatedDiscoveryETag(t *testing.T) {
	api, srv := startAPI(t)
	resp, body := get(t, srv, "/apis", acceptClientGo, "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("first GET: %d ETag %q", resp.StatusCode, etag)
	}
	if resp.Header.Get("Vary") != "Accept" || resp.Header.Get("Cache-Control") != "public" {
		t.Errorf("Vary %q Cache-Control %q, want Accept and public", resp.Header.Get("Vary"), resp.Header.Get("Cache-Control"))
	}
	resp, again := get(t, srv, "/apis", acceptClientGo, "")
	if resp.Header.Get("ETag") != etag || !bytes.Equal(again, body) {
		t.Errorf("the same document twice: ETag %q then %q", etag, resp.Header.Get("ETag"))
	}
	resp, empty := get(t, srv, "/apis", acceptClientGo, etag)
	if resp.StatusCode != http.StatusNotModified || len(empty) != 0 || resp.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match %s: %d with %d bytes, ETag %q; want 304 without a body", etag, resp.StatusCode, len(empty), resp.Header.Get("ETag"))
	}
	if resp, _ := get(t, srv, "/apis", acceptClientGo, `"stale"`); resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another ETag: %d, want 200", resp.StatusCode)
	}
	// /api has an ETag of its own.
	resp, _ = get(t, srv, "/api", acceptClientGo, "")
	if coreTag := resp.Header.Get("ETag"); coreTag == etag || coreTag == "" {
		t.Errorf("/api ETag %q, /apis %q", coreTag, etag)
	} else if resp, _ := get(t, srv, "/api", acceptClientGo, coreTag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("/api If-None-Match: %d, want 304", resp.StatusCode)
	}
	// Legacy discovery knows nothing of ETags.
	if resp, _ := get(t, srv, "/apis", "application/json", etag); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != "" {
		t.Errorf("legacy /apis with If-None-Match: %d ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}

	// A new group while the server runs.
	if err := api.Add(&apiserver.Resource{GVK: schema.GroupVersionKind{Group: "node.k8s.io", Version: "v1", Kind: "RuntimeClass"}, Plural: "runtimeclasses"}); err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, srv, "/apis", acceptClientGo, etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Fatalf("after adding runtimeclasses: %d ETag %q (was %q)", resp.StatusCode, resp.Header.Get("ETag"), etag)
	}
	doc := decodeV2(t, body)
	last := doc.Items[len(doc.Items)-1]
	if last.Name != "node.k8s.io" || last.Versions[0].Resources[0].Resource != "runtimeclasses" || last.Versions[0].Resources[0].Scope != apidiscoveryv2.ScopeCluster {
		t.Errorf("the new group: %+v", last)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := dc.ServerResourcesForGroupVersion("node.k8s.io/v1"); err != nil || len(l.APIResources) != 1 || l.APIResources[0].Kind != "RuntimeClass" {
		t.Errorf("client-go after the add: %+v %v", l, err)
	}
}

// TestAggregatedDiscoveryConcurrentAdds serves the document while
// resources are added (run with -race): every answer must be a whole
// document, and the last must hold every resource.
func TestAggregatedDiscoveryConcurrentAdds(t *testing.T) {
	api, srv := startAPI(t)
	kinds := []schema.GroupVersionKind{
		{Group: "node.k8s.io", Version: "v1", Kind: "RuntimeClass"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "CSIDriver"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "CSINode"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "VolumeAttachment"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"},
		{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Kind: "FlowSchema"},
		{Group: "flowcontrol.apiserver.k8s.io", Version: "v1", Kind: "PriorityLevelConfiguration"},
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := srv.Client().Do(mustRequest(srv.URL+"/apis", acceptClientGo))
				if err != nil {
					errs <- err
					return
				}
				var l apidiscoveryv2.APIGroupDiscoveryList
				err = json.NewDecoder(resp.Body).Decode(&l)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || len(l.Items) == 0 {
					errs <- fmt.Errorf("GET /apis during adds: %d %v", resp.StatusCode, err)
					return
				}
			}
		}()
	}
	for _, k := range kinds {
		plural := strings.ToLower(k.Kind) + "s"
		if err := api.Add(&apiserver.Resource{GVK: k, Plural: plural}); err != nil {
			t.Error(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, body := get(t, srv, "/apis", acceptV2, "")
	have := map[string]bool{}
	for _, g := range decodeV2(t, body).Items {
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				have[g.Name+"/"+r.ResponseKind.Kind] = true
			}
		}
	}
	for _, k := range kinds {
		if !have[k.Group+"/"+k.Kind] {
			t.Errorf("the document lacks %s", k)
		}
	}
}

func mustRequest(url, accept string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Accept", accept)
	return req
}

// BenchmarkAggregatedDiscovery measures serving discovery, the handler
// alone answering into a recorder ("server/..."): the aggregated document
// (built from the registry and encoded on every request) in each form, the
// 304 answer to a client that has it, and for comparison the legacy
// requests a client needs for the same information (/api, /apis and every
// group-version). "client-go/..." is client-go's whole discovery over
// HTTP, aggregated against legacy.
//
//	go test ./server/apiserver -run '^$' -bench AggregatedDiscovery -benchmem
func BenchmarkAggregatedDiscovery(b *testing.B) {
	api, srv := startAPI(b)
	serve := func(b *testing.B, path, accept, etag string, want int) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", accept)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
	for _, bc := range []struct{ name, path, accept string }{
		{"apis-v2-json", "/apis", acceptClientGo},
		{"api-v2-json", "/api", acceptClientGo},
		{"apis-v2beta1-json", "/apis", acceptKubectl127},
		{"apis-v2-protobuf", "/apis", acceptPB},
	} {
		b.Run("server/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				serve(b, bc.path, bc.accept, "", http.StatusOK)
			}
		})
	}
	req := httptest.NewRequest(http.MethodGet, "/apis", nil)
	req.Header.Set("Accept", acceptClientGo)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	etag := rec.Header().Get("ETag")
	b.Run("server/apis-304", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			serve(b, "/apis", acceptClientGo, etag, http.StatusNotModified)
		}
	})
	var legacyPaths []string
	legacyPaths = append(legacyPaths, "/api", "/apis", "/api/v1")
	for _, r := range api.Resources() {
		if gv := r.GVK.GroupVersion(); gv.Group != "" {
			legacyPaths = append(legacyPaths, "/apis/"+gv.String())
		}
	}
	sort.Strings(legacyPaths)
	legacyPaths = compactStrings(legacyPaths)
	b.Run(fmt.Sprintf("server/legacy-all-%d-requests", len(legacyPaths)), func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, p := range legacyPaths {
				serve(b, p, "application/json", "", http.StatusOK)
			}
		}
	})
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "client-go/aggregated", true: "client-go/legacy"}[legacy]
		b.Run(name, func(b *testing.B) {
			dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL, QPS: -1})
			if err != nil {
				b.Fatal(err)
			}
			dc.UseLegacyDiscovery = legacy
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, _, err := dc.ServerGroupsAndResources(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
