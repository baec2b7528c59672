package openapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/util/proto/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// These tests read the documents the way kubectl and helm do: through
// client-go's discovery client (/openapi/v2 as protobuf), kube-openapi's
// util/proto models (kubectl 1.27/1.28 validation and explain) and
// client-go's openapi3 root (kubectl 1.29+).

var (
	gvkDeployment = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	gvkPod        = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvkNamespace  = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
)

func discoveryClient(t *testing.T, host string) *discovery.DiscoveryClient {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// gvkModels indexes models by the x-kubernetes-group-version-kind of their
// definitions, as kubectl's openapi.Resources does.
func gvkModels(models proto.Models) map[schema.GroupVersionKind]string {
	out := map[schema.GroupVersionKind]string{}
	for _, name := range models.ListModels() {
		list, _ := models.LookupModel(name).GetExtensions()[extGVK].([]interface{})
		for _, e := range list {
			get := func(k string) string {
				switch m := e.(type) {
				case map[interface{}]interface{}:
					s, _ := m[k].(string)
					return s
				case map[string]interface{}:
					s, _ := m[k].(string)
					return s
				}
				return ""
			}
			out[schema.GroupVersionKind{Group: get("group"), Version: get("version"), Kind: get("kind")}] = name
		}
	}
	return out
}

func TestDiscoveryOpenAPISchemaAndProtoModels(t *testing.T) {
	_, ts := newTestService(t)
	doc, err := discoveryClient(t, ts.URL).OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	models, err := proto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatal(err)
	}
	byGVK := gvkModels(models)
	if byGVK[gvkDeployment] != "io.k8s.api.apps.v1.Deployment" || byGVK[gvkPod] != "io.k8s.api.core.v1.Pod" {
		t.Fatalf("Deployment -> %q, Pod -> %q", byGVK[gvkDeployment], byGVK[gvkPod])
	}
	dep, ok := models.LookupModel(byGVK[gvkDeployment]).(*proto.Kind)
	if !ok {
		t.Fatalf("Deployment model is %T", models.LookupModel(byGVK[gvkDeployment]))
	}
	// What kubectl explain deployment.spec.replicas walks.
	spec, ok := dep.Fields["spec"].(proto.Reference)
	if !ok {
		t.Fatalf("Deployment.spec is %T", dep.Fields["spec"])
	}
	replicas := spec.SubSchema().(*proto.Kind).Fields["replicas"]
	if p, ok := replicas.(*proto.Primitive); !ok || p.Type != "integer" || !strings.Contains(p.GetDescription(), "desired pods") {
		t.Errorf("Deployment.spec.replicas = %#v", replicas)
	}

	// Client-side validation as kubectl 1.27 does it.
	validate := func(manifest string) []error {
		var obj map[string]interface{}
		if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
			t.Fatal(err)
		}
		// Through JSON, as kubectl decodes manifests.
		b, _ := json.Marshal(obj)
		obj = nil
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		return validation.ValidateModel(obj, dep, "Deployment")
	}
	good := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: 500m, memory: 128Mi}}
