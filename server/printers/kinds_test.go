package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func objMeta(name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created)}
}

func template(labels map[string]string, cs ...corev1.Container) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: cs},
	}
}

var nginx = corev1.Container{Name: "nginx", Image: "nginx:1.27"}

func selector(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func TestKinds(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name string
		obj  runtime.Object
		want []interface{}
	}{
		// Workloads.
		{
			name: "deployment",
			obj: &appsv1.Deployment{
				ObjectMeta: objMeta("web", 2*day),
				Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Selector: selector("app", "web"), Template: template(nil, nginx)},
				Status:     appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
			},
			want: []interface{}{"web", "2/3", int64(3), int64(2), "2d", "nginx", "nginx:1.27", "app=web"},
		},
		{
			name: "deployment scaled to zero, two containers",
			obj: &appsv1.Deployment{
				ObjectMeta: objMeta("web", 3*time.Hour+20*time.Minute),
				Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(0)), Selector: selector("app", "web", "tier", "fe"),
					Template: template(nil, nginx, corev1.Container{Name: "log", Image: "busybox"})},
			},
			want: []interface{}{"web", "0/0", int64(0), int64(0), "3h20m", "nginx,log", "nginx:1.27,busybox", "app=web,tier=fe"},
		},
		{
			name: "replicaset",
			obj: &appsv1.ReplicaSet{
				ObjectMeta: objMeta("web-5d4f8c7b9", 45*time.Minute),
				Spec:       appsv1.ReplicaSetSpec{Replicas: ptr(int32(2)), Selector: selector("pod-template-hash", "5d4f8c7b9"), Template: template(nil, nginx)},
				Status:     appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1},
			},
			want: []interface{}{"web-5d4f8c7b9", int64(2), int64(2), int64(1), "45m", "nginx", "nginx:1.27", "pod-template-hash=5d4f8c7b9"},
		},
		{
			name: "replicationcontroller",
			obj: &corev1.ReplicationController{
				ObjectMeta: objMeta("legacy", 5*time.Second),
				Spec:       corev1.ReplicationControllerSpec{Replicas: ptr(int32(1)), Selector: map[string]string{"app": "legacy"}},
			},
			want: []interface{}{"legacy", int64(1), int64(0), int64(0), "5s", "", "", "app=legacy"},
		},
		{
			name: "daemonset",
			obj: &appsv1.DaemonSet{
				ObjectMeta: objMeta("kube-proxy", 30*day),
				Spec: appsv1.DaemonSetSpec{Selector: selector("k8s-app", "kube-proxy"), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"}, Containers: []corev1.Container{{Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:v1.37.2"}},
				}}},
				Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2},
			},
			want: []interface{}{"kube-proxy", int64(3), int64(3), int64(2), int64(3), int64(2), "kubernetes.io/os=linux", "30d",
				"kube-proxy", "registry.k8s.io/kube-proxy:v1.37.2", "k8s-app=kube-proxy"},
		},
		{
			name: "daemonset without node selector",
			obj: &appsv1.DaemonSet{
				ObjectMeta: objMeta("agent", 400*day),
				Spec:       appsv1.DaemonSetSpec{Selector: selector("app", "agent"), Template: template(nil, nginx)},
			},
			want: []interface{}{"agent", int64(0), int64(0), int64(0), int64(0), int64(0), "<none>", "400d", "nginx", "nginx:1.27", "app=agent"},
		},
		{
			name: "statefulset",
			obj: &appsv1.StatefulSet{
				ObjectMeta: objMeta("db", 3*day+4*time.Hour),
				Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(3)), Template: template(nil, corev1.Container{Name: "postgres", Image: "postgres:17"})},
				Status:     appsv1.StatefulSetStatus{ReadyReplicas: 3},
			},
			want: []interface{}{"db", "3/3", "3d4h", "postgres", "postgres:17"},
		},
		{
			name: "controllerrevision",
			obj: &appsv1.ControllerRevision{
				ObjectMeta: metav1.ObjectMeta{Name: "db-7c9f", CreationTimestamp: ago(time.Hour), OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptr(true),
				}}},
				Revision: 2,
			},
			want: []interface{}{"db-7c9f", "statefulset.apps/db", int64(2), "60m"},
		},
		{
			name: "controllerrevision without owner",
			obj:  &appsv1.ControllerRevision{ObjectMeta: objMeta("orphan", time.Minute), Revision: 1},
			want: []interface{}{"orphan", "<none>", int64(1), "60s"},
		},
		{
			name: "podtemplate",
			obj: &corev1.PodTemplate{
				ObjectMeta: objMeta("tmpl", time.Hour),
				Template:   template(map[string]string{"app": "web"}, nginx),
			},
			want: []interface{}{"tmpl", "nginx", "nginx:1.27", "app=web"},
		},

		// Jobs.
		{
			name: "completed job",
			obj: &batchv1.Job{
				ObjectMeta: objMeta("pi", 10*time.Minute),
				Spec: batchv1.JobSpec{Completions: ptr(int32(1)), Parallelism: ptr(int32(1)),
					Selector: selector("batch.kubernetes.io/controller-uid", "0d3e"),
					Template: template(nil, corev1.Container{Name: "pi", Image: "perl:5.34"})},
				Status: batchv1.JobStatus{
					Succeeded: 1, StartTime: agoPtr(10 * time.Minute), CompletionTime: agoPtr(9*time.Minute + 26*time.Second),
					Conditions: []batchv1.JobCondition{
						{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue},
						{Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
					},
				},
			},
			want: []interface{}{"pi", "Complete", "1/1", "34s", "10m", "pi", "perl:5.34", "batch.kubernetes.io/controller-uid=0d3e"},
		},
		{
			name: "running job, parallel without completions",
			obj: &batchv1.Job{
				ObjectMeta: objMeta("work", 5*time.Minute),
				Spec:       batchv1.JobSpec{Parallelism: ptr(int32(3)), Template: template(nil, nginx)},
				Status:     batchv1.JobStatus{StartTime: agoPtr(4 * time.Minute), Active: 3},
			},
			want: []interface{}{"work", "Running", "0/1 of 3", "4m", "5m", "nginx", "nginx:1.27", "<none>"},
		},
		{
			name: "failed job",
			obj: &batchv1.Job{
				ObjectMeta: objMeta("bad", time.Hour),
				Spec:       batchv1.JobSpec{Completions: ptr(int32(2)), Template: template(nil, nginx)},
				Status: batchv1.JobStatus{StartTime: agoPtr(time.Hour), Failed: 7, Conditions: []batchv1.JobCondition{
					{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue},
					{Type: batchv1.JobFailed, Status: corev1.ConditionTrue},
				}},
			},
			want: []interface{}{"bad", "Failed", "0/2", "60m", "60m", "nginx", "nginx:1.27", "<none>"},
		},
		{
			name: "suspended job, not started",
			obj: &batchv1.Job{
				ObjectMeta: objMeta("later", time.Minute),
				Spec:       batchv1.JobSpec{Completions: ptr(int32(1)), Suspend: ptr(true), Template: template(nil, nginx)},
				Status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}},
			},
			want: []interface{}{"later", "Suspended", "0/1", "", "60s", "nginx", "nginx:1.27", "<none>"},
		},
		{
			name: "job being deleted",
			obj: func() runtime.Object {
				j := &batchv1.Job{ObjectMeta: objMeta("gone", time.Minute), Spec: batchv1.JobSpec{Completions: ptr(int32(1))}}
				j.DeletionTimestamp = agoPtr(time.Second)
				return j
			}(),
			want: []interface{}{"gone", "Terminating", "0/1", "", "60s", "", "", "<none>"},
		},
		{
			name: "cronjob",
			obj: &batchv1.CronJob{
				ObjectMeta: objMeta("backup", 7*day),
				Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", Suspend: ptr(false), JobTemplate: batchv1.JobTemplateSpec{
					Spec: batchv1.JobSpec{Template: template(nil, corev1.Container{Name: "backup", Image: "restic"})},
				}},
				Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "backup-1"}}, LastScheduleTime: agoPtr(3 * time.Minute)},
			},
			want: []interface{}{"backup", "*/5 * * * *", "<none>", "False", int64(1), "3m", "7d", "backup", "restic", "<none>"},
		},
		{
			name: "cronjob never scheduled, with time zone",
			obj: &batchv1.CronJob{
				ObjectMeta: objMeta("nightly", time.Minute),
				Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr("Europe/Paris")},
			},
			want: []interface{}{"nightly", "0 3 * * *", "Europe/Paris", "<unset>", int64(0), "<none>", "60s", "", "", "<none>"},
		},

		// Services and networking.
		{
			name: "clusterip service",
			obj: &corev1.Service{
				ObjectMeta: objMeta("kubernetes", 5*day),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.43.0.1", ClusterIPs: []string{"10.43.0.1"},
					Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}},
			},
			want: []interface{}{"kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP", "5d", "<none>"},
		},
		{
			name: "nodeport service",
			obj: &corev1.Service{
				ObjectMeta: objMeta("web", time.Hour),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.43.12.5", ClusterIPs: []string{"10.43.12.5"},
					Selector: map[string]string{"app": "web"},
					Ports: []corev1.ServicePort{
						{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
						{Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP},
					}},
			},
			want: []interface{}{"web", "NodePort", "10.43.12.5", "<none>", "80:30080/TCP,53:30053/UDP", "60m", "app=web"},
		},
		{
			name: "loadbalancer without ingress",
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb", 2*time.Minute),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.7.7"},
					Ports: []corev1.ServicePort{{Port: 80, NodePort: 31234, Protocol: corev1.ProtocolTCP}}},
			},
			want: []interface{}{"lb", "LoadBalancer", "10.43.7.7", "<pending>", "80:31234/TCP", "2m", "<none>"},
		},
		{
			name: "loadbalancer with ingress and external IPs",
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb", 2*time.Minute),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.43.7.7"}, ExternalIPs: []string{"192.0.2.9"},
					Ports: []corev1.ServicePort{{Port: 80, NodePort: 31234, Protocol: corev1.ProtocolTCP}}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "203.0.113.20"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.10"},
				}}},
			},
			want: []interface{}{"lb", "LoadBalancer", "10.43.7.7", "203.0.113.10,203.0.113.20,lb.example.com,192.0.2.9", "80:31234/TCP", "2m", "<none>"},
		},
		{
			name: "headless service",
			obj: &corev1.Service{
				ObjectMeta: objMeta("db", time.Hour),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"},
					Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432, Protocol: corev1.ProtocolTCP}}},
			},
			want: []interface{}{"db", "ClusterIP", "None", "<none>", "5432/TCP", "60m", "app=db"},
		},
		{
			name: "externalname service",
			obj: &corev1.Service{
				ObjectMeta: objMeta("ext", time.Hour),
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
			},
			want: []interface{}{"ext", "ExternalName", "<none>", "example.com", "<none>", "60m", "<none>"},
		},
		{
			name: "endpoints",
			obj: &corev1.Endpoints{
				ObjectMeta: objMeta("web", time.Hour),
				Subsets: []corev1.EndpointSubset{{
					Addresses: []corev1.EndpointAddress{{IP: "10.42.0.5"}, {IP: "10.42.1.6"}},
					Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080}, {Name: "metrics", Port: 9090}},
				}},
			},
			want: []interface{}{"web", "10.42.0.5:8080,10.42.1.6:8080,10.42.0.5:9090 + 1 more...", "60m"},
		},
		{
			name: "endpoints without subsets",
			obj:  &corev1.Endpoints{ObjectMeta: objMeta("none", time.Hour)},
			want: []interface{}{"none", "<none>", "60m"},
		},
		{
			name: "endpointslice",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  objMeta("web-abc12", time.Hour),
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}, {Addresses: []string{"10.42.1.6"}}},
			},
			want: []interface{}{"web-abc12", "IPv4", "8080", "10.42.0.5,10.42.1.6", "60m"},
		},
		{
			name: "empty endpointslice",
			obj:  &discoveryv1.EndpointSlice{ObjectMeta: objMeta("web-x", time.Hour), AddressType: discoveryv1.AddressTypeIPv6},
			want: []interface{}{"web-x", "IPv6", "<unset>", "<unset>", "60m"},
		},
		{
			name: "ingress",
			obj: &networkingv1.Ingress{
				ObjectMeta: objMeta("web", time.Hour),
				Spec: networkingv1.IngressSpec{IngressClassName: ptr("traefik"),
					Rules: []networkingv1.IngressRule{{Host: "a.example.com"}, {Host: "b.example.com"}},
					TLS:   []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{
					Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.168.5.10"}},
				}},
			},
			want: []interface{}{"web", "traefik", "a.example.com,b.example.com", "192.168.5.10", "80, 443", "60m"},
		},
		{
			name: "ingress without class, host or address",
			obj:  &networkingv1.Ingress{ObjectMeta: objMeta("catchall", time.Hour), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{}}}},
			want: []interface{}{"catchall", "<none>", "*", "", "80", "60m"},
		},
		{
			name: "ingressclass",
			obj: &networkingv1.IngressClass{
				ObjectMeta: metav1.ObjectMeta{Name: "traefik", CreationTimestamp: ago(time.Hour)},
				Spec: networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller",
					Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}},
			},
			want: []interface{}{"traefik", "traefik.io/ingress-controller", "IngressParameters.k8s.example.com/external-lb", "60m"},
		},
		{
			name: "networkpolicy",
			obj: &networkingv1.NetworkPolicy{
				ObjectMeta: objMeta("deny-all", time.Hour),
			},
			want: []interface{}{"deny-all", "<none>", "60m"},
		},
		{
			name: "networkpolicy with selector",
			obj: &networkingv1.NetworkPolicy{
				ObjectMeta: objMeta("allow-web", time.Hour),
				Spec:       networkingv1.NetworkPolicySpec{PodSelector: *selector("app", "web")},
			},
			want: []interface{}{"allow-web", "app=web", "60m"},
		},

		// Cluster.
		{
			name: "cordoned control-plane node",
			obj: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "cp1", CreationTimestamp: ago(10 * day), Labels: map[string]string{
					"node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "cp1",
				}},
				Spec: corev1.NodeSpec{Unschedulable: true},
				Status: corev1.NodeStatus{
					Conditions: []corev1.NodeCondition{
						{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
						{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
					},
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "cp1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
					NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 12 (bookworm)",
						KernelVersion: "6.1.0-40-amd64", ContainerRuntimeVersion: "containerd://1.7.31"},
				},
			},
			want: []interface{}{"cp1", "Ready,SchedulingDisabled", "control-plane", "10d", "v1.37.2",
				"10.0.0.1", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-40-amd64", "containerd://1.7.31"},
		},
		{
			name: "not ready worker with two roles",
			obj: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "w1", CreationTimestamp: ago(time.Hour), Labels: map[string]string{
					"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge", "node-role.kubernetes.io/": "",
				}},
				Status: corev1.NodeStatus{
					Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}},
					Addresses:  []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "198.51.100.4"}},
				},
			},
			want: []interface{}{"w1", "NotReady", "edge,worker", "60m", "", "<none>", "198.51.100.4", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "node without conditions",
			obj:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new", CreationTimestamp: ago(time.Second)}},
			want: []interface{}{"new", "Unknown", "<none>", "1s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "namespace",
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: ago(40 * day)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: []interface{}{"kube-system", "Active", "40d"},
		},
		{
			name: "lease",
			obj: &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", Namespace: "kube-system", CreationTimestamp: ago(time.Hour)},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr("cp1_1234")},
			},
			want: []interface{}{"kube-scheduler", "cp1_1234", "60m"},
		},
		{
			name: "priorityclass",
			obj: &schedulingv1.PriorityClass{
				ObjectMeta: metav1.ObjectMeta{Name: "system-cluster-critical", CreationTimestamp: ago(time.Hour)},
				Value:      2000000000, PreemptionPolicy: ptr(corev1.PreemptLowerPriority),
			},
			want: []interface{}{"system-cluster-critical", int64(2000000000), false, "60m", "PreemptLowerPriority"},
		},
		{
			name: "csr",
			obj: &certificatesv1.CertificateSigningRequest{
				ObjectMeta: metav1.ObjectMeta{Name: "csr-abc", CreationTimestamp: ago(time.Minute)},
				Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "kubernetes.io/kube-apiserver-client-kubelet",
					Username: "system:node:w1", ExpirationSeconds: ptr(int32(86400))},
				Status: certificatesv1.CertificateSigningRequestStatus{
					Conditions:  []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}},
					Certificate: []byte("-----BEGIN CERTIFICATE-----"),
				},
			},
			want: []interface{}{"csr-abc", "60s", "kubernetes.io/kube-apiserver-client-kubelet", "system:node:w1", "24h", "Approved,Issued"},
		},
		{
			name: "pending csr",
			obj:  &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "csr-x", CreationTimestamp: ago(time.Minute)}},
			want: []interface{}{"csr-x", "60s", "<none>", "", "<none>", "Pending"},
		},

		// Configuration and storage.
		{
			name: "secret",
			obj: &corev1.Secret{ObjectMeta: objMeta("creds", time.Hour), Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"user": []byte("u"), "pass": []byte("p")}},
			want: []interface{}{"creds", "Opaque", int64(2), "60m"},
		},
		{
			name: "configmap",
			obj: &corev1.ConfigMap{ObjectMeta: objMeta("kube-root-ca.crt", time.Hour),
				Data: map[string]string{"ca.crt": "x"}, BinaryData: map[string][]byte{"blob": {1}}},
			want: []interface{}{"kube-root-ca.crt", int64(2), "60m"},
		},
		{
			name: "serviceaccount",
			obj:  &corev1.ServiceAccount{ObjectMeta: objMeta("default", time.Hour)},
			want: []interface{}{"default", "60m"},
		},
		{
			name: "bound pv",
			obj: &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "pvc-1234", CreationTimestamp: ago(time.Hour)},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
					PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
					ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
					StorageClassName:              "local-path",
					VolumeMode:                    ptr(corev1.PersistentVolumeFilesystem),
				},
				Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
			},
			want: []interface{}{"pvc-1234", "1Gi", "RWO,RWX", "Delete", "Bound", "default/data", "local-path", "<unset>", "", "60m", "Filesystem"},
		},
		{
			name: "bound pvc",
			obj: &corev1.PersistentVolumeClaim{
				ObjectMeta: objMeta("data", time.Hour),
				Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1234", StorageClassName: ptr("local-path"),
					VolumeMode: ptr(corev1.PersistentVolumeFilesystem)},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
			want: []interface{}{"data", "Bound", "pvc-1234", "1Gi", "RWO", "local-path", "<unset>", "60m", "Filesystem"},
		},
		{
			name: "pending pvc with beta class annotation",
			obj: &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", CreationTimestamp: ago(time.Hour),
					Annotations: map[string]string{"volume.beta.kubernetes.io/storage-class": "slow"}},
				Spec:   corev1.PersistentVolumeClaimSpec{StorageClassName: ptr("fast")},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
			},
			want: []interface{}{"data", "Pending", "", "", "", "slow", "<unset>", "60m", "<unset>"},
		},
		{
			name: "resourcequota",
			obj: &corev1.ResourceQuota{
				ObjectMeta: objMeta("compute", time.Hour),
				Status: corev1.ResourceQuotaStatus{
					Hard: corev1.ResourceList{"requests.cpu": resource.MustParse("2"), "limits.memory": resource.MustParse("4Gi"), "pods": resource.MustParse("10")},
					Used: corev1.ResourceList{"requests.cpu": resource.MustParse("500m"), "limits.memory": resource.MustParse("1Gi"), "pods": resource.MustParse("3")},
				},
			},
			want: []interface{}{"compute", "pods: 3/10, requests.cpu: 500m/2", "limits.memory: 1Gi/4Gi", "60m"},
		},
		{
			name: "storageclass",
			obj: &storagev1.StorageClass{
				ObjectMeta: metav1.ObjectMeta{Name: "local-path", CreationTimestamp: ago(time.Hour),
					Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
				Provisioner:       "rancher.io/local-path",
				VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer),
			},
			want: []interface{}{"local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", false, "60m"},
		},
		{
			name: "storageclass, not default",
			obj: &storagev1.StorageClass{
				ObjectMeta:           metav1.ObjectMeta{Name: "nfs", CreationTimestamp: ago(time.Hour)},
				Provisioner:          "nfs.csi.k8s.io",
				ReclaimPolicy:        ptr(corev1.PersistentVolumeReclaimRetain),
				AllowVolumeExpansion: ptr(true),
			},
			want: []interface{}{"nfs", "nfs.csi.k8s.io", "Retain", "Immediate", true, "60m"},
		},

		// Access control: roles have the default table.
		{
			name: "clusterrole",
			obj:  &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)))}},
			want: []interface{}{"admin", "2026-01-02T02:04:05Z"},
		},
		{
			name: "role",
			obj:  &rbacv1.Role{ObjectMeta: objMeta("reader", time.Hour)},
			want: []interface{}{"reader", "2026-03-04T11:00:00Z"},
		},
		{
			name: "limitrange",
			obj:  &corev1.LimitRange{ObjectMeta: objMeta("limits", time.Hour)},
			want: []interface{}{"limits", "2026-03-04T11:00:00Z"},
		},
		{
			name: "rolebinding",
			obj: &rbacv1.RoleBinding{
				ObjectMeta: objMeta("read", time.Hour),
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
				Subjects: []rbacv1.Subject{
					{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "devs"}, {Kind: "User", Name: "bob"},
					{Kind: "ServiceAccount", Namespace: "default", Name: "ci"},
				},
			},
			want: []interface{}{"read", "Role/reader", "60m", "alice, bob", "devs", "default/ci"},
		},
		{
			name: "clusterrolebinding without subjects",
			obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin", CreationTimestamp: ago(time.Hour)},
				RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
			},
			want: []interface{}{"cluster-admin", "ClusterRole/cluster-admin", "60m", "", "", ""},
		},

		// Policy and autoscaling.
		{
			name: "pdb",
			obj: &policyv1.PodDisruptionBudget{
				ObjectMeta: objMeta("web", time.Hour),
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromString("50%"))},
				Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
			},
			want: []interface{}{"web", "50%", "N/A", int64(1), "60m"},
		},
		{
			name: "hpa v2",
			obj: &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: objMeta("web", time.Hour),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
					MinReplicas:    ptr(int32(1)), MaxReplicas: 10,
					Metrics: []autoscalingv2.MetricSpec{cpuTarget(50)},
				},
				Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, CurrentMetrics: []autoscalingv2.MetricStatus{{
					Type:     autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(10))}},
				}}},
			},
			want: []interface{}{"web", "Deployment/web", "cpu: 10%/50%", "1", int64(10), int64(2), "60m"},
		},
		{
			name: "hpa v2 without metrics yet, three targets",
			obj: &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: objMeta("web", time.Minute),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
					MaxReplicas:    5,
					Metrics: []autoscalingv2.MetricSpec{cpuTarget(50), {
						Type: autoscalingv2.ResourceMetricSourceType,
						Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
							Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("500Mi"))}},
					}, {
						Type: autoscalingv2.PodsMetricSourceType,
						Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "rps"},
							Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(resource.MustParse("1k"))}},
					}},
				},
			},
			want: []interface{}{"web", "Deployment/web", "cpu: <unknown>/50%, memory: <unknown>/500Mi + 1 more...", "<unset>", int64(5), int64(0), "60s"},
		},
		{
			name: "hpa v2 without metrics",
			obj: &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: objMeta("web", time.Minute),
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "StatefulSet", Name: "db"}, MaxReplicas: 3,
				},
			},
			want: []interface{}{"web", "StatefulSet/db", "<none>", "<unset>", int64(3), int64(0), "60s"},
		},
		{
			name: "hpa v1",
			obj: &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: objMeta("web", time.Hour),
				Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
					MinReplicas:    ptr(int32(2)), MaxReplicas: 4, TargetCPUUtilizationPercentage: ptr(int32(80)),
				},
				Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, CurrentCPUUtilizationPercentage: ptr(int32(95))},
			},
			want: []interface{}{"web", "Deployment/web", "cpu: 95%/80%", "2", int64(4), int64(2), "60m"},
		},

		// Events.
		{
			name: "core event",
			obj: &corev1.Event{
				ObjectMeta:     objMeta("web.17f0a", time.Hour),
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
				Reason:         "BackOff", Type: corev1.EventTypeWarning,
				Message:        "Back-off restarting failed container app in pod web\n",
				Source:         corev1.EventSource{Component: "kubelet", Host: "node1"},
				FirstTimestamp: ago(30 * time.Minute), LastTimestamp: ago(2 * time.Minute), Count: 12,
			},
			want: []interface{}{"2m", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, node1",
				"Back-off restarting failed container app in pod web", "30m", int64(12), "web.17f0a"},
		},
		{
			name: "core event from the new API",
			obj: &corev1.Event{
				ObjectMeta:     objMeta("node1.x", time.Hour),
				InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node1"},
				Reason:         "Starting", Type: corev1.EventTypeNormal, Message: "",
				EventTime:           metav1.NewMicroTime(now.Add(-3 * time.Minute)),
				ReportingController: "kube-proxy", ReportingInstance: "kube-proxy-node1",
			},
			want: []interface{}{"3m", "Normal", "Starting", "node/node1", "", "kube-proxy, kube-proxy-node1", "", "3m", int64(1), "node1.x"},
		},
		{
			name: "events.k8s.io event with a series",
			obj: &eventsv1.Event{
				ObjectMeta: objMeta("web.abc", time.Hour),
				EventTime:  metav1.NewMicroTime(now.Add(-20 * time.Minute)),
				Series:     &eventsv1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(now.Add(-40 * time.Second))},
				Regarding:  corev1.ObjectReference{Kind: "Pod", Name: "web"},
				Reason:     "Unhealthy", Type: corev1.EventTypeWarning, Note: "Readiness probe failed",
				ReportingController: "kubelet", ReportingInstance: "node1",
			},
			want: []interface{}{"40s", "Warning", "Unhealthy", "pod/web", "", "kubelet, node1", "Readiness probe failed", "20m", int64(7), "web.abc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCells(t, rowCells(t, tt.obj), tt.want)
		})
	}
}

