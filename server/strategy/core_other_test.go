package strategy

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestConfigMap(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ConfigMap")
	tests := []struct {
		name string
		cm   v1.ConfigMap
		want []want
	}{
		{"kubectl create configmap", v1.ConfigMap{Data: map[string]string{"app.properties": "a=b", "MODE": "prod", "key-1": "x"}}, nil},
		{"bad key", v1.ConfigMap{Data: map[string]string{"my key": "x"}}, []want{invd("data[my key]", "a valid config key must consist of alphanumeric characters")}},
		{"dot dot key", v1.ConfigMap{Data: map[string]string{"..data": "x"}}, []want{invd("data[..data]", "must not start with '..'")}},
		{"key in both", v1.ConfigMap{Data: map[string]string{"a": "x"}, BinaryData: map[string][]byte{"a": []byte("y")}},
			[]want{invd("data[a]", "duplicate of key present in binaryData")}},
		{"too big", v1.ConfigMap{Data: map[string]string{"a": strings.Repeat("x", 1024*1024+1)}}, []want{tooLong(field.NewPath("").String())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := tt.cm.DeepCopy()
			cm.ObjectMeta = metav1.ObjectMeta{Name: "app", Namespace: "default"}
			checkErrs(t, create(t, gvk, cm), tt.want...)
		})
	}

	old := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", ResourceVersion: "1"}, Data: map[string]string{"a": "1"}, Immutable: ptr.To(true)}
	cm := old.DeepCopy()
	cm.Data["a"] = "2"
	cm.Immutable = nil
	checkErrs(t, update(t, gvk, cm, old),
		forbd("immutable", "field is immutable when `immutable` is set"),
		forbd("data", "field is immutable when `immutable` is set"))
}

func TestSecret(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("Secret")
	s := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"},
		StringData: map[string]string{"password": "hunter2"},
		Data:       map[string][]byte{"user": []byte("admin")},
	}
	checkErrs(t, create(t, gvk, s))
	if s.Type != v1.SecretTypeOpaque || s.StringData != nil || string(s.Data["password"]) != "hunter2" || string(s.Data["user"]) != "admin" {
		t.Errorf("defaults: type %q, data %v, stringData %v", s.Type, s.Data, s.StringData)
	}
	if f := mustFor(t, gvk).Fields(s); f["type"] != "Opaque" {
		t.Errorf("Fields() = %v", f)
	}

	tests := []struct {
		name string
		typ  v1.SecretType
		data map[string][]byte
		ann  map[string]string
		want []want
	}{
		{"tls", v1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}, nil, nil},
		{"tls without key", v1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c")}, nil, []want{req("data[tls.key]")}},
		{"tls empty", v1.SecretTypeTLS, nil, nil, []want{req("data[tls.crt]"), req("data[tls.key]")}},
		{"dockerconfigjson", v1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)}, nil, nil},
		{"dockerconfigjson missing", v1.SecretTypeDockerConfigJson, nil, nil, []want{req("data[.dockerconfigjson]")}},
		{"dockerconfigjson not JSON", v1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}, nil, []want{inv("data[.dockerconfigjson]")}},
		{"basic auth", v1.SecretTypeBasicAuth, nil, nil, []want{req("data[username]"), req("data[password]")}},
		{"ssh", v1.SecretTypeSSHAuth, nil, nil, []want{req("data[ssh-privatekey]")}},
		{"token", v1.SecretTypeServiceAccountToken, nil, nil, []want{req("metadata.annotations[kubernetes.io/service-account.name]")}},
		{"token with account", v1.SecretTypeServiceAccountToken, nil, map[string]string{"kubernetes.io/service-account.name": "default"}, nil},
		{"custom type", "example.com/custom", nil, nil, nil},
		{"bad key", v1.SecretTypeOpaque, map[string][]byte{"a/b": nil}, nil, []want{inv("data[a/b]")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", Annotations: tt.ann}, Type: tt.typ, Data: tt.data}
			checkErrs(t, create(t, gvk, s), tt.want...)
		})
	}

	old := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "1"}, Type: v1.SecretTypeOpaque}
	next := old.DeepCopy()
	next.Type = v1.SecretTypeBasicAuth
	next.Data = map[string][]byte{"username": []byte("u")}
	checkErrs(t, update(t, gvk, next, old), invd("type", "field is immutable"))
}

func TestServiceAccount(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ServiceAccount")
	checkErrs(t, create(t, gvk, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "default"}}))
	checkErrs(t, create(t, gvk, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "Builder", Namespace: "default"}}), inv("metadata.name"))
}

