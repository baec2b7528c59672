package controllers_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// rsByRevision maps each ReplicaSet of the deployment to its revision
// annotation and replicas.
func rsByRevision(cs kubernetes.Interface) (map[string]string, error) {
	rss, err := cs.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, rs := range rss.Items {
		out[rs.Spec.Template.Spec.Containers[0].Image] = fmt.Sprintf("rev %s replicas %d", rs.Annotations["deployment.kubernetes.io/revision"], *rs.Spec.Replicas)
	}
	return out, nil
}

func TestDeploymentRolloutAndRollback(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1"}}}},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, want map[string]string) {
		t.Helper()
		eventually(t, what, func() error {
			got, err := rsByRevision(cs)
			if err == nil && fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("got %v, want %v", got, want)
			}
			return err
		})
	}
	expect("the first ReplicaSet", map[string]string{"nginx:1": "rev 1 replicas 3"})
	eventually(t, "3 pods named after the ReplicaSet", func() error {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err == nil && len(pods.Items) != 3 {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		return err
	})
	setImage := func(image string) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":%q}]}}}}`, image)
		if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "web", "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setImage("nginx:2")
	// No pod ever becomes available here (no nodes): the old pods cost no
	// availability, so the old ReplicaSet goes straight to 0.
	expect("the rollout", map[string]string{"nginx:1": "rev 1 replicas 0", "nginx:2": "rev 2 replicas 3"})
	setImage("nginx:1") // what kubectl rollout undo does
	expect("the rollback", map[string]string{"nginx:1": "rev 3 replicas 3", "nginx:2": "rev 2 replicas 0"})
	eventually(t, "the status", func() error {
		got, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation || got.Status.UpdatedReplicas != 3 || got.Status.UnavailableReplicas != 3 || len(got.Status.Conditions) != 2 {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	eventually(t, "ScalingReplicaSet events", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Deployment,reason=ScalingReplicaSet"})
		if err == nil && len(evs.Items) < 3 {
			return fmt.Errorf("%d events", len(evs.Items))
		}
		return err
	})
}
