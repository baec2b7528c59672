package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// ops of a v2 or v3 path item, by method.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch"}

// paramNames returns the names of an operation's parameters, resolving
// references to the document's shared parameters (v2 #/parameters/...).
func paramNames(t *testing.T, doc map[string]interface{}, op map[string]interface{}) map[string]string {
	t.Helper()
	out := map[string]string{}
	list, _ := op["parameters"].([]interface{})
	for _, p := range list {
		pm := p.(map[string]interface{})
		if ref, ok := pm["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/parameters/")
			pm = dig(t, doc, "parameters", name).(map[string]interface{})
		}
		out[pm["name"].(string)] = pm["in"].(string)
	}
	return out
}

func gvkOf(v interface{}) map[string]interface{} {
	m, _ := v.(map[string]interface{})
	gvk, _ := m[extGVK].(map[string]interface{})
	return gvk
}

func hasGVK(list interface{}, group, version, kind string) bool {
	l, _ := list.([]interface{})
	for _, e := range l {
		m := e.(map[string]interface{})
		if m["group"] == group && m["version"] == version && m["kind"] == kind {
			return true
		}
	}
	return false
}

func TestV2JSON(t *testing.T) {
	_, ts := newTestService(t)
	doc := getJSON(t, ts.URL+"/openapi/v2")

	if doc["swagger"] != "2.0" {
		t.Errorf("swagger = %v", doc["swagger"])
	}
	pod := dig(t, doc, "definitions", "io.k8s.api.core.v1.Pod")
	if !hasGVK(dig(t, pod, extGVK), "", "v1", "Pod") {
		t.Errorf("Pod definition GVK = %v", dig(t, pod, extGVK))
	}
	if ref := dig(t, pod, "properties", "spec", "$ref"); ref != "#/definitions/io.k8s.api.core.v1.PodSpec" {
		t.Errorf("Pod spec $ref = %v", ref)
	}
	dig(t, doc, "definitions", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
	dig(t, doc, "definitions", "io.k8s.apimachinery.pkg.util.intstr.IntOrString")
	dig(t, doc, "definitions", "io.k8s.apimachinery.pkg.api.resource.Quantity")
	if !hasGVK(dig(t, doc, "definitions", "io.k8s.apimachinery.pkg.apis.meta.v1.Status", extGVK), "", "v1", "Status") {
		t.Error("Status definition lacks its GVK")
	}
	if !hasGVK(dig(t, doc, "definitions", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", extGVK), "apps", "v1", "DeleteOptions") {
		t.Error("DeleteOptions definition lacks apps/v1")
	}

	item := dig(t, doc, "paths", "/api/v1/namespaces/{namespace}/pods/{name}").(map[string]interface{})
	for _, m := range []string{"get", "put", "patch", "delete"} {
		if item[m] == nil {
			t.Errorf("pod item path lacks %s", m)
		}
	}
	patch := item["patch"].(map[string]interface{})
	if patch["operationId"] != "patchCoreV1NamespacedPod" || patch[extAction] != "patch" {
		t.Errorf("patch operation = %v %v", patch["operationId"], patch[extAction])
	}
	if g := gvkOf(patch); g["group"] != "" || g["version"] != "v1" || g["kind"] != "Pod" {
		t.Errorf("patch GVK = %v", g)
	}
	consumes := dig(t, patch, "consumes").([]interface{})
	for _, mt := range []string{mtJSONPatch, mtMergePatch, mtSMPatch, mtApplyPatch} {
		if !slices.Contains(consumes, interface{}(mt)) {
			t.Errorf("patch consumes %v, lacks %s", consumes, mt)
		}
	}
	params := paramNames(t, doc, patch)
	for _, p := range []string{"fieldValidation", "dryRun", "fieldManager", "force"} {
		if params[p] != "query" {
			t.Errorf("patch parameters %v lack query %s", params, p)
		}
	}
	if params["body"] != "body" {
		t.Errorf("patch parameters %v lack the body", params)
	}
	pathParams := paramNames(t, doc, item)
	if pathParams["name"] != "path" || pathParams["namespace"] != "path" {
		t.Errorf("pod item path parameters = %v", pathParams)
	}

	for path, want := range map[string]map[string]string{
		"/api/v1/namespaces/{namespace}/pods":                           {"get": "listCoreV1NamespacedPod", "post": "createCoreV1NamespacedPod", "delete": "deleteCoreV1CollectionNamespacedPod"},
		"/api/v1/pods":                                                  {"get": "listCoreV1PodForAllNamespaces"},
		"/api/v1/watch/namespaces/{namespace}/pods/{name}":              {"get": "watchCoreV1NamespacedPod"},
		"/api/v1/namespaces/{namespace}/pods/{name}/status":             {"get": "readCoreV1NamespacedPodStatus", "patch": "patchCoreV1NamespacedPodStatus"},
		"/api/v1/namespaces/{namespace}/pods/{name}/log":                {"get": "readCoreV1NamespacedPodLog"},
		"/api/v1/namespaces/{namespace}/pods/{name}/exec":               {"get": "connectCoreV1GetNamespacedPodExec", "post": "connectCoreV1PostNamespacedPodExec"},
		"/api/v1/namespaces/{namespace}/pods/{name}/eviction":           {"post": "createCoreV1NamespacedPodEviction"},
		"/api/v1/nodes/{name}/proxy/{path}":                             {"get": "connectCoreV1GetNodeProxyWithPath"},
		"/api/v1/namespaces/{name}/finalize":                            {"put": "replaceCoreV1NamespaceFinalize"},
		"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale": {"patch": "patchAppsV1NamespacedDeploymentScale"},
		"/apis/rbac.authorization.k8s.io/v1/clusterroles":               {"get": "listRbacAuthorizationV1ClusterRole"},
		"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":        {"post": "createAuthorizationV1SelfSubjectAccessReview"},
	} {
		for m, id := range want {
			if got := dig(t, doc, "paths", path, m, "operationId"); got != id {
				t.Errorf("%s %s: operationId %v, want %s", m, path, got, id)
			}
		}
	}
	scale := dig(t, doc, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "patch")
	if g := gvkOf(scale); g["group"] != "autoscaling" || g["kind"] != "Scale" {
		t.Errorf("scale patch GVK = %v", g)
	}
	if g := gvkOf(dig(t, doc, "paths", "/api/v1/namespaces/{namespace}/pods/{name}/exec", "get")); g["kind"] != "PodExecOptions" {
		t.Errorf("exec GVK = %v", g)
	}
	if a := dig(t, doc, "paths", "/api/v1/watch/namespaces/{namespace}/pods", "get", extAction); a != "watchlist" {
		t.Errorf("watch list action = %v", a)
	}
}

func TestV2Protobuf(t *testing.T) {
	_, ts := newTestService(t)
	for _, accept := range []string{mimeV2ProtoAt, mimeV2Proto, mimeV2ProtoAt + ", application/json"} {
		resp, body := get(t, ts.URL+"/openapi/v2", accept)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mimeV2Proto {
			t.Fatalf("Accept %s: %s %s", accept, resp.Status, resp.Header.Get("Content-Type"))
		}
		var doc openapi_v2.Document
		if err := proto.Unmarshal(body, &doc); err != nil {
			t.Fatalf("Accept %s: %v", accept, err)
		}
		var found bool
		for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
			if d.GetName() == "io.k8s.api.apps.v1.Deployment" {
				found = true
			}
		}
		if !found || doc.GetSwagger() != "2.0" {
			t.Errorf("Accept %s: protobuf document lacks the Deployment definition", accept)
		}
	}
	// The JSON and protobuf forms describe the same document.
	_, pb := get(t, ts.URL+"/openapi/v2", mimeV2ProtoAt)
	_, js := get(t, ts.URL+"/openapi/v2", "application/json")
	fromJSON, err := openapi_v2.ParseDocument(js)
	if err != nil {
		t.Fatal(err)
	}
	var fromPB openapi_v2.Document
	if err := proto.Unmarshal(pb, &fromPB); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(fromJSON, &fromPB) {
		t.Error("protobuf and JSON documents differ")
	}
}

func TestV3IndexAndGroupDocument(t *testing.T) {
	_, ts := newTestService(t)
	idx := getJSON(t, ts.URL+"/openapi/v3")
	paths := dig(t, idx, "paths").(map[string]interface{})
	for _, p := range []string{"api/v1", "apis/apps/v1", "apis/autoscaling/v1", "apis/autoscaling/v2", "apis/rbac.authorization.k8s.io/v1"} {
		if paths[p] == nil {
			t.Errorf("index lacks %s", p)
		}
	}
	if len(paths) != 19 {
		t.Errorf("index has %d group-versions, want 19", len(paths))
	}
	url := dig(t, paths, "apis/apps/v1", "serverRelativeURL").(string)
	if !regexp.MustCompile(`^/openapi/v3/apis/apps/v1\?hash=[0-9A-F]{128}$`).MatchString(url) {
		t.Fatalf("serverRelativeURL = %q", url)
	}

	resp, body := get(t, ts.URL+url, "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != immutableCache || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s, Cache-Control %q, Content-Type %q", url, resp.Status, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc["openapi"].(string), "3.0") {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	dep := dig(t, doc, "components", "schemas", "io.k8s.api.apps.v1.Deployment")
	if !hasGVK(dig(t, dep, extGVK), "apps", "v1", "Deployment") {
		t.Errorf("Deployment schema GVK = %v", dig(t, dep, extGVK))
	}
	if ref := dig(t, dep, "properties", "spec", "allOf").([]interface{})[0].(map[string]interface{})["$ref"]; ref != "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec" {
		t.Errorf("Deployment spec ref = %v", ref)
	}
	patch := dig(t, doc, "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch").(map[string]interface{})
	if g := gvkOf(patch); g["group"] != "apps" || g["version"] != "v1" || g["kind"] != "Deployment" {
		t.Errorf("patch GVK = %v", g)
	}
	if params := paramNames(t, doc, patch); params["fieldValidation"] != "query" {
		t.Errorf("patch parameters = %v", params)
	}
	content := dig(t, patch, "requestBody", "content").(map[string]interface{})
	for _, mt := range []string{mtJSONPatch, mtMergePatch, mtSMPatch, mtApplyPatch} {
		if content[mt] == nil {
			t.Errorf("patch request body lacks %s", mt)
		}
	}
	// Only apps/v1 paths, and only the definitions they reach.
	for p := range dig(t, doc, "paths").(map[string]interface{}) {
		if !strings.HasPrefix(p, "/apis/apps/v1/") {
			t.Errorf("apps/v1 document has path %s", p)
		}
	}
	if s := dig(t, doc, "components", "schemas").(map[string]interface{}); s["io.k8s.api.batch.v1.Job"] != nil {
		t.Error("apps/v1 document has the Job schema")
	}

	// The core group is at api/v1.
	core := getJSON(t, ts.URL+dig(t, paths, "api/v1", "serverRelativeURL").(string))
	dig(t, core, "paths", "/api/v1/namespaces/{namespace}/pods/{name}", "patch")

	// An outdated hash redirects to the current one; an unknown
	// group-version is not found.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := noRedirect.Get(ts.URL + "/openapi/v3/apis/apps/v1?hash=0123")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != url {
		t.Errorf("outdated hash: %s, Location %q", r.Status, r.Header.Get("Location"))
	}
	if resp, _ := get(t, ts.URL+"/openapi/v3/apis/nope/v1", "application/json"); resp.StatusCode != 404 {
		t.Errorf("unknown group-version: %s", resp.Status)
	}
	// Without ?hash there is no long-term caching.
	if resp, _ := get(t, ts.URL+"/openapi/v3/apis/apps/v1", ""); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "" {
		t.Errorf("without hash: %s, Cache-Control %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
}

func TestV3Protobuf(t *testing.T) {
	_, ts := newTestService(t)
	for _, accept := range []string{mimeV3ProtoAt, mimeV3Proto} {
		resp, body := get(t, ts.URL+"/openapi/v3/apis/apps/v1", accept)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mimeV3Proto {
			t.Fatalf("Accept %s: %s %s", accept, resp.Status, resp.Header.Get("Content-Type"))
		}
		var doc openapi_v3.Document
		if err := proto.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, s := range doc.GetComponents().GetSchemas().GetAdditionalProperties() {
			found = found || s.GetName() == "io.k8s.api.apps.v1.Deployment"
		}
		if !found {
			t.Errorf("Accept %s: no Deployment schema", accept)
		}
	}
}

// Every PATCH operation of a served kind must list fieldValidation among
// its own parameters, in every document: kubectl checks the first PATCH it
// meets for the kind (v3: in map order) and ignores the path's parameters.
func TestEveryPatchHasFieldValidation(t *testing.T) {
	s, ts := newTestService(t)
	// A resource without get: its PUT and PATCH share every query
	// parameter, which the builders would move to the path.
	res := append(kubeResources(), Resource{GVK: schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1beta1", Kind: "LeaseCandidate"},
		Plural: "leasecandidates", Namespaced: true, Verbs: []string{"update", "patch"}})
	if err := s.Update(res); err != nil {
		t.Fatal(err)
	}
	check := func(name string, doc map[string]interface{}) int {
		n := 0
		for path, item := range dig(t, doc, "paths").(map[string]interface{}) {
			im := item.(map[string]interface{})
			patch, ok := im["patch"].(map[string]interface{})
			if !ok || gvkOf(patch)["kind"] == nil || strings.HasSuffix(gvkOf(patch)["kind"].(string), "Options") {
				continue
			}
			n++
			if paramNames(t, doc, patch)["fieldValidation"] != "query" {
				t.Errorf("%s: PATCH %s lacks fieldValidation", name, path)
			}
			if paramNames(t, doc, im)["fieldValidation"] != "" {
				t.Errorf("%s: %s has fieldValidation on the path", name, path)
			}
		}
		return n
	}
	if n := check("v2", getJSON(t, ts.URL+"/openapi/v2")); n < 80 {
		t.Errorf("v2: only %d PATCH operations", n)
	}
	idx := getJSON(t, ts.URL+"/openapi/v3")
	for gv, e := range dig(t, idx, "paths").(map[string]interface{}) {
		check(gv, getJSON(t, ts.URL+dig(t, e, "serverRelativeURL").(string)))
	}
	doc := getJSON(t, ts.URL+"/openapi/v3/apis/coordination.k8s.io/v1beta1")
	item := dig(t, doc, "paths", "/apis/coordination.k8s.io/v1beta1/namespaces/{namespace}/leasecandidates/{name}").(map[string]interface{})
	if item["get"] != nil || item["put"] == nil || paramNames(t, doc, item["put"].(map[string]interface{}))["fieldValidation"] != "query" {
		t.Errorf("leasecandidates item path = %v", item)
	}
}

func TestEncodingAndConditionalRequests(t *testing.T) {
	_, ts := newTestService(t)
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	do := func(method, path string, header ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// No Accept-Encoding: plain JSON.
	resp, body := do("GET", "/openapi/v2")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !json.Valid(body) {
		t.Fatalf("identity: %s %q valid=%v", resp.Status, resp.Header.Get("Content-Encoding"), json.Valid(body))
	}
	etag := resp.Header.Get("Etag")
	// gzip as stored.
	resp, gz := do("GET", "/openapi/v2", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(body)/4 {
		t.Fatalf("gzip: %q, %d of %d bytes", resp.Header.Get("Content-Encoding"), len(gz), len(body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, body) || resp.Header.Get("Etag") != etag {
		t.Error("gzip and identity bodies or ETags differ")
	}
	if resp, _ := do("GET", "/openapi/v2", "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	// Conditional requests.
	if resp, b := do("GET", "/openapi/v2", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	if resp, _ := do("GET", "/openapi/v2", "If-None-Match", `"other"`); resp.StatusCode != 200 {
		t.Errorf("If-None-Match other: %s", resp.Status)
	}
	resp, _ = do("GET", "/openapi/v2", "Accept", mimeV2ProtoAt)
	if resp.Header.Get("Etag") == etag {
		t.Error("JSON and protobuf share an ETag")
	}
	// HEAD, other methods, unacceptable types.
	if resp, b := do("HEAD", "/openapi/v3"); resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("HEAD: %s, %d bytes", resp.Status, len(b))
	}
	if resp, _ := do("POST", "/openapi/v2"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", resp.Status)
	}
	if resp, _ := do("GET", "/openapi/v2", "Accept", "text/html"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("text/html: %s", resp.Status)
	}
	if resp, _ := do("GET", "/openapi/v3/api/v1", "Accept", "application/xml"); resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("application/xml: %s", resp.Status)
	}
}

func TestUpdate(t *testing.T) {
	s, ts := newTestService(t)
	urls := func() map[string]string {
		out := map[string]string{}
		for gv, e := range dig(t, getJSON(t, ts.URL+"/openapi/v3"), "paths").(map[string]interface{}) {
			out[gv] = dig(t, e, "serverRelativeURL").(string)
		}
		return out
	}
	before := urls()
	_, v2Before := get(t, ts.URL+"/openapi/v2", "application/json")
	s.mu.RLock()
	appsDoc := s.v3["apis/apps/v1"]
	s.mu.RUnlock()

	cronTab := Resource{
		GVK:    schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"},
		Plural: "crontabs", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status", "scale"},
		Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
			"spec": {SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
				"cronSpec": {SchemaProps: spec.SchemaProps{Type: []string{"string"}}},
			}}},
		}}},
	}
	if err := s.Update(append(kubeResources(), cronTab)); err != nil {
		t.Fatal(err)
	}
	after := urls()
	if len(after) != len(before)+1 || after["apis/stable.example.com/v1"] == "" {
		t.Fatalf("index after adding a group: %v", after)
	}
	for gv, u := range before {
		if after[gv] != u {
			t.Errorf("%s changed: %s -> %s", gv, u, after[gv])
		}
	}
	s.mu.RLock()
	kept := s.v3["apis/apps/v1"] == appsDoc
	s.mu.RUnlock()
	if !kept {
		t.Error("the apps/v1 document was rebuilt")
	}

	doc := getJSON(t, ts.URL+after["apis/stable.example.com/v1"])
	ct := dig(t, doc, "components", "schemas", "com.example.stable.v1.CronTab")
	if !hasGVK(dig(t, ct, extGVK), "stable.example.com", "v1", "CronTab") {
		t.Errorf("CronTab GVK = %v", dig(t, ct, extGVK))
	}
	dig(t, ct, "properties", "spec", "properties", "cronSpec")
	dig(t, ct, "properties", "metadata")
	dig(t, doc, "components", "schemas", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
	list := dig(t, doc, "components", "schemas", "com.example.stable.v1.CronTabList")
	if !hasGVK(dig(t, list, extGVK), "stable.example.com", "v1", "CronTabList") {
		t.Errorf("CronTabList GVK = %v", dig(t, list, extGVK))
	}
	patch := dig(t, doc, "paths", "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}", "patch")
	if content := dig(t, patch, "requestBody", "content").(map[string]interface{}); content[mtSMPatch] != nil || content[mtApplyPatch] == nil {
		t.Errorf("custom resource patch types = %v", content)
	}
	if _, ok := cronTab.Schema.Properties["metadata"]; ok || len(cronTab.Schema.Properties) != 1 {
		t.Error("Update changed the caller's schema")
	}

	v2 := getJSON(t, ts.URL+"/openapi/v2")
	dig(t, v2, "definitions", "com.example.stable.v1.CronTab", "properties", "spec")
	dig(t, v2, "paths", "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/scale", "get")
	if _, v2After := get(t, ts.URL+"/openapi/v2", "application/json"); bytes.Equal(v2Before, v2After) {
		t.Error("v2 not rebuilt")
	}

	// A bad update keeps what is served.
	if err := s.Update(append(kubeResources(), kubeResources()[0])); err == nil {
		t.Error("duplicate resource accepted")
	}
	if urls()["apis/stable.example.com/v1"] == "" {
		t.Error("failed update dropped the custom group")
	}

	// Removing the group.
	if err := s.Update(kubeResources()); err != nil {
		t.Fatal(err)
	}
	if u := urls(); len(u) != len(before) {
		t.Errorf("index after removal: %d group-versions", len(u))
	}
	if resp, _ := get(t, ts.URL+"/openapi/v3/apis/stable.example.com/v1", "application/json"); resp.StatusCode != 404 {
		t.Errorf("removed group-version: %s", resp.Status)
	}
	if _, v2Final := get(t, ts.URL+"/openapi/v2", "application/json"); !bytes.Equal(v2Before, v2Final) {
		t.Error("v2 differs from the original after removing the custom resource")
	}
}

func TestNewErrors(t *testing.T) {
	pod := Resource{GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Plural: "pods", Namespaced: true, Verbs: allVerbs}
	cases := map[string]struct {
		cfg  Config
		res  []Resource
		want string
	}{
		"no plural":      {res: []Resource{{GVK: pod.GVK}}, want: "invalid resource"},
		"slash":          {res: []Resource{{GVK: pod.GVK, Plural: "pods/status"}}, want: "invalid resource"},
		"same plural":    {res: []Resource{pod, {GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod2"}, Plural: "pods"}}, want: "plural pods served twice"},
		"same kind":      {res: []Resource{pod, {GVK: pod.GVK, Plural: "pods2"}}, want: "kind Pod served twice"},
		"no definitions": {cfg: Config{Definitions: func(common.ReferenceCallback) map[string]common.OpenAPIDefinition { return nil }}, res: []Resource{pod}, want: `no OpenAPI definition "io.k8s.api.core.v1.Pod"`},
	}
	for name, c := range cases {
		_, err := c.cfg.New(c.res, scheme.Scheme)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("nil scheme accepted")
	}
}

// The generated definitions must cover every k8s.io/api kind the client-go
// scheme registers; if this fails after a k8s.io/api upgrade, run
// go generate ./server/openapi.
func TestGeneratedCoversScheme(t *testing.T) {
	s, err := New(nil, scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for gvk, typ := range scheme.Scheme.AllKnownTypes() {
		if gvk.Version == "__internal" || !strings.HasPrefix(typ.PkgPath(), "k8s.io/api/") {
			continue
		}
		n++
		if !s.keys[typeKey(typ)] {
			t.Errorf("no definition for %v (%s)", gvk, typeKey(typ))
		}
	}
	if n < 300 {
		t.Errorf("only %d kinds checked", n)
	}
}

func TestEmptyService(t *testing.T) {
	s, err := New(nil, scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	for _, p := range []string{"/openapi/v2", "/openapi/v3"} {
		req, _ := http.NewRequest("GET", p, nil)
		rec := &recorder{header: http.Header{}}
		mux.ServeHTTP(rec, req)
		if rec.code != 200 || !json.Valid(rec.body.Bytes()) {
			t.Errorf("%s: %d %q", p, rec.code, rec.body.String())
		}
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(c int)   { r.code = c }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}

// Requests racing with updates get a consistent document each (run with
// -race).
func TestConcurrentRequestsAndUpdates(t *testing.T) {
	s, ts := newTestService(t)
	cronTab := Resource{GVK: schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"},
		Plural: "crontabs", Namespaced: true, Verbs: allVerbs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 6; i++ {
			res := kubeResources()
			if i%2 == 0 {
				res = append(res, cronTab)
			}
			if err := s.Update(res); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	errs := make(chan error, 32)
	for i := 0; i < 8; i++ {
		go func(i int) {
			paths := []string{"/openapi/v2", "/openapi/v3", "/openapi/v3/apis/apps/v1", "/openapi/v3/api/v1"}
			resp, err := http.Get(ts.URL + paths[i%len(paths)])
			if err == nil {
				var v interface{}
				err = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			errs <- err
		}(i)
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	<-done
	if err := s.Warm(); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.v2 == nil || len(s.v3) != len(s.snap.paths) || s.index == nil {
		t.Errorf("after Warm: v2 %v, %d of %d v3 documents, index %v", s.v2 != nil, len(s.v3), len(s.snap.paths), s.index != nil)
	}
}
