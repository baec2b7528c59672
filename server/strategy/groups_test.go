package strategy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestHorizontalPodAutoscalerV2(t *testing.T) {
	gvk := autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:    5,
			Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3},
	}
	checkErrs(t, create(t, gvk, h))
	if *h.Spec.MinReplicas != 1 || h.Status.CurrentReplicas != 0 {
		t.Errorf("minReplicas %d, status %+v", *h.Spec.MinReplicas, h.Status)
	}
	cpu := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: v1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
	}}
	if !apiequality.Semantic.DeepEqual(h.Spec.Metrics, []autoscalingv2.MetricSpec{cpu}) {
		t.Errorf("metrics = %+v", h.Spec.Metrics)
	}
	up, down := h.Spec.Behavior.ScaleUp, h.Spec.Behavior.ScaleDown
	if *up.StabilizationWindowSeconds != 0 || len(up.Policies) != 2 || *up.SelectPolicy != autoscalingv2.MaxChangePolicySelect ||
		down.StabilizationWindowSeconds != nil || len(down.Policies) != 1 || down.Policies[0].Value != 100 {
		t.Errorf("behavior = up %+v, down %+v", up, down)
	}

	bad := h.DeepCopy()
	bad.Spec.MinReplicas = ptr.To[int32](3)
	bad.Spec.MaxReplicas = 2
	bad.Spec.ScaleTargetRef.Name = ""
	bad.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: "Magic"}}
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		invd("spec.maxReplicas", "must be greater than or equal to `minReplicas`"),
		req("spec.scaleTargetRef.name"),
		unsup("spec.metrics[0].type"))
}

func TestHorizontalPodAutoscalerV1(t *testing.T) {
	gvk := autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")
	// kubectl autoscale deployment web --max=5 --cpu-percent=0
	h := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:                    5,
			TargetCPUUtilizationPercentage: ptr.To[int32](50),
		},
	}
	checkErrs(t, create(t, gvk, h))
	if *h.Spec.MinReplicas != 1 {
		t.Errorf("minReplicas = %d", *h.Spec.MinReplicas)
	}
	h.Spec.TargetCPUUtilizationPercentage = ptr.To[int32](0)
	h.Spec.MaxReplicas = 0
	checkErrs(t, mustFor(t, gvk).Validate(h),
		invd("spec.maxReplicas", "must be greater than 0"),
		invd("spec.maxReplicas", "must be greater than or equal to `minReplicas`"),
		invd("spec.metrics[0].resource.target.averageUtilization", "must be greater than 0"))
}

func pathType(p networkingv1.PathType) *networkingv1.PathType { return &p }

// kubectlCreateIngress is what `kubectl create ingress web
// --rule="web.example.com/*=web:80"` sends.
func kubectlCreateIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "web.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path:     "/",
				PathType: pathType(networkingv1.PathTypePrefix),
				Backend:  networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

func TestIngress(t *testing.T) {
	gvk := networkingv1.SchemeGroupVersion.WithKind("Ingress")
	ing := kubectlCreateIngress()
	checkErrs(t, create(t, gvk, ing))
	if ing.Generation != 1 {
		t.Errorf("generation = %d", ing.Generation)
	}
	tests := []struct {
		name   string
		mutate func(*networkingv1.Ingress)
		want   []want
	}{
		{"wildcard host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.com" }, nil},
		{"IP host", func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }, []want{invd("spec.rules[0].host", "must be a DNS name, not an IP address")}},
		{"no pathType", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil },
			[]want{reqd("spec.rules[0].http.paths[0].pathType", "pathType must be specified")}},
		{"bad pathType", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = pathType("Regex") },
			[]want{unsup("spec.rules[0].http.paths[0].pathType")}},
		{"relative path", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "api" },
			[]want{invd("spec.rules[0].http.paths[0].path", "must be an absolute path")}},
		{"path with //", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "/api//v1" },
			[]want{invd("spec.rules[0].http.paths[0].path", "must not contain '//'")}},
		{"no backend port", func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{}
		},
			[]want{reqd("spec.rules[0].http.paths[0].backend", "port name or number is required")}},
		{"no rules or backend", func(i *networkingv1.Ingress) { i.Spec.Rules = nil },
			[]want{invd("spec", "either `defaultBackend` or `rules` must be specified")}},
		{"no paths", func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths = nil }, []want{req("spec.rules[0].http.paths")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := kubectlCreateIngress()
			tt.mutate(i)
			checkErrs(t, create(t, gvk, i), tt.want...)
		})
	}
}

func TestIngressClass(t *testing.T) {
	gvk := networkingv1.SchemeGroupVersion.WithKind("IngressClass")
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: networkingv1.IngressClassSpec{
			Controller: "k8s.io/ingress-nginx",
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "IngressParameters", Name: "p"},
		},
	}
	checkErrs(t, create(t, gvk, ic))
	if *ic.Spec.Parameters.Scope != networkingv1.IngressClassParametersReferenceScopeCluster {
		t.Errorf("scope = %v", *ic.Spec.Parameters.Scope)
	}
	ic.ResourceVersion = "1"
	next := ic.DeepCopy()
	next.Spec.Controller = "example.com/other"
	checkErrs(t, update(t, gvk, next, ic), invd("spec.controller", "field is immutable"))
	checkErrs(t, create(t, gvk, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: networkingv1.IngressClassSpec{Controller: "nginx"}}),
		inv("spec.controller"))
}

