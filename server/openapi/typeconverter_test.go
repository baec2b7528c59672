package openapi

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

func TestTypeConverter(t *testing.T) {
	all, err := NewTypeConverter(scheme.Scheme, nil)
	if err != nil {
		t.Fatal(err)
	}
	some, err := NewTypeConverter(scheme.Scheme, []schema.GroupVersionKind{appsv1.SchemeGroupVersion.WithKind("Deployment"), autoscalingv1.SchemeGroupVersion.WithKind("Scale")})
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
		}}}}},
	}
	for name, tc := range map[string]managedfields.TypeConverter{"all": all, "some": some} {
		tv, err := tc.ObjectToTyped(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		set, err := tv.ToFieldSet()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Lists keyed as upstream keys them: containers by name, ports by
		// containerPort and protocol.
		for _, want := range []fieldpath.Path{
			fieldpath.MakePathOrDie("spec", "template", "spec", "containers", fieldpath.KeyByFields("name", "c"), "image"),
			fieldpath.MakePathOrDie("spec", "template", "spec", "containers", fieldpath.KeyByFields("name", "c"), "ports",
				fieldpath.KeyByFields("containerPort", 80, "protocol", "TCP"), "containerPort"),
			fieldpath.MakePathOrDie("metadata", "labels", "app"),
		} {
			if !set.Has(want) {
				t.Errorf("%s: the typed Deployment lacks %v:\n%v", name, want, set)
			}
		}
	}
	// A kind left out of a limited converter is not typed.
	if _, err := some.ObjectToTyped(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}); err == nil {
		t.Error("a converter limited to Deployments typed a ConfigMap")
	}
	if _, err := NewTypeConverter(scheme.Scheme, []schema.GroupVersionKind{{Group: "example.com", Version: "v1", Kind: "Widget"}}); err == nil {
		t.Error("a kind the scheme does not know was accepted")
	}
	// Unknown fields are refused, as apply refuses them.
	u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]interface{}{"name": "x"}, "dta": map[string]interface{}{}}}
	if _, err := all.ObjectToTyped(u); err == nil || err.Error() != ".dta: field not declared in schema" {
		t.Errorf("an unknown field: got %v, want upstream's .dta: field not declared in schema", err)
	}
}

func TestCustomTypeConverter(t *testing.T) {
	v1 := schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"}
	v2 := v1.GroupVersion().WithKind("CronTab")
	v2.Version = "v2"
	crd := &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
		"spec": {SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{
			"cronSpec": {SchemaProps: spec.SchemaProps{Type: []string{"string"}}},
			"ports": {
				SchemaProps:      spec.SchemaProps{Type: []string{"array"}, Items: &spec.SchemaOrArray{Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Properties: map[string]spec.Schema{"name": {SchemaProps: spec.SchemaProps{Type: []string{"string"}}}, "port": {SchemaProps: spec.SchemaProps{Type: []string{"integer"}}}}}}}},
				VendorExtensible: spec.VendorExtensible{Extensions: spec.Extensions{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": []interface{}{"name"}}},
			},
		}}},
	}}}
	tc, err := NewCustomTypeConverter(map[schema.GroupVersionKind]*spec.Schema{v1: crd, v2: nil}, false)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]interface{}{"name": "x", "labels": map[string]interface{}{"a": "b"}},
		"spec":     map[string]interface{}{"cronSpec": "* * * * */5", "ports": []interface{}{map[string]interface{}{"name": "http", "port": int64(80)}}}}}
	tv, err := tc.ObjectToTyped(obj)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := tv.ToFieldSet()
	for _, want := range []fieldpath.Path{
		fieldpath.MakePathOrDie("spec", "ports", fieldpath.KeyByFields("name", "http"), "port"),
		fieldpath.MakePathOrDie("metadata", "labels", "a"),
	} {
		if !set.Has(want) {
			t.Errorf("typed CronTab lacks %v: %v", want, set)
		}
	}
	obj.Object["spec"].(map[string]interface{})["bogus"] = true
	if _, err := tc.ObjectToTyped(obj); err == nil || !strings.Contains(err.Error(), ".spec.bogus: field not declared in schema") {
		t.Errorf("unknown field in v1: %v", err)
	}
	// v2 has no schema: anything goes.
	obj.SetAPIVersion("stable.example.com/v2")
	if _, err := tc.ObjectToTyped(obj); err != nil {
		t.Errorf("schemaless v2: %v", err)
	}
}

// BenchmarkTypeConverter measures building the converter of every kind
// (what the API server builds on its first write) and of a few: time,
// allocations, and the heap the converter keeps (live MB).
//
//	go test ./server/openapi -run '^$' -bench TypeConverter -benchmem
func BenchmarkTypeConverter(b *testing.B) {
	for _, bc := range []struct {
		name  string
		kinds []schema.GroupVersionKind
	}{
		{"all", nil},
		{"deployment", []schema.GroupVersionKind{appsv1.SchemeGroupVersion.WithKind("Deployment")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var keep []managedfields.TypeConverter
			for i := 0; i < b.N; i++ {
				tc, err := NewTypeConverter(scheme.Scheme, bc.kinds)
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					keep = append(keep, tc)
				}
			}
			b.StopTimer()
			before := heapInUse()
			runtime.KeepAlive(keep)
			keep = nil
			after := heapInUse()
			b.ReportMetric(float64(before-after)/mb, "live-MB")
		})
	}
}

// TestTypeConverterCost logs the first build's time and the heap the
// converter keeps, as the API server sees them (run with -v).
func TestTypeConverterCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	base := heapInUse()
	h := sampleHeap()
	start := time.Now()
	tc, err := NewTypeConverter(scheme.Scheme, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	peak := h.Stop()
	built := heapInUse()
	// The schema indexes its types on first use.
	if _, err := tc.ObjectToTyped(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}); err != nil {
		t.Fatal(err)
	}
	used := heapInUse()
	t.Logf("type converter of every kind: built in %v, peak heap +%.1f MB, kept %.1f MB, %.1f MB after a first use",
		took.Round(time.Millisecond), float64(peak-base)/mb, float64(built-base)/mb, float64(used-base)/mb)
	runtime.KeepAlive(tc)
}