func TestNamespace(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("Namespace")
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dev"}, Status: v1.NamespaceStatus{Phase: v1.NamespaceTerminating}}
	checkErrs(t, create(t, gvk, ns))
	if ns.Labels[v1.LabelMetadataName] != "dev" || ns.Status.Phase != v1.NamespaceActive ||
		!apiequality.Semantic.DeepEqual(ns.Spec.Finalizers, []v1.FinalizerName{v1.FinalizerKubernetes}) {
		t.Errorf("namespace after create: %+v", ns)
	}
	f := mustFor(t, gvk).Fields(ns)
	if f["status.phase"] != "Active" || f["metadata.name"] != "dev" || f["name"] != "dev" {
		t.Errorf("Fields() = %v", f)
	}
	checkErrs(t, create(t, gvk, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.dev"}}), invd("metadata.name", "must not contain dots"))
	checkErrs(t, create(t, gvk, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: v1.NamespaceSpec{Finalizers: []v1.FinalizerName{"wait"}}}),
		inv("spec.finalizers[0]"))

	ns.ResourceVersion = "1"
	next := ns.DeepCopy()
	next.Spec.Finalizers = nil
	next.Labels = map[string]string{"team": "a"}
	next.Status.Phase = v1.NamespaceTerminating
	checkErrs(t, update(t, gvk, next, ns))
	if len(next.Spec.Finalizers) != 1 || next.Status.Phase != v1.NamespaceActive || next.Labels[v1.LabelMetadataName] != "dev" {
		t.Errorf("update kept what it may not: %+v", next)
	}

	s := mustFor(t, gvk)
	status := ns.DeepCopy()
	status.Status.Phase = v1.NamespaceTerminating
	s.PrepareForStatusUpdate(status, ns)
	checkErrs(t, s.ValidateStatusUpdate(status, ns), invd("status.Phase", "may only be 'Active' if `deletionTimestamp` is empty"))
}

func TestNode(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("Node")
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Spec:       v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}},
		Status: v1.NodeStatus{
			Capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourcePods: resource.MustParse("110")},
			Phase:    v1.NodeRunning,
		},
	}
	checkErrs(t, create(t, gvk, n))
	if n.Status.Phase != v1.NodeRunning || n.Status.Allocatable.Cpu().String() != "4" {
		t.Errorf("node status after create: %+v", n.Status)
	}
	n.Spec.Unschedulable = true
	if f := mustFor(t, gvk).Fields(n); f["spec.unschedulable"] != "true" {
		t.Errorf("Fields() = %v", f)
	}
	n.ResourceVersion = "1"
	next := n.DeepCopy()
	next.Spec.PodCIDRs = []string{"10.244.2.0/24"}
	next.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoRun"}}
	checkErrs(t, update(t, gvk, next, n),
		forb("spec.podCIDRs"),
		unsup("metadata.taints[0].effect"))
}

func TestCoreEvent(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("Event")
	e := &v1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.17a", Namespace: "default"},
		InvolvedObject: v1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u1", APIVersion: "v1"},
		Reason:         "Scheduled",
		Message:        "Successfully assigned default/web to node-1",
		Source:         v1.EventSource{Component: "default-scheduler"},
		Type:           v1.EventTypeNormal,
		Count:          1,
	}
	checkErrs(t, create(t, gvk, e))
	f := mustFor(t, gvk).Fields(e)
	for k, v := range map[string]string{
		"involvedObject.kind": "Pod", "involvedObject.name": "web", "involvedObject.namespace": "default",
		"involvedObject.uid": "u1", "reason": "Scheduled", "source": "default-scheduler", "type": "Normal",
		"reportingComponent": "",
	} {
		if f[k] != v {
			t.Errorf("Fields()[%s] = %q, want %q", k, f[k], v)
		}
	}
	other := e.DeepCopy()
	other.InvolvedObject.Namespace = "kube-system"
	checkErrs(t, create(t, gvk, other), invd("involvedObject.namespace", "does not match event.namespace"))
}

func TestPersistentVolume(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("PersistentVolume")
	fixed := metav1.Date(2025, 1, 2, 3, 4, 5, 0, metav1.Now().Location())
	defer func(old func() metav1.Time) { now = old }(now)
	now = func() metav1.Time { return fixed }
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/data/pv-1"}},
		},
	}
	checkErrs(t, create(t, gvk, pv))
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain || *pv.Spec.VolumeMode != v1.PersistentVolumeFilesystem ||
		pv.Status.Phase != v1.VolumePending || !pv.Status.LastPhaseTransitionTime.Equal(&fixed) || *pv.Spec.HostPath.Type != v1.HostPathUnset {
		t.Errorf("defaults: %+v", pv)
	}
	bad := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-2"}}
	checkErrs(t, create(t, gvk, bad),
		req("spec.accessModes"), req("spec.capacity"), unsup("spec.capacity"), reqd("spec", "must specify a volume type"))

	pv.ResourceVersion = "1"
	next := pv.DeepCopy()
	next.Spec.HostPath.Path = "/other"
	checkErrs(t, update(t, gvk, next, pv), forbd("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"))
}

