package strategy

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var serviceGVK = v1.SchemeGroupVersion.WithKind("Service")

// kubectlExposeService is what `kubectl expose deployment web --port=80`
// (or `kubectl create service clusterip web --tcp=80:80`) sends.
func kubectlExposeService() *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: v1.ServiceSpec{
			Ports:    []v1.ServicePort{{Port: 80}},
			Selector: map[string]string{"app": "web"},
		},
	}
}

func TestServiceDefaults(t *testing.T) {
	svc := kubectlExposeService()
	checkErrs(t, create(t, serviceGVK, svc))
	s := svc.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"type", s.Type, v1.ServiceTypeClusterIP},
		{"sessionAffinity", s.SessionAffinity, v1.ServiceAffinityNone},
		{"protocol", s.Ports[0].Protocol, v1.ProtocolTCP},
		{"targetPort", s.Ports[0].TargetPort, intstr.FromInt32(80)},
		{"internalTrafficPolicy", s.InternalTrafficPolicy, ptr.To(v1.ServiceInternalTrafficPolicyCluster)},
		{"ipFamilyPolicy", s.IPFamilyPolicy, ptr.To(v1.IPFamilyPolicySingleStack)},
		{"ipFamilies", s.IPFamilies, []v1.IPFamily{v1.IPv4Protocol}},
		{"externalTrafficPolicy", s.ExternalTrafficPolicy, v1.ServiceExternalTrafficPolicy("")},
	}
	for _, c := range checks {
		if !apiequality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	np := kubectlExposeService()
	np.Spec.Type = v1.ServiceTypeLoadBalancer
	np.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	checkErrs(t, create(t, serviceGVK, np))
	if np.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyCluster ||
		!ptr.Deref(np.Spec.AllocateLoadBalancerNodePorts, false) ||
		*np.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10800 {
		t.Errorf("LoadBalancer defaults: %+v", np.Spec)
	}

	headless := kubectlExposeService()
	headless.Spec.ClusterIP = v1.ClusterIPNone
	headless.Spec.Selector = nil
	headless.Spec.Ports = nil
	checkErrs(t, create(t, serviceGVK, headless))
	if !apiequality.Semantic.DeepEqual(headless.Spec.ClusterIPs, []string{"None"}) ||
		*headless.Spec.IPFamilyPolicy != v1.IPFamilyPolicyRequireDualStack {
		t.Errorf("headless: clusterIPs %v, policy %v", headless.Spec.ClusterIPs, *headless.Spec.IPFamilyPolicy)
	}

	ext := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "db.example.com"},
	}
	checkErrs(t, create(t, serviceGVK, ext))
	if ext.Spec.IPFamilyPolicy != nil || ext.Spec.IPFamilies != nil || ext.Spec.InternalTrafficPolicy != nil {
		t.Errorf("ExternalName service got IP fields: %+v", ext.Spec)
	}
}

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1.Service)
		want   []want
	}{
		{"expose", func(*v1.Service) {}, nil},
		{"NodePort in range", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}, nil},
		{"named ports", func(s *v1.Service) {
			s.Spec.Ports = []v1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}
		}, nil},
		{"given cluster IP", func(s *v1.Service) { s.Spec.ClusterIP = "10.96.0.50" }, nil},
		{"name not a DNS-1035 label", func(s *v1.Service) { s.Name = "1web" }, []want{invd("metadata.name", "DNS-1035 label")}},
		{"no ports", func(s *v1.Service) { s.Spec.Ports = nil }, []want{req("spec.ports")}},
		{"port 0", func(s *v1.Service) { s.Spec.Ports[0].Port = 0; s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) },
			[]want{invd("spec.ports[0].port", "must be between 1 and 65535, inclusive")}},
		{"bad targetPort", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) }, []want{inv("spec.ports[0].targetPort")}},
		{"bad protocol", func(s *v1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, []want{unsup("spec.ports[0].protocol")}},
		{"unnamed ports", func(s *v1.Service) { s.Spec.Ports = []v1.ServicePort{{Port: 80}, {Port: 443}} },
			[]want{req("spec.ports[0].name"), req("spec.ports[1].name")}},
		{"duplicate ports", func(s *v1.Service) { s.Spec.Ports = []v1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}} },
			[]want{dup("spec.ports[1]")}},
		{"bad type", func(s *v1.Service) { s.Spec.Type = "Public" }, []want{unsup("spec.type")}},
		{"nodePort on ClusterIP", func(s *v1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			[]want{forbd("spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'")}},
		{"nodePort out of range", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 8080
		}, []want{invd("spec.ports[0].nodePort", "provided port is not in the valid range. The range of valid ports is 30000-32767")}},
		{"ExternalName without name", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeExternalName
		}, []want{req("spec.externalName")}},
		{"ExternalName bad name", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeExternalName
			s.Spec.ExternalName = "DB_host"
		}, []want{inv("spec.externalName")}},
		{"bad cluster IP", func(s *v1.Service) { s.Spec.ClusterIP = "10.96.0.300" }, []want{inv("spec.clusterIPs[0]")}},
		{"bad selector", func(s *v1.Service) { s.Spec.Selector = map[string]string{"app": "web app"} }, []want{inv("spec.selector")}},
		{"bad session affinity", func(s *v1.Service) { s.Spec.SessionAffinity = "Cookie" }, []want{unsup("spec.sessionAffinity")}},
		{"external IP loopback", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"127.0.0.1"} },
			[]want{invd("spec.externalIPs[0]", "loopback")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := kubectlExposeService()
			tt.mutate(svc)
			checkErrs(t, create(t, serviceGVK, svc), tt.want...)
		})
	}
}

