package strategy

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
)

// builtinKinds is every kind labctl serves, with its scope.
var builtinKinds = []struct {
	gvk        schema.GroupVersionKind
	namespaced bool
}{
	{schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, false},
	{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Service"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Endpoints"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Node"}, false},
	{schema.GroupVersionKind{Version: "v1", Kind: "Event"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolume"}, false},
	{schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ResourceQuota"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "LimitRange"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "PodTemplate"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ControllerRevision"}, true},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, true},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, true},
	{schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"}, true},
	{schema.GroupVersionKind{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}, true},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}, true},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "IngressClass"}, false},
	{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, true},
	{schema.GroupVersionKind{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}, true},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, false},
	{schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}, false},
	{schema.GroupVersionKind{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}, false},
	{schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}, true},
	{schema.GroupVersionKind{Group: "events.k8s.io", Version: "v1", Kind: "Event"}, true},
	{schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}, true},
	{schema.GroupVersionKind{Group: "scheduling.k8s.io", Version: "v1", Kind: "PriorityClass"}, false},
	{schema.GroupVersionKind{Group: "certificates.k8s.io", Version: "v1", Kind: "CertificateSigningRequest"}, false},
	{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, false},
}

func TestEveryKindHasAStrategy(t *testing.T) {
	for _, k := range builtinKinds {
		if _, ok := For(k.gvk); !ok {
			t.Errorf("no strategy for %v", k.gvk)
			continue
		}
		namespaced, ok := NamespaceScoped(k.gvk)
		if !ok || namespaced != k.namespaced {
			t.Errorf("NamespaceScoped(%v) = %v, %v; want %v", k.gvk, namespaced, ok, k.namespaced)
		}
	}
	if got := len(Kinds()); got != len(builtinKinds) {
		t.Errorf("Kinds() has %d kinds, want the %d built-in ones: %v", got, len(builtinKinds), Kinds())
	}
	if _, ok := For(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}); ok {
		t.Error("For found a strategy for an unknown kind")
	}
}

// TestEveryStrategyHandlesItsType runs every method of every strategy on a
// minimal object of its type: nothing may panic, Fields always has the
// metadata fields and the status update keeps the spec.
func TestEveryStrategyHandlesItsType(t *testing.T) {
	for _, k := range builtinKinds {
		t.Run(k.gvk.String(), func(t *testing.T) {
			s := mustFor(t, k.gvk)
			obj, err := scheme.Scheme.New(k.gvk)
			if k.gvk.Group == apiextensionsv1.GroupName {
				obj, err = &apiextensionsv1.CustomResourceDefinition{}, nil
			}
			if err != nil {
				t.Fatal(err)
			}
			m := obj.(metav1.Object)
			m.SetName("x")
			if k.namespaced {
				m.SetNamespace("default")
			}
			m.SetResourceVersion("1")
			m.SetUID("4b7c3a3e-0000-0000-0000-000000000001")
			s.Default(obj)
			s.PrepareForCreate(obj)
			_ = s.Validate(obj)
			f := s.Fields(obj)
			if f["metadata.name"] != "x" {
				t.Errorf("Fields()[metadata.name] = %q", f["metadata.name"])
			}
			if _, ok := f["metadata.namespace"]; !ok {
				t.Error("Fields() has no metadata.namespace")
			}
			old := obj.DeepCopyObject()
			next := obj.DeepCopyObject()
			s.Default(next)
			s.PrepareForUpdate(next, old)
			if errs := s.ValidateUpdate(next, old); hasImmutabilityError(errs) {
				t.Errorf("an unchanged update is refused: %v", errs)
			}
			status := obj.DeepCopyObject()
			s.PrepareForStatusUpdate(status, old)
			_ = s.ValidateStatusUpdate(status, old)
		})
	}
}

func hasImmutabilityError(errs field.ErrorList) bool {
	for _, e := range errs {
		if strings.Contains(e.Detail, "immutable") || strings.Contains(e.Detail, "may not change") {
			return true
		}
	}
	return false
}

