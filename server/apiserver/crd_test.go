package apiserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// crontabCRD is the CRD of upstream's documentation, with two versions
// (v1 stored), a schema with a minimum, a default and an int-or-string,
// printer columns, and the status and scale subresources.
func crontabCRD(scope apiextensionsv1.ResourceScope) *apiextensionsv1.CustomResourceDefinition {
	schemaFor := func(extra string) *apiextensionsv1.CustomResourceValidation {
		props := map[string]apiextensionsv1.JSONSchemaProps{
			"cronSpec": {Type: "string", Description: "when it runs"},
			"image":    {Type: "string"},
			"replicas": {Type: "integer", Minimum: ptr.To(1.0), Default: &apiextensionsv1.JSON{Raw: []byte("1")}},
			"port":     {XIntOrString: true},
			"mode":     {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"fast"`)}, {Raw: []byte(`"slow"`)}}},
		}
		if extra != "" {
			props[extra] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"spec": {Type: "object", Required: []string{"cronSpec"}, Properties: props},
				"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas": {Type: "integer"}, "selector": {Type: "string"}}},
			},
		}}
	}
	subresources := &apiextensionsv1.CustomResourceSubresources{
		Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
		Scale: &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas",
			StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".status.selector")},
	}
	columns := []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Spec", Type: "string", JSONPath: ".spec.cronSpec"},
		{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "crontabs.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "crontabs", Singular: "crontab", Kind: "CronTab",
				ShortNames: []string{"ct"}, Categories: []string{"all"}},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schemaFor(""), Subresources: subresources, AdditionalPrinterColumns: columns},
				{Name: "v1beta1", Served: true, Schema: schemaFor("legacy"), Subresources: subresources,
					Deprecated: true},
			},
		},
	}
}

var crontabs = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}

func createCRD(t *testing.T, cfg *rest.Config, crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *apiextensionsv1.CustomResourceDefinition
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("the CRD was not established: %v (%+v)", err, got.Status)
	}
	return got
}

func crontab(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stable.example.com/v1", "kind": "CronTab",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
}

func TestCustomResources(t *testing.T) {
	cfg := start(t, memStore(t))
	ctx := context.Background()
	crd := createCRD(t, cfg, crontabCRD(apiextensionsv1.NamespaceScoped))
	if crd.Status.AcceptedNames.Kind != "CronTab" || len(crd.Status.StoredVersions) != 1 || crd.Status.StoredVersions[0] != "v1" {
		t.Errorf("CRD status: %+v", crd.Status)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	cts := dyn.Resource(crontabs).Namespace("default")

	t.Run("discovery", func(t *testing.T) {
		dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
		list, err := dc.ServerResourcesForGroupVersion("stable.example.com/v1")
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, r := range list.APIResources {
			if r.Name == "crontabs" {
				found = r.Namespaced && r.Kind == "CronTab" && strings.Join(r.ShortNames, ",") == "ct" && strings.Join(r.Categories, ",") == "all"
			}
		}
		if !found {
			t.Errorf("crontabs in discovery: %+v", list.APIResources)
		}
		groups, err := dc.ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups {
			if g.Name == "stable.example.com" && (g.PreferredVersion.Version != "v1" || len(g.Versions) != 2) {
				t.Errorf("group: %+v", g)
			}
		}
	})

	t.Run("create, default, prune, get", func(t *testing.T) {
		obj, err := cts.Create(ctx, crontab("a", map[string]any{"cronSpec": "* * * * */5", "image": "img", "unknown": "x", "port": "http"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); r != 1 {
			t.Errorf("replicas not defaulted to 1: %v", obj.Object["spec"])
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "unknown"); found {
			t.Errorf("unknown field not pruned: %v", obj.Object["spec"])
		}
		if obj.GetGeneration() != 1 || obj.GetUID() == "" {
			t.Errorf("metadata: %+v", obj.Object["metadata"])
		}
		got, err := cts.Get(ctx, "a", metav1.GetOptions{})
		if err != nil || got.GetResourceVersion() != obj.GetResourceVersion() {
			t.Fatalf("get: %v", err)
		}
		// The other version serves the same object.
		old, err := dyn.Resource(crontabs.GroupVersion().WithResource("crontabs").GroupResource().WithVersion("v1beta1")).Namespace("default").Get(ctx, "a", metav1.GetOptions{})
		if err != nil || old.GetAPIVersion() != "stable.example.com/v1beta1" {
			t.Fatalf("get as v1beta1: %v %v", err, old)
		}
	})

	t.Run("validation", func(t *testing.T) {
		_, err := cts.Create(ctx, crontab("bad", map[string]any{"cronSpec": "x", "replicas": int64(0), "mode": "medium"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("replicas 0: %v", err)
		}
		causes := map[string]bool{}
		for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
			causes[c.Field] = true
		}
		if !causes["spec.replicas"] || !causes["spec.mode"] || !strings.Contains(err.Error(), "should be greater than or equal to 1") {
			t.Errorf("causes: %v (%v)", causes, err)
		}
		_, err = cts.Create(ctx, crontab("bad", map[string]any{"image": "x"}), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.cronSpec: Required value") {
			t.Errorf("missing required field: %v", err)
		}
		_, err = cts.Create(ctx, crontab("bad", map[string]any{"cronSpec": "x", "extra": "y"}), metav1.CreateOptions{FieldValidation: "Strict"})
		if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.extra"`) {
			t.Errorf("strict field validation: %v", err)
		}
	})

	t.Run("table", func(t *testing.T) {
		var table metav1.Table
		req, _ := http.NewRequestWithContext(ctx, "GET", cfg.Host+"/apis/stable.example.com/v1/namespaces/default/crontabs", nil)
		req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &table); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range table.ColumnDefinitions {
			names = append(names, c.Name)
		}
		if strings.Join(names, ",") != "Name,Spec,Replicas,Age" || len(table.Rows) != 1 {
			t.Fatalf("table: %s", raw)
		}
		if cells := table.Rows[0].Cells; cells[0] != "a" || cells[1] != "* * * * */5" || cells[2] != float64(1) {
			t.Errorf("cells: %v", cells)
		}
	})

	t.Run("status and scale", func(t *testing.T) {
		obj, err := cts.Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Status is ignored by a main-resource update, and the generation
		// moves only with the spec.
		unstructured.SetNestedField(obj.Object, int64(7), "status", "replicas")
		up, err := cts.Update(ctx, obj, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(up.Object, "status"); found || up.GetGeneration() != 1 {
			t.Errorf("update set status or moved the generation: %v gen %d", up.Object["status"], up.GetGeneration())
		}
		unstructured.SetNestedField(up.Object, int64(2), "status", "replicas")
		unstructured.SetNestedField(up.Object, "app=a", "status", "selector")
		unstructured.SetNestedField(up.Object, "changed", "spec", "image")
		st, err := cts.UpdateStatus(ctx, up, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img, _, _ := unstructured.NestedString(st.Object, "spec", "image"); img != "img" {
			t.Errorf("a status update changed the spec: %v", st.Object["spec"])
		}
		if r, _, _ := unstructured.NestedInt64(st.Object, "status", "replicas"); r != 2 {
			t.Errorf("status: %v", st.Object["status"])
		}
		unstructured.SetNestedField(st.Object, "changed", "spec", "image")
		up, err = cts.Update(ctx, st, metav1.UpdateOptions{})
		if err != nil || up.GetGeneration() != 2 {
			t.Fatalf("spec update: generation %d, %v", up.GetGeneration(), err)
		}
	})

	t.Run("patches", func(t *testing.T) {
		p, err := cts.Patch(ctx, "a", types.MergePatchType, []byte(`{"spec":{"image":"merged"}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img, _, _ := unstructured.NestedString(p.Object, "spec", "image"); img != "merged" {
			t.Errorf("merge patch: %v", p.Object["spec"])
		}
		p, err = cts.Patch(ctx, "a", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/image","value":"json"}]`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img, _, _ := unstructured.NestedString(p.Object, "spec", "image"); img != "json" {
			t.Errorf("json patch: %v", p.Object["spec"])
		}
		_, err = cts.Patch(ctx, "a", types.StrategicMergePatchType, []byte(`{"spec":{"image":"smp"}}`), metav1.PatchOptions{})
		if !apierrors.IsUnsupportedMediaType(err) {
			t.Errorf("strategic merge patch on a custom resource: %v", err)
		}
	})

	t.Run("informer", func(t *testing.T) {
		factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, "default", nil)
		inf := factory.ForResource(crontabs).Informer()
		added := make(chan string, 10)
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
			added <- obj.(*unstructured.Unstructured).GetName()
		}})
		stop := make(chan struct{})
		defer close(stop)
		factory.Start(stop)
		if !cache.WaitForCacheSync(stop, inf.HasSynced) {
			t.Fatal("informer did not sync")
		}
		if _, err := cts.Create(ctx, crontab("b", map[string]any{"cronSpec": "b"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		timeout := time.After(10 * time.Second)
		for !seen["a"] || !seen["b"] {
			select {
			case n := <-added:
				seen[n] = true
			case <-timeout:
				t.Fatalf("informer saw %v", seen)
			}
		}
	})

	t.Run("deleting the CRD deletes its objects", func(t *testing.T) {
		ext := apiextensionsclient.NewForConfigOrDie(cfg)
		if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Fatalf("the CRD stayed: %v", err)
		}
		if _, err := cts.List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("crontabs still served: %v", err)
		}
		// Made again, it has no objects left from before.
		createCRD(t, cfg, crontabCRD(apiextensionsv1.NamespaceScoped))
		list, err := cts.List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("objects after the CRD came back: %v %v", list, err)
		}
	})
}