// storedService is a service after create, with a cluster IP allocated.
func storedService(t *testing.T) *v1.Service {
	svc := kubectlExposeService()
	svc.Spec.ClusterIP = "10.96.0.10"
	checkErrs(t, create(t, serviceGVK, svc))
	svc.ResourceVersion = "3"
	return svc
}

func TestServiceUpdate(t *testing.T) {
	t.Run("cluster IP may not change", func(t *testing.T) {
		old := storedService(t)
		svc := old.DeepCopy()
		svc.Spec.ClusterIP = "10.96.0.11"
		checkErrs(t, update(t, serviceGVK, svc, old), invd("spec.clusterIPs[0]", "may not change once set"))
	})
	t.Run("old client without clusterIPs", func(t *testing.T) {
		old := storedService(t)
		svc := old.DeepCopy()
		svc.Spec.ClusterIPs = nil
		checkErrs(t, update(t, serviceGVK, svc, old))
		if !apiequality.Semantic.DeepEqual(svc.Spec.ClusterIPs, []string{"10.96.0.10"}) {
			t.Errorf("clusterIPs = %v", svc.Spec.ClusterIPs)
		}
	})
	t.Run("to ExternalName drops the IPs", func(t *testing.T) {
		old := storedService(t)
		svc := old.DeepCopy()
		svc.Spec.Type = v1.ServiceTypeExternalName
		svc.Spec.ExternalName = "web.example.com"
		svc.Spec.InternalTrafficPolicy = nil
		checkErrs(t, update(t, serviceGVK, svc, old))
		if svc.Spec.ClusterIP != "" || svc.Spec.ClusterIPs != nil || svc.Spec.IPFamilies != nil || svc.Spec.IPFamilyPolicy != nil {
			t.Errorf("IP fields kept: %+v", svc.Spec)
		}
	})
	t.Run("NodePort to ClusterIP drops the node ports", func(t *testing.T) {
		old := storedService(t)
		old.Spec.Type = v1.ServiceTypeNodePort
		old.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		old.Spec.Ports[0].NodePort = 30001
		svc := old.DeepCopy()
		svc.Spec.Type = v1.ServiceTypeClusterIP
		checkErrs(t, update(t, serviceGVK, svc, old))
		if svc.Spec.Ports[0].NodePort != 0 || svc.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("node port %d, externalTrafficPolicy %q kept", svc.Spec.Ports[0].NodePort, svc.Spec.ExternalTrafficPolicy)
		}
	})
	t.Run("status kept", func(t *testing.T) {
		old := storedService(t)
		old.Spec.Type = v1.ServiceTypeLoadBalancer
		old.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		svc := old.DeepCopy()
		svc.Status = v1.ServiceStatus{}
		mustFor(t, serviceGVK).PrepareForUpdate(svc, old)
		if len(svc.Status.LoadBalancer.Ingress) != 1 {
			t.Errorf("status not kept: %+v", svc.Status)
		}
	})
}

func TestServiceStatusUpdate(t *testing.T) {
	s := mustFor(t, serviceGVK)
	old := storedService(t)
	svc := old.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.1"}}
	s.PrepareForStatusUpdate(svc, old)
	checkErrs(t, s.ValidateStatusUpdate(svc, old), forbd("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'"))
}

func TestServiceFields(t *testing.T) {
	svc := storedService(t)
	f := mustFor(t, serviceGVK).Fields(svc)
	if f["spec.clusterIP"] != "10.96.0.10" || f["spec.type"] != "ClusterIP" || f["metadata.name"] != "web" {
		t.Errorf("Fields() = %v", f)
	}
}

func TestEndpoints(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("Endpoints")
	ep := &v1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []v1.EndpointSubset{{
			Addresses: []v1.EndpointAddress{{IP: "10.244.0.5"}},
			Ports:     []v1.EndpointPort{{Port: 80}},
		}},
	}
	checkErrs(t, create(t, gvk, ep))
	if ep.Subsets[0].Ports[0].Protocol != v1.ProtocolTCP {
		t.Errorf("protocol = %q", ep.Subsets[0].Ports[0].Protocol)
	}
	bad := ep.DeepCopy()
	bad.Subsets[0].Addresses[0].IP = "127.0.0.1"
	bad.Subsets = append(bad.Subsets, v1.EndpointSubset{})
	checkErrs(t, create(t, gvk, bad), invd("subsets[0].addresses[0].ip", "loopback"), req("subsets[1]"))
}
