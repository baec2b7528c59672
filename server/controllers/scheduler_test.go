package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func node(name string, cpu string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110"),
		}},
	}
}

func pod(name, cpu string, selector map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeSelector: selector, Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
}

func TestScheduler(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")

	// No nodes: FailedScheduling as upstream words it.
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("early", "100m", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "FailedScheduling with no nodes", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "early", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == "no nodes available to schedule pods" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", p.Status.Conditions)
	})

	for _, n := range []*corev1.Node{
		node("small", "500m"),
		node("big", "4"),
		node("tainted", "8", corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}),
	} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	onNode := func(name, want string) {
		t.Helper()
		eventually(t, name+" on "+want, func() error {
			p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil && p.Spec.NodeName != want {
				return fmt.Errorf("on %q", p.Spec.NodeName)
			}
			return err
		})
	}
	onNode("early", "big") // tried again when nodes came: the least allocated that fits
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("pinned", "100m", map[string]string{"kubernetes.io/hostname": "small"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	onNode("pinned", "small")
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("huge", "6", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "FailedScheduling with reasons", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=huge,reason=FailedScheduling"})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if strings.HasPrefix(e.Message, "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.") {
				return nil
			}
		}
		return fmt.Errorf("events %v", evs.Items)
	})
	eventually(t, "a Scheduled event", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=pinned,reason=Scheduled"})
		if err == nil && (len(evs.Items) == 0 || evs.Items[0].Message != "Successfully assigned default/pinned to small") {
			return fmt.Errorf("events %v", evs.Items)
		}
		return err
	})
}
