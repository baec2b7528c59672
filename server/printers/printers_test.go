package printers

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	jsonserializer "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

func podList() *corev1.PodList {
	a := newPod(corev1.PodRunning)
	a.Name = "a"
	a.Labels = map[string]string{"app": "web"}
	a.ResourceVersion = "17"
	a.UID = "uid-a"
	a.Status.ContainerStatuses = []corev1.ContainerStatus{running(true, 0)}
	b := newPod(corev1.PodPending)
	b.Name = "b"
	return &corev1.PodList{
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next-page", RemainingItemCount: ptr(int64(5))},
		Items:    []corev1.Pod{*a, *b},
	}
}

func TestTableOfList(t *testing.T) {
	table, err := Table(podList(), opts())
	if err != nil {
		t.Fatal(err)
	}
	if table.APIVersion != "meta.k8s.io/v1" || table.Kind != "Table" {
		t.Errorf("table type = %s %s", table.APIVersion, table.Kind)
	}
	if table.ResourceVersion != "42" || table.Continue != "next-page" || table.RemainingItemCount == nil || *table.RemainingItemCount != 5 {
		t.Errorf("list meta = %+v", table.ListMeta)
	}
	if len(table.Rows) != 2 {
		t.Fatalf("%d rows", len(table.Rows))
	}
	checkCells(t, table.Rows[0].Cells, []interface{}{"a", "1/1", "Running", "0", "10m", "10.42.0.7", "node1", "<none>", "<none>"})
	checkCells(t, table.Rows[1].Cells, []interface{}{"b", "0/1", "Pending", "0", "10m", "10.42.0.7", "node1", "<none>", "<none>"})

	partial, ok := table.Rows[0].Object.Object.(*metav1.PartialObjectMetadata)
	if !ok {
		t.Fatalf("row object is %T, want *PartialObjectMetadata", table.Rows[0].Object.Object)
	}
	if partial.APIVersion != "meta.k8s.io/v1" || partial.Kind != "PartialObjectMetadata" {
		t.Errorf("row object type = %s %s", partial.APIVersion, partial.Kind)
	}
	if partial.Name != "a" || partial.Namespace != "default" || partial.Labels["app"] != "web" ||
		partial.ResourceVersion != "17" || partial.UID != "uid-a" || !partial.CreationTimestamp.Equal(ptr(ago(10*time.Minute))) {
		t.Errorf("row object metadata = %+v", partial.ObjectMeta)
	}
}

func TestTableOfObject(t *testing.T) {
	p := newPod(corev1.PodRunning)
	p.ResourceVersion = "99"
	table, err := Table(p, opts())
	if err != nil {
		t.Fatal(err)
	}
	if table.ResourceVersion != "99" || table.Continue != "" || table.RemainingItemCount != nil {
		t.Errorf("list meta = %+v", table.ListMeta)
	}
}

func TestNoHeaders(t *testing.T) {
	o := opts()
	o.NoHeaders = true
	table, err := Table(podList(), o)
	if err != nil {
		t.Fatal(err)
	}
	if table.ColumnDefinitions != nil {
		t.Errorf("columns with NoHeaders: %v", table.ColumnDefinitions)
	}
	if len(table.Rows) != 2 || len(table.Rows[0].Cells) != 9 {
		t.Errorf("rows = %v", table.Rows)
	}
}

func TestColumnsAreCopied(t *testing.T) {
	table, err := Table(&corev1.PodList{}, opts())
	if err != nil {
		t.Fatal(err)
	}
	table.ColumnDefinitions[0].Name = "changed"
	if p, _ := For(corev1.SchemeGroupVersion.WithKind("Pod")); p.Columns[0].Name != "Name" {
		t.Error("changing a table changed the registered columns")
	}
}