func TestNetworkPolicy(t *testing.T) {
	gvk := networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-web", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(80))}},
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}}},
		},
	}
	checkErrs(t, create(t, gvk, np))
	if *np.Spec.Ingress[0].Ports[0].Protocol != v1.ProtocolTCP ||
		!apiequality.Semantic.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) ||
		np.Generation != 1 {
		t.Errorf("defaults: %+v", np.Spec)
	}
	bad := np.DeepCopy()
	bad.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{}}
	bad.Spec.Egress[0].To[0].IPBlock.Except = []string{"192.168.0.0/16"}
	bad.Spec.PolicyTypes = []networkingv1.PolicyType{"Sideways"}
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		reqd("spec.ingress[0].from[0]", "must specify a peer"),
		invd("spec.egress[0].to[0].ipBlock.except[0]", "must be a strict subset of `cidr`"),
		unsup("spec.policyTypes[0]"))
}

func TestEndpointSlice(t *testing.T) {
	gvk := discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice")
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}},
	}
	checkErrs(t, create(t, gvk, es))
	if *es.Ports[0].Name != "" || *es.Ports[0].Protocol != v1.ProtocolTCP || es.Generation != 1 {
		t.Errorf("defaults: %+v", es)
	}
	es.ResourceVersion = "1"
	next := es.DeepCopy()
	next.Endpoints[0].Addresses = []string{"10.244.0.6"}
	checkErrs(t, update(t, gvk, next, es))
	if next.Generation != 2 {
		t.Errorf("generation = %d, want 2", next.Generation)
	}
	bad := next.DeepCopy()
	bad.AddressType = discoveryv1.AddressTypeIPv6
	bad.Endpoints[0].Addresses = []string{"fe80::1"}
	checkErrs(t, update(t, gvk, bad, es),
		invd("endpoints[0].addresses[0]", "link-local"),
		invd("addressType", "field is immutable"))
}

func TestRBAC(t *testing.T) {
	roleGVK := rbacv1.SchemeGroupVersion.WithKind("Role")
	// kubectl create role reader --verb=get,list --resource=pods
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
	}
	checkErrs(t, create(t, roleGVK, role))
	bad := role.DeepCopy()
	bad.Name = "a/b"
	bad.Rules = []rbacv1.PolicyRule{{Resources: []string{"pods"}}, {Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}}
	checkErrs(t, mustFor(t, roleGVK).Validate(bad),
		inv("metadata.name"),
		reqd("rules[0].verbs", "verbs must contain at least one value"),
		reqd("rules[0].apiGroups", "resource rules must supply at least one api group"),
		invd("rules[1].nonResourceURLs", "namespaced rules cannot apply to non-resource URLs"))

	crGVK := rbacv1.SchemeGroupVersion.WithKind("ClusterRole")
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:health"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
	}
	checkErrs(t, create(t, crGVK, cr))

	rbGVK := rbacv1.SchemeGroupVersion.WithKind("RoleBinding")
	// kubectl create rolebinding r --role=reader --user=alice --serviceaccount=default:ci
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, Name: "alice"},
			{Kind: rbacv1.ServiceAccountKind, Name: "ci", Namespace: "default"},
		},
	}
	checkErrs(t, create(t, rbGVK, rb))
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName || rb.Subjects[1].APIGroup != "" {
		t.Errorf("defaults: %+v", rb)
	}
	rb.ResourceVersion = "1"
	next := rb.DeepCopy()
	next.RoleRef.Name = "writer"
	checkErrs(t, update(t, rbGVK, next, rb), invd("roleRef", "cannot change roleRef"))

	crbGVK := rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "c"},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "ci"}, {Kind: "Robot", Name: "r2"}},
	}
	checkErrs(t, create(t, crbGVK, crb),
		unsup("roleRef.kind"),
		req("subjects[0].namespace"),
		unsup("subjects[1].kind"))
}

func TestStorageClass(t *testing.T) {
	gvk := storagev1.SchemeGroupVersion.WithKind("StorageClass")
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: "rancher.io/local-path"}
	checkErrs(t, create(t, gvk, sc))
	if *sc.ReclaimPolicy != v1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("defaults: %+v", sc)
	}
	sc.ResourceVersion = "1"
	next := sc.DeepCopy()
	next.Parameters = map[string]string{"x": "y"}
	next.VolumeBindingMode = ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)
	checkErrs(t, update(t, gvk, next, sc),
		forbd("parameters", "updates to parameters are forbidden."),
		invd("volumeBindingMode", "field is immutable"))
	checkErrs(t, create(t, gvk, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}}), req("provisioner"))
}

