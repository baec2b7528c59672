package quota

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func TestUsage(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "2")}}},
		Containers: []corev1.Container{
			{Name: "a", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "250m", "memory", "64Mi"), Limits: rl("cpu", "500m")}},
			{Name: "b", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "250m")}},
		}}}
	got := Usage(pods, pod)
	// Init containers run alone: the pod asks for the larger of the two.
	if want := "count/pods=1,cpu=2,limits.cpu=500m,limits.memory=0,memory=64Mi,pods=1,requests.cpu=2,requests.memory=64Mi"; Format(got) != want {
		t.Errorf("pod usage %s\nwant %s", Format(got), want)
	}
	pod.Status.Phase = corev1.PodSucceeded
	if got := Usage(pods, pod); len(got) != 0 {
		t.Errorf("a finished pod costs %s", Format(got))
	}

	svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	if want := "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"; Format(Usage(schema.GroupResource{Resource: "services"}, svc)) != want {
		t.Errorf("service usage %s", Format(Usage(schema.GroupResource{Resource: "services"}, svc)))
	}
	pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("fast"),
		Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "1Gi")}}}
	if got := Format(Usage(schema.GroupResource{Resource: "persistentvolumeclaims"}, pvc)); !strings.Contains(got, "fast.storageclass.storage.k8s.io/requests.storage=1Gi") || !strings.Contains(got, "requests.storage=1Gi") {
		t.Errorf("claim usage %s", got)
	}
	deploy := schema.GroupResource{Group: "apps", Resource: "deployments"}
	if got := Format(Usage(deploy, &metav1.PartialObjectMetadata{})); got != "count/deployments.apps=1" {
		t.Errorf("deployment usage %s", got)
	}
}

func TestMatchesAndMissing(t *testing.T) {
	best := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	burst := &corev1.Pod{Spec: corev1.PodSpec{PriorityClassName: "high", Containers: []corev1.Container{{Name: "a", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}}}}
	q := func(scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "1", "limits.cpu", "1"), Scopes: scopes}}
	}
	if !Matches(q(corev1.ResourceQuotaScopeBestEffort), best) || Matches(q(corev1.ResourceQuotaScopeBestEffort), burst) {
		t.Error("BestEffort scope")
	}
	if Matches(q(corev1.ResourceQuotaScopeBestEffort), &corev1.ConfigMap{}) || !Matches(q(), &corev1.ConfigMap{}) {
		t.Error("scoped quotas charge pods only")
	}
	byClass := q()
	byClass.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
		ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}
	if !Matches(byClass, burst) || Matches(byClass, best) {
		t.Error("PriorityClass scope selector")
	}
	if got := strings.Join(Missing(q(), best), "; "); got != "limits.cpu for: a,b" {
		t.Errorf("missing %q", got)
	}
}