func TestNowDefaultsToTheClock(t *testing.T) {
	p := newPod(corev1.PodRunning)
	p.CreationTimestamp = metav1.NewTime(time.Now().Add(-3 * time.Hour))
	table, err := Table(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := table.Rows[0].Cells[4]; got != "3h" && got != "3h1m" {
		t.Errorf("age = %v, want 3h", got)
	}
}

func TestDefaultTable(t *testing.T) {
	cr := &unstructured.Unstructured{}
	cr.SetAPIVersion("example.com/v1")
	cr.SetKind("Widget")
	cr.SetName("w1")
	cr.SetNamespace("default")
	cr.SetCreationTimestamp(ago(time.Hour))
	list := &unstructured.UnstructuredList{Items: []unstructured.Unstructured{*cr}}
	list.SetResourceVersion("7")

	for _, obj := range []runtime.Object{cr, list} {
		table, err := Table(obj, opts())
		if err != nil {
			t.Fatalf("%T: %v", obj, err)
		}
		cols := table.ColumnDefinitions
		if len(cols) != 2 || cols[0].Name != "Name" || cols[0].Type != "string" || cols[0].Format != "name" ||
			cols[1].Name != "Created At" || cols[1].Type != "date" || cols[1].Format != "" {
			t.Errorf("%T: columns = %+v", obj, cols)
		}
		if len(table.Rows) != 1 {
			t.Fatalf("%T: %d rows", obj, len(table.Rows))
		}
		checkCells(t, table.Rows[0].Cells, []interface{}{"w1", "2026-03-04T11:00:00Z"})
		if p, ok := table.Rows[0].Object.Object.(*metav1.PartialObjectMetadata); !ok || p.Name != "w1" {
			t.Errorf("%T: row object = %#v", obj, table.Rows[0].Object.Object)
		}
	}
}

func TestRegistry(t *testing.T) {
	if p, ok := For(appsv1.SchemeGroupVersion.WithKind("Deployment")); !ok || p != deploymentPrinter {
		t.Error("For(Deployment) is not the deployment printer")
	}
	if p, ok := For(rbacv1.SchemeGroupVersion.WithKind("Role")); !ok || p != Default() {
		t.Error("For(Role) is not the default printer")
	}
	if p, ok := For(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}); ok || p != Default() {
		t.Error("For(unknown kind) is not (Default, false)")
	}
	if p, gvk, ok := ForObject(&appsv1.DeploymentList{}); !ok || p != deploymentPrinter || gvk.Kind != "Deployment" {
		t.Errorf("ForObject(DeploymentList) = %v, %v", gvk, ok)
	}
	kinds := Kinds()
	if len(kinds) < 40 {
		t.Errorf("only %d kinds registered", len(kinds))
	}

	// Kinds can be added, and replace the default.
	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
	custom := NewPrinter([]metav1.TableColumnDefinition{nameColumn, {Name: "Color", Type: "string"}},
		func(obj *unstructured.Unstructured, _ Options) ([]interface{}, error) {
			color, _, _ := unstructured.NestedString(obj.Object, "spec", "color")
			return []interface{}{obj.GetName(), color}, nil
		})
	Register(gvk, nil, nil, custom)
	if p, ok := For(gvk); !ok || p != custom {
		t.Error("registered printer not found")
	}
	rows, err := custom.Rows([]runtime.Object{&unstructured.Unstructured{Object: map[string]interface{}{
		"metadata": map[string]interface{}{"name": "g"}, "spec": map[string]interface{}{"color": "red"},
	}}}, opts())
	if err != nil {
		t.Fatal(err)
	}
	checkCells(t, rows[0].Cells, []interface{}{"g", "red"})
	if _, err := custom.Rows([]runtime.Object{&corev1.Pod{}}, opts()); err == nil {
		t.Error("printing a pod with the gadget printer did not fail")
	}
}