func TestLease(t *testing.T) {
	gvk := coordinationv1.SchemeGroupVersion.WithKind("Lease")
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1"), LeaseDurationSeconds: ptr.To[int32](40)},
	}
	checkErrs(t, create(t, gvk, l))
	l.Spec.LeaseDurationSeconds = ptr.To[int32](0)
	checkErrs(t, mustFor(t, gvk).Validate(l), invd("spec.leaseDurationSeconds", "must be greater than 0"))
}

func TestPodDisruptionBudget(t *testing.T) {
	gvk := policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")
	// kubectl create pdb web --selector=app=web --min-available=1
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
	checkErrs(t, create(t, gvk, pdb))
	if pdb.Generation != 1 {
		t.Errorf("generation = %d", pdb.Generation)
	}
	bad := pdb.DeepCopy()
	bad.Spec.MaxUnavailable = ptr.To(intstr.FromString("120%"))
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		invd("spec", "minAvailable and maxUnavailable cannot be both set"),
		invd("spec.maxUnavailable", "must not be greater than 100%"))
}

func TestPriorityClass(t *testing.T) {
	gvk := schedulingv1.SchemeGroupVersion.WithKind("PriorityClass")
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}
	checkErrs(t, create(t, gvk, pc))
	if *pc.PreemptionPolicy != v1.PreemptLowerPriority {
		t.Errorf("preemptionPolicy = %v", *pc.PreemptionPolicy)
	}
	checkErrs(t, create(t, gvk, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 1}),
		forbd("metadata.name", "priority class names with 'system-' prefix are reserved for system use only"))
	checkErrs(t, create(t, gvk, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical"}, Value: 2000001000}))
	checkErrs(t, create(t, gvk, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Value: 2000000000}),
		forbd("value", "maximum allowed value of a user defined priority is 1000000000"))
	pc.ResourceVersion = "1"
	next := pc.DeepCopy()
	next.Value = 2000
	checkErrs(t, update(t, gvk, next, pc), forbd("value", "may not be changed in an update."))
}

func TestEventsV1(t *testing.T) {
	gvk := eventsv1.SchemeGroupVersion.WithKind("Event")
	e := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: "example.com/controller",
		ReportingInstance:   "controller-1",
		Action:              "Scale",
		Reason:              "Scaled",
		Regarding:           v1.ObjectReference{Kind: "Deployment", Namespace: "default", Name: "web"},
		Note:                "scaled to 3",
		Type:                v1.EventTypeNormal,
	}
	checkErrs(t, create(t, gvk, e))
	if f := mustFor(t, gvk).Fields(e); f["regarding.kind"] != "Deployment" || f["reportingController"] != "example.com/controller" {
		t.Errorf("Fields() = %v", f)
	}
	bad := e.DeepCopy()
	bad.Type = "Info"
	bad.ReportingController = ""
	bad.DeprecatedCount = 3
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		req("reportingController"),
		// As upstream, the empty name is also checked as a qualified name.
		invd("reportingController", "name part must be non-empty"),
		invd("reportingController", "name part must consist of alphanumeric characters"),
		invd("type", "has invalid value: Info"),
		invd("count", "needs to be unset"))
	e.ResourceVersion = "1"
	next := e.DeepCopy()
	next.Note = "scaled to 4"
	checkErrs(t, update(t, gvk, next, e), invd("message", "field is immutable"))
}

func testCSR(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestCertificateSigningRequest(t *testing.T) {
	gvk := certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest")
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    testCSR(t),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		},
		Status: certificatesv1.CertificateSigningRequestStatus{Certificate: []byte("x")},
	}
	checkErrs(t, create(t, gvk, csr))
	if len(csr.Status.Certificate) != 0 {
		t.Error("status not reset on create")
	}
	if f := mustFor(t, gvk).Fields(csr); f["spec.signerName"] != certificatesv1.KubeAPIServerClientSignerName {
		t.Errorf("Fields() = %v", f)
	}
	bad := csr.DeepCopy()
	bad.Spec.Request = []byte("not a request")
	bad.Spec.SignerName = "signer"
	bad.Spec.Usages = []certificatesv1.KeyUsage{"fly"}
	checkErrs(t, mustFor(t, gvk).Validate(bad),
		invd("spec.request", "PEM block type must be CERTIFICATE REQUEST"),
		invd("spec.signerName", "must be a fully qualified domain and path of the form 'example.com/signer-name'"),
		unsup("spec.usages[0]"))

	// A status update keeps the approval conditions.
	s := mustFor(t, gvk)
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue}}
	csr.ResourceVersion = "1"
	next := csr.DeepCopy()
	next.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateFailed, Status: v1.ConditionTrue}}
	s.PrepareForStatusUpdate(next, csr)
	if len(next.Status.Conditions) != 2 || next.Status.Conditions[0].Type != certificatesv1.CertificateApproved || next.Status.Conditions[1].LastUpdateTime.IsZero() {
		t.Errorf("conditions = %+v", next.Status.Conditions)
	}
	checkErrs(t, s.ValidateStatusUpdate(next, csr))
}