func cpuTarget(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(percent)}},
	}
}

func TestStorageClassEffectiveDefault(t *testing.T) {
	class := func(name string, created time.Duration, isDefault bool) storagev1.StorageClass {
		sc := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: ago(created)}, Provisioner: "p"}
		if isDefault {
			sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
		}
		return sc
	}
	list := &storagev1.StorageClassList{Items: []storagev1.StorageClass{
		class("standard", 48*time.Minute, true),
		class("nfs-client", 3*time.Second, true),
		class("slow", time.Hour, false),
	}}
	table, err := Table(list, opts())
	if err != nil {
		t.Fatal(err)
	}
	var names []interface{}
	for _, r := range table.Rows {
		names = append(names, r.Cells[0])
	}
	checkCells(t, names, []interface{}{"standard", "nfs-client (default)", "slow"})

	// A single class is checked against all classes when they are known...
	o := opts()
	o.StorageClasses = func() ([]storagev1.StorageClass, error) { return list.Items, nil }
	table, err = Table(&list.Items[0], o)
	if err != nil {
		t.Fatal(err)
	}
	if got := table.Rows[0].Cells[0]; got != "standard" {
		t.Errorf("single class = %v, want standard", got)
	}
	// ...and by its annotation alone when they are not.
	if got := rowCells(t, &list.Items[0])[0]; got != "standard (default)" {
		t.Errorf("single class without the list = %v, want standard (default)", got)
	}

	// Same creation time: the first name wins.
	tie := &storagev1.StorageClassList{Items: []storagev1.StorageClass{class("b", time.Hour, true), class("a", time.Hour, true)}}
	table, err = Table(tie, opts())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := table.Rows[1].Cells[0], table.Rows[0].Cells[0]; a != "a (default)" || b != "b" {
		t.Errorf("tie: %v, %v; want a (default), b", a, b)
	}
}