func TestSetIncludeObject(t *testing.T) {
	list := podList()

	table, _ := Table(list, opts())
	if err := SetIncludeObject(table, metav1.IncludeNone, list, schema.GroupVersionKind{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range table.Rows {
		if r.Object.Object != nil || r.Object.Raw != nil {
			t.Errorf("None left %v", r.Object)
		}
	}

	if err := SetIncludeObject(table, metav1.IncludeMetadata, list, schema.GroupVersionKind{}); err != nil {
		t.Fatal(err)
	}
	if p, ok := table.Rows[1].Object.Object.(*metav1.PartialObjectMetadata); !ok || p.Name != "b" || p.Kind != "PartialObjectMetadata" {
		t.Errorf("Metadata: %#v", table.Rows[1].Object.Object)
	}

	if err := SetIncludeObject(table, metav1.IncludeObject, list, schema.GroupVersionKind{}); err != nil {
		t.Fatal(err)
	}
	pod, ok := table.Rows[0].Object.Object.(*corev1.Pod)
	if !ok || pod.Name != "a" || pod.APIVersion != "v1" || pod.Kind != "Pod" || pod.Status.PodIP != "10.42.0.7" {
		t.Fatalf("Object: %#v", table.Rows[0].Object.Object)
	}
	if list.Items[0].Kind != "" {
		t.Error("Object changed the caller's item")
	}

	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v2", Kind: "Pod"}
	if err := SetIncludeObject(table, metav1.IncludeObject, list, gvk); err != nil {
		t.Fatal(err)
	}
	if got := table.Rows[1].Object.Object.GetObjectKind().GroupVersionKind(); got != gvk {
		t.Errorf("Object with a kind: %v", got)
	}

	if err := SetIncludeObject(table, "Everything", list, schema.GroupVersionKind{}); err == nil ||
		!strings.Contains(err.Error(), `unrecognized includeObject value: "Everything"`) {
		t.Errorf("bad policy: %v", err)
	}
}

// TestJSONRoundTrip encodes a table with the JSON serializer of
// apimachinery, as the API server does, and decodes it as kubectl does.
func TestJSONRoundTrip(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	serializer := jsonserializer.NewSerializerWithOptions(jsonserializer.DefaultMetaFactory, scheme, scheme, jsonserializer.SerializerOptions{})

	list := podList()
	list.Items[0].Status.ContainerStatuses[0].RestartCount = 2
	deployment := &appsv1.Deployment{
		ObjectMeta: objMeta("web", time.Hour),
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Selector: selector("app", "web")},
		Status:     appsv1.DeploymentStatus{ReadyReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
	}

	for _, obj := range []runtime.Object{list, deployment} {
		table, err := Table(obj, opts())
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := serializer.Encode(table, &buf); err != nil {
			t.Fatalf("encode: %v", err)
		}

		// The wire format kubectl reads.
		var wire map[string]interface{}
		if err := json.Unmarshal(buf.Bytes(), &wire); err != nil {
			t.Fatal(err)
		}
		if wire["kind"] != "Table" || wire["apiVersion"] != "meta.k8s.io/v1" {
			t.Errorf("wire type: %v %v", wire["apiVersion"], wire["kind"])
		}
		col := wire["columnDefinitions"].([]interface{})[0].(map[string]interface{})
		if col["name"] != "Name" || col["type"] != "string" || col["format"] != "name" {
			t.Errorf("wire column: %v", col)
		}
		row := wire["rows"].([]interface{})[0].(map[string]interface{})
		object := row["object"].(map[string]interface{})
		if object["kind"] != "PartialObjectMetadata" || object["apiVersion"] != "meta.k8s.io/v1" {
			t.Errorf("wire row object: %v", object)
		}

		decoded, gvk, err := serializer.Decode(buf.Bytes(), nil, nil)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if *gvk != TableGVK {
			t.Errorf("decoded kind %v", gvk)
		}
		got, ok := decoded.(*metav1.Table)
		if !ok {
			t.Fatalf("decoded %T", decoded)
		}
		if !reflect.DeepEqual(got.ColumnDefinitions, table.ColumnDefinitions) {
			t.Errorf("columns changed:\n got %+v\nwant %+v", got.ColumnDefinitions, table.ColumnDefinitions)
		}
		if got.ListMeta.ResourceVersion != table.ListMeta.ResourceVersion || got.Continue != table.Continue {
			t.Errorf("list meta changed: %+v", got.ListMeta)
		}
		if len(got.Rows) != len(table.Rows) {
			t.Fatalf("%d rows, want %d", len(got.Rows), len(table.Rows))
		}
		for i := range got.Rows {
			// Integers stay int64 through the apimachinery decoder.
			checkCells(t, got.Rows[i].Cells, table.Rows[i].Cells)
			inner, _, err := serializer.Decode(got.Rows[i].Object.Raw, nil, nil)
			if err != nil {
				t.Fatalf("decode row object: %v", err)
			}
			want := table.Rows[i].Object.Object.(*metav1.PartialObjectMetadata)
			if p, ok := inner.(*metav1.PartialObjectMetadata); !ok || p.Name != want.Name || p.Namespace != want.Namespace {
				t.Errorf("row object: %#v", inner)
			}
		}
	}
}
