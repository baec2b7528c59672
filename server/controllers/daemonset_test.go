package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestDaemonSet(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	for _, n := range []*corev1.Node{
		node("a", "2"),
		node("gpu", "2", corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}),
	} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}}},
		},
	}
	if _, err := cs.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// placed lists "node=image" for each daemon pod, bound by the scheduler.
	placed := func(want string) func() error {
		return func() error {
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
			if err != nil {
				return err
			}
			var got []string
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil {
					got = append(got, p.Spec.NodeName+"="+p.Spec.Containers[0].Image)
				}
			}
			sort.Strings(got)
			if strings.Join(got, ",") != want {
				return fmt.Errorf("pods %v, want %s", got, want)
			}
			return nil
		}
	}
	eventually(t, "one pod, on the untainted node", placed("a=busybox:1"))
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("b", "2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a pod on the new node", placed("a=busybox:1,b=busybox:1"))
	if _, err := cs.AppsV1().DaemonSets("default").Patch(ctx, "agent", "application/strategic-merge-patch+json",
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// None of the pods is ready (no kubelet): replacing them costs no availability.
	eventually(t, "the rolling update", placed("a=busybox:2,b=busybox:2"))
	eventually(t, "the status", func() error {
		got, err := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err == nil && (got.Status.DesiredNumberScheduled != 2 || got.Status.UpdatedNumberScheduled != 2 || got.Status.ObservedGeneration != got.Generation) {
			return fmt.Errorf("status %+v", got.Status)
		}
		return err
	})
}
