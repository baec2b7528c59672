package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"labctl/server/openapi"
	"labctl/server/storage"
)

func TestPrefixFromUserAgent(t *testing.T) {
	for in, want := range map[string]string{
		"kubectl/v1.33.0 (linux/amd64) kubernetes/abc": "kubectl",
		"kube-controller-manager/v1.33.0":              "kube-controller-manager",
		"no-slash":                                     "no-slash",
		"":                                             "",
		"tab\there/1":                                  "tabhere",
		strings.Repeat("x", 200) + "/1":                strings.Repeat("x", 128),
		strings.Repeat("é", 100):                       strings.Repeat("é", 64),
	} {
		if got := prefixFromUserAgent(in); got != want {
			t.Errorf("prefixFromUserAgent(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCustomResourceHook serves a resource of unstructured objects whose
// Resource carries its own type converter, as custom resources do, and
// applies to it.
func TestCustomResourceHook(t *testing.T) {
	s := newServer(t)
	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	widget := &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
		"spec": {SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
			"size":  {SchemaProps: spec.SchemaProps{Type: []string{"integer"}}},
			"color": {SchemaProps: spec.SchemaProps{Type: []string{"string"}}},
		}}},
		"status": {SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
			"ready": {SchemaProps: spec.SchemaProps{Type: []string{"boolean"}}},
		}}},
	}}}
	tc, err := openapi.NewCustomTypeConverter(map[schema.GroupVersionKind]*spec.Schema{gvk: widget}, false)
	if err != nil {
		t.Fatal(err)
	}
	newObj := func() runtime.Object {
		u := &unstructured.Unstructured{Object: map[string]interface{}{}}
		u.SetGroupVersionKind(gvk)
		return u
	}
	newList := func() runtime.Object {
		l := &unstructured.UnstructuredList{Object: map[string]interface{}{}}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind("WidgetList"))
		return l
	}
	r := &Resource{GVK: gvk, Plural: "widgets", Singular: "widget", Namespaced: true, Subresources: []string{"status"},
		strategy: genericStrategy{}, newObj: newObj, newList: newList, typeConverter: tc}
	r.store = storage.New(storage.Config{Store: s.cfg.Store, Resource: r.GroupResource(), Namespaced: true,
		Codec: unstructured.UnstructuredJSONScheme, NewFunc: newObj, NewListFunc: newList, Attrs: attrsWith(r.strategy)})
	if err := s.reg.add(r); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	send := func(method, path, ctype, body string) (int, map[string]interface{}) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/apis/example.com/v1/namespaces/default/widgets"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]interface{}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	managers := func(obj map[string]interface{}) []string {
		u := unstructured.Unstructured{Object: obj}
		var out []string
		for _, e := range u.GetManagedFields() {
			out = append(out, e.Manager+"/"+string(e.Operation)+"/"+e.APIVersion+"/"+e.Subresource)
		}
		return out
	}
	apply := `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":3,"color":"blue"}}`
	code, obj := send(http.MethodPatch, "/w?fieldManager=alice", "application/apply-patch+yaml", apply)
	if code != http.StatusCreated || strings.Join(managers(obj), ",") != "alice/Apply/example.com/v1/" {
		t.Fatalf("apply create: %d %v", code, obj)
	}
	code, obj = send(http.MethodPatch, "/w?fieldManager=bob", "application/apply-patch+yaml", strings.Replace(apply, "blue", "red", 1))
	if code != http.StatusConflict || obj["message"] != `Apply failed with 1 conflict: conflict with "alice": .spec.color` {
		t.Fatalf("conflicting apply: %d %v", code, obj)
	}
	code, obj = send(http.MethodPatch, "/w?fieldManager=carol", "application/merge-patch+json", `{"spec":{"size":4}}`)
	if code != http.StatusOK || strings.Join(managers(obj), ",") != "alice/Apply/example.com/v1/,carol/Update/example.com/v1/" {
		t.Fatalf("merge patch: %d %v", code, obj)
	}
	code, obj = send(http.MethodPatch, "/w/status?fieldManager=ctrl", "application/apply-patch+yaml", `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"status":{"ready":true}}`)
	if code != http.StatusOK || !strings.Contains(strings.Join(managers(obj), ","), "ctrl/Apply/example.com/v1/status") {
		t.Fatalf("apply to status: %d %v", code, obj)
	}
	code, obj = send(http.MethodPatch, "/w?fieldManager=alice", "application/apply-patch+yaml", strings.Replace(apply, `"size":3`, `"size":3,"shape":"round"`, 1))
	if code != http.StatusInternalServerError || !strings.Contains(obj["message"].(string), ".spec.shape: field not declared in schema") {
		t.Fatalf("apply of an undeclared field: %d %v", code, obj)
	}
	// Strategic merge needs Go types: refused, with the types accepted.
	code, obj = send(http.MethodPatch, "/w", "application/strategic-merge-patch+json", `{}`)
	if code != http.StatusUnsupportedMediaType || obj["message"] != "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" {
		t.Fatalf("strategic merge patch: %d %v", code, obj)
	}
}

// TestEveryBuiltinKindIsTyped checks that the built-in type converter
// knows every kind served (and the Scale): a kind it did not know would
// get no managedFields, and an error logged on each write.
func TestEveryBuiltinKindIsTyped(t *testing.T) {
	s := newServer(t)
	tc, err := builtinTypes()
	if err != nil {
		t.Fatal(err)
	}
	kinds := []schema.GroupVersionKind{scaleGV.WithKind("Scale")}
	for _, r := range s.Resources() {
		if r.typeConverter == nil && r.allows("patch") {
			kinds = append(kinds, r.GVK)
		}
	}
	for _, gvk := range kinds {
		obj, err := s.scheme.New(gvk)
		if err != nil {
			t.Errorf("%v: %v", gvk, err)
			continue
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		if _, err := tc.ObjectToTyped(obj); err != nil {
			t.Errorf("%v: %v", gvk, err)
		}
	}
	if len(kinds) < 40 {
		t.Errorf("only %d kinds checked", len(kinds))
	}
}