func TestPersistentVolumeClaim(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("PersistentVolumeClaim")
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	checkErrs(t, create(t, gvk, pvc))
	if *pvc.Spec.VolumeMode != v1.PersistentVolumeFilesystem || pvc.Status.Phase != v1.ClaimPending {
		t.Errorf("defaults: %+v", pvc)
	}
	tests := []struct {
		name   string
		mutate func(*v1.PersistentVolumeClaim)
		want   []want
	}{
		{"no access modes", func(p *v1.PersistentVolumeClaim) { p.Spec.AccessModes = nil }, []want{reqd("spec.accessModes", "at least 1 access mode is required")}},
		{"bad access mode", func(p *v1.PersistentVolumeClaim) { p.Spec.AccessModes = []v1.PersistentVolumeAccessMode{"ReadMostly"} }, []want{unsup("spec.accessModes")}},
		{"no storage", func(p *v1.PersistentVolumeClaim) { p.Spec.Resources.Requests = nil }, []want{req("spec.resources[storage]")}},
		{"zero storage", func(p *v1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests = v1.ResourceList{v1.ResourceStorage: resource.MustParse("0")}
		}, []want{invd("spec.resources[storage]", "must be greater than zero")}},
		{"bad volume mode", func(p *v1.PersistentVolumeClaim) { p.Spec.VolumeMode = ptr.To[v1.PersistentVolumeMode]("Disk") }, []want{unsup("spec.volumeMode")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pvc.DeepCopy()
			tt.mutate(p)
			checkErrs(t, mustFor(t, gvk).Validate(p), tt.want...)
		})
	}

	pvc.ResourceVersion = "1"
	next := pvc.DeepCopy()
	next.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
	checkErrs(t, update(t, gvk, next, pvc), forbd("spec", "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))

	// A bound claim may grow.
	bound := pvc.DeepCopy()
	bound.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}
	bound.Spec.VolumeName = "pv-1"
	grown := bound.DeepCopy()
	grown.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("2Gi")
	checkErrs(t, update(t, gvk, grown, bound))
}

func TestResourceQuota(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ResourceQuota")
	rq := &v1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "compute", Namespace: "dev"},
		Spec: v1.ResourceQuotaSpec{Hard: v1.ResourceList{
			"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("4"), "count/deployments.apps": resource.MustParse("5"),
		}},
		Status: v1.ResourceQuotaStatus{Used: v1.ResourceList{"pods": resource.MustParse("3")}},
	}
	checkErrs(t, create(t, gvk, rq))
	if rq.Status.Used != nil {
		t.Errorf("status not reset: %+v", rq.Status)
	}
	bad := rq.DeepCopy()
	bad.Spec.Hard = v1.ResourceList{"pods": resource.MustParse("1.5"), "widgets": resource.MustParse("1")}
	bad.Spec.Scopes = []v1.ResourceQuotaScope{v1.ResourceQuotaScopeBestEffort, v1.ResourceQuotaScopeNotBestEffort}
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		invd("spec.hard[pods]", "must be an integer"),
		invd("spec.hard[widgets]", "must be a standard resource type or fully qualified"),
		invd("spec.hard[widgets]", "must be a standard resource for quota"),
		invd("spec.scopes", "conflicting scopes"))
}

func TestLimitRange(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("LimitRange")
	lr := &v1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "dev"},
		Spec: v1.LimitRangeSpec{Limits: []v1.LimitRangeItem{{
			Type: v1.LimitTypeContainer,
			Max:  v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")},
			Min:  v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
		}}},
	}
	checkErrs(t, create(t, gvk, lr))
	item := lr.Spec.Limits[0]
	if item.Default.Cpu().String() != "2" || item.DefaultRequest.Cpu().String() != "2" || item.DefaultRequest.Memory().String() != "64Mi" {
		t.Errorf("defaults: %+v", item)
	}
	bad := lr.DeepCopy()
	bad.Spec.Limits[0].Min[v1.ResourceCPU] = resource.MustParse("3")
	bad.Spec.Limits = append(bad.Spec.Limits, v1.LimitRangeItem{Type: "Everything"})
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		invd("spec.limits[0].min[cpu]", "min value 3 is greater than max value 2"),
		invd("spec.limits[0].default[cpu]", "min value 3 is greater than default value 2"),
		invd("spec.limits[0].defaultRequest[cpu]", "min value 3 is greater than default request value 2"),
		invd("spec.limits[1].type", "must be a standard limit type or fully qualified"))
}
