package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
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

// TestDeploymentRollingUpdateBounds watches a rolling update with
// maxSurge 1 and maxUnavailable 1 over 4 replicas: at no moment do the
// ReplicaSets ask for more than 5 pods or are fewer than 3 pods Ready.
// (As upstream, the bound is on what the ReplicaSets ask for: for the
// instant between a new ReplicaSet's create and an old one's delete, a
// sixth pod may exist.)
func TestDeploymentRollingUpdateBounds(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")
	if _, err := cs.CoreV1().Nodes().Create(ctx, node("n1", "16"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stsStartKubelet(t, cs, true)
	labels := map[string]string{"app": "bounded"}
	one := intstr.FromInt32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bounded"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](4),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &one}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1"}}}},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := func(image string) func() error {
		return func() error {
			got, err := cs.AppsV1().Deployments("default").Get(ctx, "bounded", metav1.GetOptions{})
			if err != nil {
				return err
			}
			st := got.Status
			if got.Spec.Template.Spec.Containers[0].Image != image || st.ObservedGeneration != got.Generation ||
				st.UpdatedReplicas != 4 || st.AvailableReplicas != 4 || st.Replicas != 4 {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		}
	}
	eventually(t, "the first rollout", done("nginx:1"))

	// Watch pods and ReplicaSets from here on, from a list of what is.
	pods, specs := map[string]*corev1.Pod{}, map[string]int32{}
	pl, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bounded"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pl.Items {
		pods[pl.Items[i].Name] = &pl.Items[i]
	}
	rl, err := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bounded"})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rl.Items {
		specs[rs.Name] = *rs.Spec.Replicas
	}
	pw, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=bounded", ResourceVersion: pl.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Stop()
	rw, err := cs.AppsV1().ReplicaSets("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=bounded", ResourceVersion: rl.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Stop()
	maxPods, minReady, maxSpec := 0, 4, int32(0)
	observe := func() {
		existing, ready := 0, 0
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				continue
			}
			existing++
			if podReady(p) {
				ready++
			}
		}
		var sum int32
		for _, n := range specs {
			sum += n
		}
		maxPods, minReady, maxSpec = max(maxPods, existing), min(minReady, ready), max(maxSpec, sum)
	}
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}`
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "bounded", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	finished := make(chan error, 1)
	go func() {
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err = done("nginx:2")(); err == nil {
				break
			}
		}
		finished <- err
	}()
	for watching := true; watching; {
		select {
		case ev := <-pw.ResultChan():
			if p, ok := ev.Object.(*corev1.Pod); ok {
				if ev.Type == watch.Deleted {
					delete(pods, p.Name)
				} else {
					pods[p.Name] = p
				}
			}
		case ev := <-rw.ResultChan():
			if rs, ok := ev.Object.(*appsv1.ReplicaSet); ok {
				if ev.Type == watch.Deleted {
					delete(specs, rs.Name)
				} else {
					specs[rs.Name] = *rs.Spec.Replicas
				}
			}
		case err := <-finished:
			if err != nil {
				t.Fatalf("the rollout: %v", err)
			}
			watching = false
		}
		observe()
	}
	t.Logf("during the rollout: ReplicaSets asked for up to %d pods, %d existed, %d were Ready at the least", maxSpec, maxPods, minReady)
	if maxSpec > 5 || minReady < 3 || maxPods > 6 {
		t.Errorf("during the rollout: ReplicaSets asked for up to %d pods (at most 5) and %d existed, %d were Ready at the least (at least 3)",
			maxSpec, maxPods, minReady)
	}
	if maxSpec < 5 {
		t.Errorf("the rollout never surged: at most %d pods asked for", maxSpec)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