func TestCRDValidation(t *testing.T) {
	cfg := start(t, memStore(t))
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	bad := crontabCRD(apiextensionsv1.ClusterScoped)
	bad.Name = "wrong.stable.example.com"
	bad.Spec.Versions[1].Storage = true
	bad.Spec.Versions[0].Schema = nil
	_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("an invalid CRD: %v", err)
	}
	for _, want := range []string{`metadata.name: Invalid value: "wrong.stable.example.com": must be spec.names.plural+"."+spec.group`,
		"must have exactly one version marked as storage version", "spec.versions[0].schema.openAPIV3Schema: Required value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	// A name clash within the group: the second CRD's names are refused.
	createCRD(t, cfg, crontabCRD(apiextensionsv1.ClusterScoped))
	clash := crontabCRD(apiextensionsv1.ClusterScoped)
	clash.Name = "othertabs.stable.example.com"
	clash.Spec.Names.Plural, clash.Spec.Names.Singular, clash.Spec.Names.ShortNames = "othertabs", "othertab", nil
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, clash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, clash.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionFalse && c.Reason == "KindConflict" {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Errorf("the clashing CRD's NamesAccepted: %v", err)
	}
	// Namespaced objects of a cluster-scoped kind do not exist.
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	if _, err := dyn.Resource(crontabs).Create(ctx, crontab("cluster", map[string]any{"cronSpec": "x"}), metav1.CreateOptions{}); err != nil {
		t.Errorf("a cluster-scoped custom object: %v", err)
	}
}
