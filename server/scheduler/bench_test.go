package scheduler

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The same workload as server/controllers' BenchmarkSchedule1000PodsOn100Nodes:
// 100 nodes in 5 zones; 1000 pods of 10 apps, each spread over zones
// (maxSkew 1, DoNotSchedule) and hostnames (maxSkew 2, ScheduleAnyway),
// app-0 one to a node (required anti-affinity), apps 1-4 preferring
// app-0's zones, apps 5-9 preferring nodes without their own kind.
func benchNodes() []*corev1.Node {
	var out []*corev1.Node
	for i := range 100 {
		name := fmt.Sprintf("node-%03d", i)
		out = append(out, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				corev1.LabelHostname: name, corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%5)}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")}},
		})
	}
	return out
}

func benchPods() []*corev1.Pod {
	term := func(app, key string) corev1.PodAffinityTerm {
		return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
	}
	var out []*corev1.Pod
	for i := range 1000 {
		app := fmt.Sprintf("app-%d", i%10)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%03d", app, i/10), Namespace: "default", Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{
				SchedulerName: Name,
				Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
					spreadBy(corev1.LabelTopologyZone, 1, corev1.DoNotSchedule, app),
					spreadBy(corev1.LabelHostname, 2, corev1.ScheduleAnyway, app),
				},
			},
		}
		switch n := i % 10; {
		case n == 0:
			p.Spec.Affinity = antiAffinity(term(app, corev1.LabelHostname))
		case n < 5:
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
				{Weight: 50, PodAffinityTerm: term("app-0", corev1.LabelTopologyZone)}}}}
		default:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
				{Weight: 100, PodAffinityTerm: term(app, corev1.LabelHostname)}}}}
		}
		out = append(out, p)
	}
	return out
}

// BenchmarkScheduleAlgorithm1000PodsOn100Nodes measures the decisions
// alone: filters, scores and assuming, over the in-memory cache, one pod
// after another, no API server.
func BenchmarkScheduleAlgorithm1000PodsOn100Nodes(b *testing.B) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		h := newHarness(b, benchNodes()...)
		pods := benchPods()
		b.StartTimer()
		start := time.Now()
		for _, p := range pods {
			h.mustPlace(p)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(1000*b.N)/total.Seconds(), "pods/s")
}

// The benchmark's workload placed as its rules say: app-0 one to a node,
// every app 20 to a zone.
func TestBenchmarkWorkloadPlacement(t *testing.T) {
	h := newHarness(t, benchNodes()...)
	perZone := map[string]int{}
	app0 := map[string]bool{}
	for _, p := range benchPods() {
		node := h.mustPlace(p)
		perZone[p.Labels["app"]+"/"+h.s.cache.nodes[node].node.Labels[corev1.LabelTopologyZone]]++
		if p.Labels["app"] == "app-0" {
			if app0[node] {
				t.Fatalf("two app-0 pods on %s", node)
			}
			app0[node] = true
		}
	}
	for k, n := range perZone {
		if n != 20 {
			t.Errorf("%s: %d pods, want 20", k, n)
		}
	}
}
