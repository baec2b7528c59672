package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

var (
	allVerbs           = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	noCollectionDelete = []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	createOnly         = []string{"create"}
)

// kubeResources is roughly what kube-apiserver serves at GA versions.
func kubeResources() []Resource {
	type r = Resource
	gvk := func(g, v, k string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: g, Version: v, Kind: k}
	}
	core := func(k string) schema.GroupVersionKind { return gvk("", "v1", k) }
	return []Resource{
		{GVK: core("Pod"), Plural: "pods", Namespaced: true, Verbs: allVerbs,
			Subresources: []string{"attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "resize", "status"}},
		{GVK: core("Service"), Plural: "services", Namespaced: true, Verbs: allVerbs, Subresources: []string{"proxy", "status"}},
		{GVK: core("Node"), Plural: "nodes", Verbs: allVerbs, Subresources: []string{"proxy", "status"}},
		{GVK: core("Namespace"), Plural: "namespaces", Verbs: noCollectionDelete, Subresources: []string{"finalize", "status"}},
		{GVK: core("ConfigMap"), Plural: "configmaps", Namespaced: true, Verbs: allVerbs},
		{GVK: core("Secret"), Plural: "secrets", Namespaced: true, Verbs: allVerbs},
		{GVK: core("Endpoints"), Plural: "endpoints", Namespaced: true, Verbs: allVerbs},
		{GVK: core("Event"), Plural: "events", Namespaced: true, Verbs: allVerbs},
		{GVK: core("LimitRange"), Plural: "limitranges", Namespaced: true, Verbs: allVerbs},
		{GVK: core("PodTemplate"), Plural: "podtemplates", Namespaced: true, Verbs: allVerbs},
		{GVK: core("ServiceAccount"), Plural: "serviceaccounts", Namespaced: true, Verbs: allVerbs, Subresources: []string{"token"}},
		{GVK: core("PersistentVolume"), Plural: "persistentvolumes", Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: core("PersistentVolumeClaim"), Plural: "persistentvolumeclaims", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: core("ReplicationController"), Plural: "replicationcontrollers", Namespaced: true, Verbs: allVerbs, Subresources: []string{"scale", "status"}},
		{GVK: core("ResourceQuota"), Plural: "resourcequotas", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: core("ComponentStatus"), Plural: "componentstatuses", Verbs: []string{"get", "list"}},
		{GVK: core("Binding"), Plural: "bindings", Namespaced: true, Verbs: createOnly},

		{GVK: gvk("apps", "v1", "Deployment"), Plural: "deployments", Namespaced: true, Verbs: allVerbs, Subresources: []string{"scale", "status"}},
		{GVK: gvk("apps", "v1", "StatefulSet"), Plural: "statefulsets", Namespaced: true, Verbs: allVerbs, Subresources: []string{"scale", "status"}},
		{GVK: gvk("apps", "v1", "DaemonSet"), Plural: "daemonsets", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("apps", "v1", "ReplicaSet"), Plural: "replicasets", Namespaced: true, Verbs: allVerbs, Subresources: []string{"scale", "status"}},
		{GVK: gvk("apps", "v1", "ControllerRevision"), Plural: "controllerrevisions", Namespaced: true, Verbs: allVerbs},

		{GVK: gvk("batch", "v1", "Job"), Plural: "jobs", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("batch", "v1", "CronJob"), Plural: "cronjobs", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("autoscaling", "v1", "HorizontalPodAutoscaler"), Plural: "horizontalpodautoscalers", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("autoscaling", "v2", "HorizontalPodAutoscaler"), Plural: "horizontalpodautoscalers", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},

		{GVK: gvk("networking.k8s.io", "v1", "NetworkPolicy"), Plural: "networkpolicies", Namespaced: true, Verbs: allVerbs},
		{GVK: gvk("networking.k8s.io", "v1", "Ingress"), Plural: "ingresses", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("networking.k8s.io", "v1", "IngressClass"), Plural: "ingressclasses", Verbs: allVerbs},
		{GVK: gvk("discovery.k8s.io", "v1", "EndpointSlice"), Plural: "endpointslices", Namespaced: true, Verbs: allVerbs},

		{GVK: gvk("rbac.authorization.k8s.io", "v1", "Role"), Plural: "roles", Namespaced: true, Verbs: allVerbs},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"), Plural: "rolebindings", Namespaced: true, Verbs: allVerbs},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"), Plural: "clusterroles", Verbs: allVerbs},
		{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"), Plural: "clusterrolebindings", Verbs: allVerbs},

		{GVK: gvk("storage.k8s.io", "v1", "StorageClass"), Plural: "storageclasses", Verbs: allVerbs},
		{GVK: gvk("storage.k8s.io", "v1", "VolumeAttachment"), Plural: "volumeattachments", Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("storage.k8s.io", "v1", "CSIDriver"), Plural: "csidrivers", Verbs: allVerbs},
		{GVK: gvk("storage.k8s.io", "v1", "CSINode"), Plural: "csinodes", Verbs: allVerbs},
		{GVK: gvk("storage.k8s.io", "v1", "CSIStorageCapacity"), Plural: "csistoragecapacities", Namespaced: true, Verbs: allVerbs},

		{GVK: gvk("coordination.k8s.io", "v1", "Lease"), Plural: "leases", Namespaced: true, Verbs: allVerbs},
		{GVK: gvk("events.k8s.io", "v1", "Event"), Plural: "events", Namespaced: true, Verbs: allVerbs},
		{GVK: gvk("policy", "v1", "PodDisruptionBudget"), Plural: "poddisruptionbudgets", Namespaced: true, Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("scheduling.k8s.io", "v1", "PriorityClass"), Plural: "priorityclasses", Verbs: allVerbs},
		{GVK: gvk("node.k8s.io", "v1", "RuntimeClass"), Plural: "runtimeclasses", Verbs: allVerbs},
		{GVK: gvk("certificates.k8s.io", "v1", "CertificateSigningRequest"), Plural: "certificatesigningrequests", Verbs: allVerbs, Subresources: []string{"approval", "status"}},

		{GVK: gvk("authorization.k8s.io", "v1", "SelfSubjectAccessReview"), Plural: "selfsubjectaccessreviews", Verbs: createOnly},
		{GVK: gvk("authorization.k8s.io", "v1", "SelfSubjectRulesReview"), Plural: "selfsubjectrulesreviews", Verbs: createOnly},
		{GVK: gvk("authorization.k8s.io", "v1", "SubjectAccessReview"), Plural: "subjectaccessreviews", Verbs: createOnly},
		{GVK: gvk("authorization.k8s.io", "v1", "LocalSubjectAccessReview"), Plural: "localsubjectaccessreviews", Namespaced: true, Verbs: createOnly},
		{GVK: gvk("authentication.k8s.io", "v1", "TokenReview"), Plural: "tokenreviews", Verbs: createOnly},
		{GVK: gvk("authentication.k8s.io", "v1", "SelfSubjectReview"), Plural: "selfsubjectreviews", Verbs: createOnly},

		{GVK: gvk("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"), Plural: "mutatingwebhookconfigurations", Verbs: allVerbs},
		{GVK: gvk("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"), Plural: "validatingwebhookconfigurations", Verbs: allVerbs},
		{GVK: gvk("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy"), Plural: "validatingadmissionpolicies", Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding"), Plural: "validatingadmissionpolicybindings", Verbs: allVerbs},
		{GVK: gvk("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema"), Plural: "flowschemas", Verbs: allVerbs, Subresources: []string{"status"}},
		{GVK: gvk("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration"), Plural: "prioritylevelconfigurations", Verbs: allVerbs, Subresources: []string{"status"}},
	}
}

// newTestService returns a Service over kubeResources and the client-go
// scheme (all built-in types), and a test server serving it.
func newTestService(t testing.TB) (*Service, *httptest.Server) {
	t.Helper()
	// TestBuildCost covers the default, which frees memory after builds;
	// here that would only slow the tests down.
	s, err := Config{KeepFreedMemory: true}.New(kubeResources(), scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return s, ts
}

// get fetches url with an Accept header and returns the status and body
// (the client undoes the gzip content encoding).
func get(t testing.TB, url, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func getJSON(t testing.TB, url string) map[string]interface{} {
	t.Helper()
	resp, body := get(t, url, "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return m
}

// dig walks nested JSON maps.
func dig(t testing.TB, v interface{}, keys ...string) interface{} {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]interface{})
		if !ok {
			t.Fatalf("%v: not an object", keys[:i])
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("%v: no key %q", keys[:i], k)
		}
	}
	return v
}