`
	if errs := validate(good); len(errs) != 0 {
		t.Errorf("valid Deployment: %v", errs)
	}
	bad := strings.Replace(strings.Replace(good, "replicas: 2", "replicas: two", 1), "image: nginx", "image: nginx\n        imagePullPolicyy: Always", 1)
	errs := validate(bad)
	msg := fmt.Sprint(errs)
	if len(errs) != 2 || !strings.Contains(msg, "imagePullPolicyy") || !strings.Contains(msg, "replicas") {
		t.Errorf("invalid Deployment: %v", errs)
	}

	// kubectl 1.27/1.28 decide on server-side field validation from the
	// PATCH operations of the kind.
	for _, gvk := range []schema.GroupVersionKind{gvkDeployment, gvkPod, gvkNamespace} {
		if ok, err := supportsQueryParamV2(doc, gvk, "fieldValidation"); !ok || err != nil {
			t.Errorf("v2 fieldValidation for %v: %v %v", gvk, ok, err)
		}
	}
	if _, err := supportsQueryParamV2(doc, schema.GroupVersionKind{Group: "nope", Version: "v1", Kind: "Nope"}, "fieldValidation"); err == nil {
		t.Error("unknown kind found")
	}
}

// supportsQueryParamV2 follows cli-runtime's QueryParamVerifier (1.28+):
// the first PATCH operation carrying the kind decides, parameters may be
// references to the document's shared parameters.
func supportsQueryParamV2(doc *openapi_v2.Document, gvk schema.GroupVersionKind, param string) (bool, error) {
	shared := map[string]*openapi_v2.NamedParameter{}
	for _, p := range doc.GetParameters().GetAdditionalProperties() {
		shared["#/parameters/"+p.GetName()] = p
	}
	for _, path := range doc.GetPaths().GetPath() {
		op := path.GetValue().GetPatch()
		if !v2HasGVK(op.GetVendorExtension(), gvk) {
			continue
		}
		for _, p := range op.GetParameters() {
			if p.GetParameter().GetNonBodyParameter().GetQueryParameterSubSchema().GetName() == param {
				return true, nil
			}
			if sp := shared[p.GetJsonReference().GetXRef()]; sp != nil && sp.GetValue().GetNonBodyParameter().GetQueryParameterSubSchema().GetName() == param {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("no PATCH operation for %v", gvk)
}

func v2HasGVK(exts []*openapi_v2.NamedAny, gvk schema.GroupVersionKind) bool {
	for _, e := range exts {
		if e.GetName() != extGVK || e.GetValue().GetYaml() == "" {
			continue
		}
		var v map[string]string
		if err := yaml.Unmarshal([]byte(e.GetValue().GetYaml()), &v); err != nil {
			return false
		}
		return v["group"] == gvk.Group && v["version"] == gvk.Version && v["kind"] == gvk.Kind
	}
	return false
}

func TestOpenAPIV3Root(t *testing.T) {
	_, ts := newTestService(t)
	root := openapi3.NewRoot(discoveryClient(t, ts.URL).OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	want := map[schema.GroupVersion]bool{gvkDeployment.GroupVersion(): true, gvkPod.GroupVersion(): true}
	for _, gv := range gvs {
		delete(want, gv)
	}
	if len(want) != 0 || len(gvs) != 19 {
		t.Errorf("group-versions %v, missing %v", gvs, want)
	}

	for _, gvk := range []schema.GroupVersionKind{gvkDeployment, gvkPod, gvkNamespace} {
		doc, err := root.GVSpec(gvk.GroupVersion())
		if err != nil {
			t.Fatal(err)
		}
		// kubectl 1.29+ send fieldValidation=Strict when this holds.
		if err := supportsQueryParamV3(doc, gvk, "fieldValidation"); err != nil {
			t.Errorf("v3 fieldValidation for %v: %v", gvk, err)
		}
		// kubectl explain finds the schema by its GVK.
		if name := schemaByGVK(doc, gvk); name == "" {
			t.Errorf("no schema for %v", gvk)
		}
	}
	if _, err := root.GVSpec(schema.GroupVersion{Group: "nope", Version: "v1"}); err == nil {
		t.Error("unknown group-version found")
	}
	m, err := root.GVSpecAsMap(gvkDeployment.GroupVersion())
	if err != nil || m["components"] == nil {
		t.Errorf("GVSpecAsMap: %v", err)
	}
}

// supportsQueryParamV3 follows cli-runtime's queryParamVerifierV3, but
// checks every PATCH operation of the kind where cli-runtime checks the
// first it meets in map order.
func supportsQueryParamV3(doc *spec3.OpenAPI, gvk schema.GroupVersionKind, param string) error {
	found := 0
	for path, item := range doc.Paths.Paths {
		if item == nil || item.Patch == nil || !v3HasGVK(item.Patch.Extensions, gvk) {
			continue
		}
		found++
		ok := false
		for _, p := range item.Patch.Parameters {
			ok = ok || (p.Name == param && p.In == "query")
		}
		if !ok {
			return fmt.Errorf("PATCH %s lacks %s", path, param)
		}
	}
	if found == 0 {
		return fmt.Errorf("no PATCH operation for %v", gvk)
	}
	return nil
}

func v3HasGVK(ext spec.Extensions, gvk schema.GroupVersionKind) bool {
	var v map[string]string
	if err := ext.GetObject(extGVK, &v); err != nil {
		return false
	}
	return v["group"] == gvk.Group && v["version"] == gvk.Version && v["kind"] == gvk.Kind
}

func schemaByGVK(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) string {
	for name, s := range doc.Components.Schemas {
		var list []map[string]string
		if err := s.Extensions.GetObject(extGVK, &list); err != nil {
			continue
		}
		for _, v := range list {
			if v["group"] == gvk.Group && v["version"] == gvk.Version && v["kind"] == gvk.Kind {
				return name
			}
		}
	}
	return ""
}
