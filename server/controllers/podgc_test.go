package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"labctl/server/controllers"
)

func TestPodGC(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	for _, n := range []string{"gone", "kept"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, node(n, "4"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runTunedControllers(t, cfg, controllers.Config{PodGCPeriod: 200 * time.Millisecond, PodGCQuarantine: time.Second, TerminatedPodGCThreshold: 2})

	// A pod on a node that is deleted: marked Failed, then deleted.
	orphan := pod("orphan", "100m", nil)
	orphan.Spec.NodeName = "gone"
	if _, err := cs.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setPodRunning(t, cs, "default", "orphan", true)
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=orphan"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := cs.CoreV1().Nodes().Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var failed bool
	timeout := time.After(15 * time.Second)
watching:
	for {
		select {
		case ev := <-w.ResultChan():
			p, _ := ev.Object.(*corev1.Pod)
			switch {
			case p == nil:
				t.Fatalf("watch: %v", ev.Object)
			case ev.Type == watch.Modified && p.Status.Phase == corev1.PodFailed:
				c := findCondition(p, corev1.DisruptionTarget)
				if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "DeletionByPodGC" || c.Message != "PodGC: node no longer exists" {
					t.Fatalf("condition %+v", c)
				}
				failed = true
			case ev.Type == watch.Deleted:
				break watching
			}
		case <-timeout:
			t.Fatal("the orphaned pod is still there")
		}
	}
	if !failed {
		t.Fatal("the orphaned pod was not marked Failed before its deletion")
	}

	// Finished pods over the threshold (2): the oldest go.
	for i := 1; i <= 4; i++ {
		p := pod(fmt.Sprintf("done-%d", i), "100m", nil)
		p.Spec.NodeName = "kept"
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 4; i++ {
		p, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("done-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodSucceeded
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the two oldest finished pods deleted", func() error {
		for i := 1; i <= 4; i++ {
			_, err := cs.CoreV1().Pods("default").Get(ctx, fmt.Sprintf("done-%d", i), metav1.GetOptions{})
			if gone := apierrors.IsNotFound(err); gone != (i <= 2) {
				return fmt.Errorf("done-%d: %v", i, err)
			}
		}
		return nil
	})

	// A terminating pod that was never scheduled (a finalizer holds it) is marked Failed.
	stuck := pod("stuck", "100m", map[string]string{"kubernetes.io/hostname": "nowhere"})
	stuck.Finalizers = []string{"example.com/hold"}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, stuck, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unscheduled terminating pod Failed", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "stuck", metav1.GetOptions{})
		if err == nil && p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return err
	})
}