func TestWrongType(t *testing.T) {
	s := mustFor(t, v1.SchemeGroupVersion.WithKind("Pod"))
	errs := s.Validate(&v1.Service{})
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Errorf("Validate(wrong type) = %v, want one internal error", errs)
	}
	errs = s.ValidateUpdate(&v1.Pod{}, &appsv1.Deployment{})
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Errorf("ValidateUpdate(wrong type) = %v, want one internal error", errs)
	}
	defer func() {
		if recover() == nil {
			t.Error("Default(wrong type) did not panic")
		}
	}()
	s.Default(&v1.Service{})
}

// TestNamespaceRequiredIsLeftToTheServer: a namespaced object without a
// namespace gets no "metadata.namespace: Required" from the strategies.
func TestNamespaceRequiredIsLeftToTheServer(t *testing.T) {
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}
	checkErrs(t, create(t, v1.SchemeGroupVersion.WithKind("ConfigMap"), cm))
	// A namespace on a cluster-scoped kind is still an error.
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "default"}}
	checkErrs(t, create(t, v1.SchemeGroupVersion.WithKind("Namespace"), ns), forb("metadata.namespace"))
}

// TestObjectMeta covers the metadata rules every kind shares.
func TestObjectMeta(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ConfigMap")
	long := strings.Repeat("a", 256*1024)
	tests := []struct {
		name string
		meta metav1.ObjectMeta
		want []want
	}{
		{"valid", metav1.ObjectMeta{Name: "app-config", Namespace: "default", Labels: map[string]string{"app": "web"}}, nil},
		{"generateName", metav1.ObjectMeta{GenerateName: "app-", Name: "app-x7k2p", Namespace: "default"}, nil},
		{"no name", metav1.ObjectMeta{Namespace: "default"}, []want{reqd("metadata.name", "name or generateName is required")}},
		{"bad name", metav1.ObjectMeta{Name: "App_Config", Namespace: "default"}, []want{invd("metadata.name", "RFC 1123 subdomain")}},
		{"bad generateName", metav1.ObjectMeta{GenerateName: "App_", Name: "app-x", Namespace: "default"}, []want{inv("metadata.generateName")}},
		{"bad label key", metav1.ObjectMeta{Name: "c", Namespace: "default", Labels: map[string]string{"-app": "web"}}, []want{inv("metadata.labels")}},
		{"bad label value", metav1.ObjectMeta{Name: "c", Namespace: "default", Labels: map[string]string{"app": "web server"}}, []want{inv("metadata.labels")}},
		{"bad annotation key", metav1.ObjectMeta{Name: "c", Namespace: "default", Annotations: map[string]string{"a b": "x"}}, []want{inv("metadata.annotations")}},
		{"annotations too big", metav1.ObjectMeta{Name: "c", Namespace: "default", Annotations: map[string]string{"a": long}}, []want{tooLong("metadata.annotations")}},
		{"bad finalizer", metav1.ObjectMeta{Name: "c", Namespace: "default", Finalizers: []string{"cleanup"}}, []want{invd("metadata.finalizers[0]", "neither a standard finalizer name nor is it fully qualified")}},
		{"bad namespace", metav1.ObjectMeta{Name: "c", Namespace: "Default"}, []want{inv("metadata.namespace")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, create(t, gvk, &v1.ConfigMap{ObjectMeta: tt.meta}), tt.want...)
		})
	}
}

func TestObjectMetaUpdate(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ConfigMap")
	old := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default", ResourceVersion: "5", UID: "u1", Generation: 0}}
	cm := old.DeepCopy()
	cm.Name = "d"
	cm.UID = "u2"
	cm.ResourceVersion = ""
	checkErrs(t, update(t, gvk, cm, old),
		invd("metadata.name", "field is immutable"),
		invd("metadata.uid", "field is immutable"),
		invd("metadata.resourceVersion", "must be specified for an update"))
}

// TestGenerationCannotBeSetByClients: PrepareForUpdate carries generation
// over from the stored object, whatever the client sends.
func TestGenerationCannotBeSetByClients(t *testing.T) {
	s := mustFor(t, v1.SchemeGroupVersion.WithKind("ConfigMap"))
	old := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 3}}
	cm := old.DeepCopy()
	cm.Generation = 42
	s.PrepareForUpdate(cm, old)
	if cm.Generation != 3 {
		t.Errorf("generation = %d, want 3", cm.Generation)
	}
}

var _ runtime.Object = (*v1.Pod)(nil)
