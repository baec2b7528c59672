package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestQuotaAndLimitRange drives the LimitRanger and ResourceQuota
// admission together with the resource-quota controller, as the course's
// resource-management lab does.
func TestQuotaAndLimitRange(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	const ns = "quota"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits"}, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Max:            corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
	}}}}
	if _, err := cs.CoreV1().LimitRanges(ns).Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rq := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "compute"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		corev1.ResourcePods:        resource.MustParse("2"),
		corev1.ResourceRequestsCPU: resource.MustParse("1"),
		"count/configmaps":         resource.MustParse("2"), // kube-root-ca.crt is one
	}}}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, rq, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	used := func(want string) func() error {
		return func() error {
			q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "compute", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p, c, cm := q.Status.Used[corev1.ResourcePods], q.Status.Used[corev1.ResourceRequestsCPU], q.Status.Used["count/configmaps"]
			if got := fmt.Sprintf("pods=%s cpu=%s configmaps=%s", p.String(), c.String(), cm.String()); got != want || len(q.Status.Hard) != 3 {
				return fmt.Errorf("used %s, hard %v; want %s", got, q.Status.Hard, want)
			}
			return nil
		}
	}
	eventually(t, "the quota's status", used("pods=0 cpu=0 configmaps=1"))

	pod := func(name, cpuLimit string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
		if cpuLimit != "" {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLimit)}
		}
		return p
	}
	a, err := cs.CoreV1().Pods(ns).Create(ctx, pod("a", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Spec.Containers[0].Resources; got.Requests.Cpu().String() != "250m" || got.Limits.Cpu().String() != "500m" {
		t.Errorf("defaults from the LimitRange: %v", got)
	}
	if got := a.Annotations["kubernetes.io/limit-ranger"]; got != "LimitRanger plugin set: cpu request for container app; cpu limit for container app" {
		t.Errorf("limit-ranger annotation %q", got)
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("big", "2"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2`) {
		t.Errorf("over the LimitRange's max: %v", err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod("b", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("c", ""), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2") {
		t.Errorf("third pod: %v", err)
	}
	eventually(t, "usage of two pods", used("pods=2 cpu=500m configmaps=1"))
	// A dry run checks but charges nothing.
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{DryRun: []string{"All"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "y"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a configmap over the count: %v", err)
	}

	// Deletions give back: the controller recounts on their events.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "usage after deletions", used("pods=1 cpu=250m configmaps=1"))
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod("c", ""), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod after one was deleted: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "y"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("a configmap after one was deleted: %v", err)
	}

	// A quota on limits refuses pods that set none, naming the container.
	if err := cs.CoreV1().LimitRanges(ns).Delete(ctx, "limits", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	strict := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "strict"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		corev1.ResourceLimitsMemory: resource.MustParse("1Gi")}}}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(ctx, strict, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the strict quota's status", func() error {
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "strict", metav1.GetOptions{})
		if err == nil && len(q.Status.Hard) == 0 {
			return fmt.Errorf("no status yet")
		}
		return err
	})
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod("d", "100m"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "failed quota: strict: must specify limits.memory for: app") {
		t.Errorf("a pod without a memory limit: %v", err)
	}
}
