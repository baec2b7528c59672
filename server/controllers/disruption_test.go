package controllers_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

func TestPodDisruptionBudget(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("n1", "4"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	three := int32(3)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &three,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// readyAll plays the kubelet: the bound pods not yet running run, Ready.
	readyAll := func(want int) []string {
		t.Helper()
		var names []string
		eventually(t, fmt.Sprintf("%d pods bound", want), func() error {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			names = nil
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && p.Spec.NodeName != "" {
					names = append(names, p.Name)
				}
			}
			if len(names) != want {
				return fmt.Errorf("bound: %v", names)
			}
			return nil
		})
		for _, name := range names {
			if p, _ := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); p.Status.Phase != corev1.PodRunning {
				setPodRunning(t, cs, "default", name, true)
			}
		}
		return names
	}
	names := readyAll(3)

	status := func(name string, want policyv1.PodDisruptionBudgetStatus, reason string) {
		t.Helper()
		eventually(t, name+"'s status", func() error {
			pdb, err := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := pdb.Status
			cond := meta.FindStatusCondition(st.Conditions, policyv1.DisruptionAllowedCondition)
			if st.ExpectedPods != want.ExpectedPods || st.CurrentHealthy != want.CurrentHealthy || st.DesiredHealthy != want.DesiredHealthy ||
				st.DisruptionsAllowed != want.DisruptionsAllowed || st.ObservedGeneration != pdb.Generation || len(st.DisruptedPods) != 0 ||
				cond == nil || cond.Reason != reason {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
	}
	budget := func(name string, minAvailable, maxUnavailable *intstr.IntOrString) {
		t.Helper()
		pdb := &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
				MinAvailable: minAvailable, MaxUnavailable: maxUnavailable},
		}
		if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// maxUnavailable 50% of the Deployment's 3 replicas: 2 (rounded up), so 1 must stay.
	half := intstr.FromString("50%")
	budget("half", nil, &half)
	status("half", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, CurrentHealthy: 3, DesiredHealthy: 1, DisruptionsAllowed: 2}, policyv1.SufficientPodsReason)
	if err := cs.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "half", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	two := intstr.FromInt32(2)
	budget("keep-two", &two, nil)
	status("keep-two", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 3, CurrentHealthy: 3, DesiredHealthy: 2, DisruptionsAllowed: 1}, policyv1.SufficientPodsReason)

	evict := func(name string) error {
		return cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
	}
	if err := evict(names[0]); err != nil {
		t.Fatalf("the first eviction: %v", err)
	}
	if err := evict(names[1]); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("the second eviction: %v, want 429", err)
	}
	// The evicted pod terminates; its replacement is not ready yet.
	status("keep-two", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, CurrentHealthy: 2, DesiredHealthy: 2, DisruptionsAllowed: 0}, policyv1.InsufficientPodsReason)
	if err := evict(names[1]); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("an eviction with none allowed: %v, want 429", err)
	}
	readyAll(3)
	status("keep-two", policyv1.PodDisruptionBudgetStatus{ExpectedPods: 4, CurrentHealthy: 3, DesiredHealthy: 2, DisruptionsAllowed: 1}, policyv1.SufficientPodsReason)
	if err := evict(names[1]); err != nil {
		t.Fatalf("an eviction allowed again: %v", err)
	}
}
