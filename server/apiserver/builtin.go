package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// builtin lists the built-in resources, group by group in upstream's
// discovery order, with upstream's short names, categories and
// subresources. A group's first version is its preferred one.
func builtin() []*Resource {
	core := func(kind, plural string, namespaced bool, short []string, cats []string, subs ...string) *Resource {
		return &Resource{GVK: schema.GroupVersionKind{Version: "v1", Kind: kind}, Plural: plural, Namespaced: namespaced, ShortNames: short, Categories: cats, Subresources: subs}
	}
	in := func(group, version string) func(kind, plural string, namespaced bool, short []string, cats []string, subs ...string) *Resource {
		return func(kind, plural string, namespaced bool, short []string, cats []string, subs ...string) *Resource {
			r := core(kind, plural, namespaced, short, cats, subs...)
			r.GVK.Group, r.GVK.Version = group, version
			return r
		}
	}
	all := []string{"all"}
	s := func(names ...string) []string { return names }
	apps := in("apps", "v1")
	batch := in("batch", "v1")
	autoscaling := in("autoscaling", "v2")
	networking := in("networking.k8s.io", "v1")
	discovery := in("discovery.k8s.io", "v1")
	rbac := in("rbac.authorization.k8s.io", "v1")
	storage := in("storage.k8s.io", "v1")
	coordination := in("coordination.k8s.io", "v1")
	policy := in("policy", "v1")
	scheduling := in("scheduling.k8s.io", "v1")
	certificates := in("certificates.k8s.io", "v1")
	apiextensions := in("apiextensions.k8s.io", "v1")
	return []*Resource{
		core("ConfigMap", "configmaps", true, s("cm"), nil),
		core("Endpoints", "endpoints", true, s("ep"), nil),
		core("Event", "events", true, s("ev"), nil),
		core("LimitRange", "limitranges", true, s("limits"), nil),
		core("Namespace", "namespaces", false, s("ns"), nil, "status"),
		core("Node", "nodes", false, s("no"), nil, "status", "proxy"),
		core("PersistentVolumeClaim", "persistentvolumeclaims", true, s("pvc"), nil, "status"),
		core("PersistentVolume", "persistentvolumes", false, s("pv"), nil, "status"),
		core("Pod", "pods", true, s("po"), all, "status", "binding", "eviction", "log", "exec", "attach", "portforward"),
		core("PodTemplate", "podtemplates", true, nil, nil),
		core("ReplicationController", "replicationcontrollers", true, s("rc"), all, "status", "scale"),
		core("ResourceQuota", "resourcequotas", true, s("quota"), nil, "status"),
		core("Secret", "secrets", true, nil, nil),
		core("ServiceAccount", "serviceaccounts", true, s("sa"), nil, "token"),
		core("Service", "services", true, s("svc"), all, "status"),

		apps("ControllerRevision", "controllerrevisions", true, nil, nil),
		apps("DaemonSet", "daemonsets", true, s("ds"), all, "status"),
		apps("Deployment", "deployments", true, s("deploy"), all, "status", "scale"),
		apps("ReplicaSet", "replicasets", true, s("rs"), all, "status", "scale"),
		apps("StatefulSet", "statefulsets", true, s("sts"), all, "status", "scale"),

		autoscaling("HorizontalPodAutoscaler", "horizontalpodautoscalers", true, s("hpa"), all, "status"),
		batch("CronJob", "cronjobs", true, s("cj"), all, "status"),
		batch("Job", "jobs", true, nil, all, "status"),
		certificates("CertificateSigningRequest", "certificatesigningrequests", false, s("csr"), nil, "status", "approval"),
		networking("IngressClass", "ingressclasses", false, nil, nil),
		networking("Ingress", "ingresses", true, s("ing"), nil, "status"),
		networking("NetworkPolicy", "networkpolicies", true, s("netpol"), nil),
		policy("PodDisruptionBudget", "poddisruptionbudgets", true, s("pdb"), nil, "status"),
		rbac("ClusterRoleBinding", "clusterrolebindings", false, nil, nil),
		rbac("ClusterRole", "clusterroles", false, nil, nil),
		rbac("RoleBinding", "rolebindings", true, nil, nil),
		rbac("Role", "roles", true, nil, nil),
		storage("StorageClass", "storageclasses", false, s("sc"), nil),
		apiextensions("CustomResourceDefinition", "customresourcedefinitions", false, s("crd", "crds"), s("api-extensions"), "status"),
		scheduling("PriorityClass", "priorityclasses", false, s("pc"), nil),
		coordination("Lease", "leases", true, nil, nil),
		discovery("EndpointSlice", "endpointslices", true, nil, nil),
	}
}
