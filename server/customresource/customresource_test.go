package customresource

import (
	"bytes"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Size", Type: "integer", JSONPath: ".spec.size"},
					{Name: "Colour", Type: "string", JSONPath: ".spec.colour"},
					{Name: "Made", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size":   {Type: "integer", Minimum: ptr.To(1.0), Default: &apiextensionsv1.JSON{Raw: []byte("3")}},
							"colour": {Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte(`"red"`)}},
							"parts": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
								Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
									"name":  {Type: "string"},
									"count": {Type: "integer", Default: &apiextensionsv1.JSON{Raw: []byte("1")}},
								}}}},
							"port": {XIntOrString: true},
						}},
						"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"ready": {Type: "boolean"}}},
					},
				}},
			}},
		},
	}
}

func widget(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
		"spec":     spec,
	}}
}

func TestDefaultsPruneValidate(t *testing.T) {
	v, err := NewVersion(widgetCRD(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	w := widget(map[string]any{"parts": []any{map[string]any{"name": "a"}}, "extra": true, "port": "http"})
	if unknown := v.Prune(w); len(unknown) != 1 || unknown[0] != "spec.extra" {
		t.Errorf("pruned %v, want [spec.extra]", unknown)
	}
	v.Default(w)
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
		t.Errorf("size defaulted to %v, want int64 3", w.Object["spec"])
	}
	parts, _, _ := unstructured.NestedSlice(w.Object, "spec", "parts")
	if c := parts[0].(map[string]any)["count"]; c != int64(1) {
		t.Errorf("a list item's default: %#v", parts[0])
	}
	if errs := v.Validate(w); len(errs) != 0 {
		t.Errorf("a valid widget: %v", errs)
	}
	bad := widget(map[string]any{"size": int64(0), "port": true, "colour": int64(5)})
	errs := v.Validate(bad)
	got := map[string]string{}
	for _, e := range errs {
		got[e.Field] = e.Error()
	}
	if !strings.Contains(got["spec.size"], "should be greater than or equal to 1") || got["spec.colour"] == "" || got["spec.port"] == "" {
		t.Errorf("errors: %v", errs)
	}
	wrongKind := widget(nil)
	wrongKind.SetKind("Gadget")
	if errs := v.Validate(wrongKind); len(errs) == 0 || errs[0].Field != "kind" {
		t.Errorf("a wrong kind: %v", errs)
	}
}

func TestStatusAndGeneration(t *testing.T) {
	v, _ := NewVersion(widgetCRD(), "v1")
	w := widget(map[string]any{"size": int64(2)})
	w.Object["status"] = map[string]any{"ready": true}
	v.PrepareForCreate(w)
	if _, has := w.Object["status"]; has || w.GetGeneration() != 1 {
		t.Fatalf("create kept the status or no generation 1: %v", w.Object)
	}
	old := w.DeepCopy()
	old.Object["status"] = map[string]any{"ready": true}
	next := old.DeepCopy()
	next.Object["status"] = map[string]any{"ready": false}
	next.SetLabels(map[string]string{"a": "b"})
	v.PrepareForUpdate(next, old)
	if next.Object["status"].(map[string]any)["ready"] != true || next.GetGeneration() != 1 {
		t.Errorf("a main update changed the status or the generation: %v", next.Object)
	}
	unstructured.SetNestedField(next.Object, int64(5), "spec", "size")
	v.PrepareForUpdate(next, old)
	if next.GetGeneration() != 2 {
		t.Errorf("a spec change: generation %d, want 2", next.GetGeneration())
	}
	st := old.DeepCopy()
	st.Object["status"] = map[string]any{"ready": false}
	unstructured.SetNestedField(st.Object, int64(9), "spec", "size")
	st.SetResourceVersion("7")
	v.PrepareForStatusUpdate(st, old)
	if size, _, _ := unstructured.NestedInt64(st.Object, "spec", "size"); size != 2 || st.Object["status"].(map[string]any)["ready"] != false || st.GetResourceVersion() != "7" {
		t.Errorf("a status update: %v", st.Object)
	}
}

func TestTable(t *testing.T) {
	v, _ := NewVersion(widgetCRD(), "v1")
	list := v.NewList().(*unstructured.UnstructuredList)
	list.Items = []unstructured.Unstructured{*widget(map[string]any{"size": int64(4), "colour": "blue"}), *widget(map[string]any{})}
	table, err := v.Table(list, false, time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "Name,Size,Colour,Made" || len(table.Rows) != 2 {
		t.Fatalf("table: %+v", table)
	}
	if c := table.Rows[0].Cells; c[0] != "w" || c[1] != int64(4) || c[2] != "blue" || c[3] != "5m" {
		t.Errorf("cells: %#v", c)
	}
	if c := table.Rows[1].Cells; c[1] != nil || c[2] != nil {
		t.Errorf("missing values are nil cells: %#v", c)
	}
	// No columns: NAME and AGE, as upstream defaults them.
	crd := widgetCRD()
	crd.Spec.Versions[0].AdditionalPrinterColumns = nil
	plain, _ := NewVersion(crd, "v1")
	table, _ = plain.Table(widget(nil), true, time.Now())
	if table.ColumnDefinitions != nil || len(table.Rows[0].Cells) != 2 {
		t.Errorf("default columns without headers: %+v", table)
	}
}

func TestStorageCodec(t *testing.T) {
	crd := widgetCRD()
	crd.Spec.Versions = append(crd.Spec.Versions, *crd.Spec.Versions[0].DeepCopy())
	crd.Spec.Versions[1].Name, crd.Spec.Versions[1].Storage = "v1beta1", false
	beta, err := NewVersion(crd, "v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	w := widget(map[string]any{"size": int64(1)})
	w.SetAPIVersion("example.com/v1beta1")
	var buf bytes.Buffer
	if err := beta.Codec().Encode(w, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"apiVersion":"example.com/v1"`) || w.GetAPIVersion() != "example.com/v1beta1" {
		t.Errorf("stored %s (and the object given became %s)", buf.String(), w.GetAPIVersion())
	}
	v1, _ := NewVersion(crd, "v1")
	back, _, err := beta.Codec().Decode(buf.Bytes(), nil, v1.New())
	if err != nil || back.(*unstructured.Unstructured).GetAPIVersion() != "example.com/v1beta1" {
		t.Errorf("read back as %v: %v", back, err)
	}
}

func TestValidateCRD(t *testing.T) {
	if errs := ValidateCRD(widgetCRD()); len(errs) != 0 {
		t.Fatalf("a valid CRD: %v", errs)
	}
	for name, tc := range map[string]struct {
		edit func(*apiextensionsv1.CustomResourceDefinition)
		want string
	}{
		"name":       {func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "x.example.com" }, `metadata.name: Invalid value: "x.example.com": must be spec.names.plural+"."+spec.group`},
		"group":      {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Group, c.Name = "example", "widgets.example" }, "should be a domain with at least one dot"},
		"scope":      {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Global" }, `spec.scope: Unsupported value: "Global"`},
		"no storage": {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false }, "must have exactly one version marked as storage version"},
		"no schema":  {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Schema = nil }, "spec.versions[0].schema.openAPIV3Schema: Required value"},
		"not structural": {func(c *apiextensionsv1.CustomResourceDefinition) {
			s := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			s.Properties["loose"] = apiextensionsv1.JSONSchemaProps{}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = s
		}, "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[loose].type: Required value"},
		"column type": {func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Type = "float"
		}, `additionalPrinterColumns[0].type: Unsupported value: "float"`},
		"webhook": {func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter}
		}, "conversion webhooks are not supported by labctl"},
		"CEL": {func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.XValidations = apiextensionsv1.ValidationRules{{Rule: "self.spec.size > 0"}}
		}, "x-kubernetes-validations (CEL rules) are not supported by labctl"},
		"kind": {func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.ListKind = "Widget" }, "kind and listKind may not be the same"},
	} {
		t.Run(name, func(t *testing.T) {
			crd := widgetCRD()
			tc.edit(crd)
			errs := ValidateCRD(crd)
			if !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Errorf("want %q in %v", tc.want, errs)
			}
		})
	}
	old := widgetCRD()
	moved := widgetCRD()
	moved.Spec.Scope = apiextensionsv1.ClusterScoped
	if errs := ValidateCRDUpdate(moved, old); !strings.Contains(errs.ToAggregate().Error(), "spec.scope: Invalid value: \"Cluster\": field is immutable") {
		t.Errorf("a scope change: %v", errs)
	}
}
