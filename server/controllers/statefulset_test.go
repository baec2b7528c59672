package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"
)

// stsKubelet stands in for the kubelets these tests have not: it finishes
// the deletion of terminating pods and, while ready is set, makes the pods
// bound to a node Running and Ready.
type stsKubelet struct{ ready atomic.Bool }

func stsStartKubelet(t *testing.T, cs kubernetes.Interface, ready bool) *stsKubelet {
	k := &stsKubelet{}
	k.ready.Store(ready)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range pods.Items {
					p := &pods.Items[i]
					switch {
					case p.DeletionTimestamp != nil:
						_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
					case k.ready.Load() && p.Spec.NodeName != "" && p.Status.Phase != corev1.PodRunning:
						_ = stsMarkReady(ctx, cs, p)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return k
}

// stsMarkReady makes a pod Running and Ready, as its kubelet would.
func stsMarkReady(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod) error {
	p = p.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	_, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// stsReady marks the pod named Running and Ready.
func stsReady(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	eventually(t, name+" ready", func() error {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName == "" {
			// A kubelet runs only scheduled pods (whose claims are bound).
			return fmt.Errorf("pod %s is not scheduled", name)
		}
		return stsMarkReady(context.Background(), cs, p)
	})
}

// stsNever fails the test if fn returns an error within d.
func stsNever(t *testing.T, what string, d time.Duration, fn func() error) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

func stsAbsent(cs kubernetes.Interface, name string) func() error {
	return func() error {
		_, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("pod %s exists", name)
		}
		return err
	}
}

func stsExists(cs kubernetes.Interface, name string) func() error {
	return func() error {
		_, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		return err
	}
}

// stsTerminating: the pod is being deleted (the kubelet has yet to finish).
func stsTerminating(cs kubernetes.Interface, name string, want bool) func() error {
	return func() error {
		p, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if (p.DeletionTimestamp != nil) != want {
			return fmt.Errorf("pod %s: deletionTimestamp %v", name, p.DeletionTimestamp)
		}
		return nil
	}
}

// stsPodImages lists "name=image@revision" for the set's live pods.
func stsPodImages(cs kubernetes.Interface, selector string) (string, error) {
	pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", err
	}
	var got []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			got = append(got, fmt.Sprintf("%s=%s@%s", p.Name, p.Spec.Containers[0].Image, p.Labels["controller-revision-hash"]))
		}
	}
	sort.Strings(got)
	return strings.Join(got, ","), nil
}

func stsWebSet(replicas int32, policy appsv1.PodManagementPolicyType, claims bool) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas), ServiceName: "web", PodManagementPolicy: policy,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1"}}}},
		},
	}
	if claims {
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "www"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
	}
	return set
}

// stsSetup starts the API, the controllers and one node.
func stsSetup(t *testing.T) kubernetes.Interface {
	cfg := startAPI(t)
	runControllers(t, cfg, "server-a")
	// The test (and its kubelet) poll: not at client-go's default 5 QPS.
	fast := *cfg
	fast.QPS, fast.Burst = 1000, 1000
	cs := kubernetes.NewForConfigOrDie(&fast)
	if _, err := cs.CoreV1().Nodes().Create(context.Background(), node("a", "8"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Volumes for the claims of stsWebSet's template (of no class: they
	// bind at once, and the scheduler places no pod before its claims
	// are bound).
	for i := range 4 {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("vol-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/tmp/sts-vol-%d", i)}},
			}}
		if _, err := cs.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

func stsPatch(t *testing.T, cs kubernetes.Interface, pt types.PatchType, patch string) {
	t.Helper()
	if _, err := cs.AppsV1().StatefulSets("default").Patch(context.Background(), "web", pt, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestStatefulSetOrderedReady(t *testing.T) {
	cs := stsSetup(t)
	ctx := context.Background()
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, stsWebSet(3, "", true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0", stsExists(cs, "web-0"))
	p, err := cs.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Labels["statefulset.kubernetes.io/pod-name"] != "web-0" || p.Labels["apps.kubernetes.io/pod-index"] != "0" ||
		!strings.HasPrefix(p.Labels["controller-revision-hash"], "web-") || p.Labels["app"] != "web" {
		t.Errorf("labels %v", p.Labels)
	}
	if p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "web" {
		t.Errorf("hostname %q subdomain %q", p.Spec.Hostname, p.Spec.Subdomain)
	}
	if len(p.Spec.Volumes) == 0 || p.Spec.Volumes[0].Name != "www" || p.Spec.Volumes[0].PersistentVolumeClaim == nil ||
		p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-0" {
		t.Errorf("volumes %+v", p.Spec.Volumes)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.Kind != "StatefulSet" || ref.Name != "web" {
		t.Errorf("owner %+v", ref)
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err) // made before the pod
	}
	if pvc.Labels["app"] != "web" || len(pvc.OwnerReferences) != 0 {
		t.Errorf("claim labels %v owners %v", pvc.Labels, pvc.OwnerReferences)
	}

	// OrderedReady: web-1 waits for web-0 to be Running and Ready.
	stsNever(t, "web-1 before web-0 is ready", 500*time.Millisecond, stsAbsent(cs, "web-1"))
	stsReady(t, cs, "web-0")
	eventually(t, "web-1", stsExists(cs, "web-1"))
	stsNever(t, "web-2 before web-1 is ready", 300*time.Millisecond, stsAbsent(cs, "web-2"))
	stsReady(t, cs, "web-1")
	eventually(t, "web-2", stsExists(cs, "web-2"))
	stsReady(t, cs, "web-2")
	eventually(t, "the status", func() error {
		set, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := set.Status
		if st.ObservedGeneration != set.Generation || st.Replicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 ||
			st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 || st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision ||
			st.CollisionCount == nil || *st.CollisionCount != 0 {
			return fmt.Errorf("status %+v", st)
		}
		// kubectl rollout status
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(set)
		if err != nil {
			return err
		}
		viewer, err := polymorphichelpers.StatusViewerFor(schema.GroupKind{Group: "apps", Kind: "StatefulSet"})
		if err != nil {
			return err
		}
		msg, done, err := viewer.Status(&unstructured.Unstructured{Object: u}, 0)
		if err == nil && !done {
			return fmt.Errorf("rollout status: %s", msg)
		}
		return err
	})
	eventually(t, "the events", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,reason=SuccessfulCreate"})
		if err != nil {
			return err
		}
		var msgs []string
		for _, e := range evs.Items {
			msgs = append(msgs, e.Message)
		}
		for _, want := range []string{"create Pod web-0 in StatefulSet web successful", "create Claim www-web-0 Pod web-0 in StatefulSet web success",
			"create Pod web-2 in StatefulSet web successful"} {
			if !slices.Contains(msgs, want) {
				return fmt.Errorf("no %q in %q", want, msgs)
			}
		}
		return nil
	})

	// Scale down: from the highest ordinal, one at a time, each waiting
	// for the one before to be gone.
	stsPatch(t, cs, types.MergePatchType, `{"spec":{"replicas":1}}`)
	eventually(t, "web-2 terminating", stsTerminating(cs, "web-2", true))
	stsNever(t, "web-1 kept while web-2 terminates", 300*time.Millisecond, stsTerminating(cs, "web-1", false))
	stsStartKubelet(t, cs, true) // finishes the deletions
	eventually(t, "web-1 and web-2 gone", func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && !strings.HasPrefix(got, "web-0=nginx:1@") || strings.Contains(got, ",") {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})
	for _, claim := range []string{"www-web-0", "www-web-1", "www-web-2"} { // Retain: claims stay
		if _, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, claim, metav1.GetOptions{}); err != nil {
			t.Errorf("claim %s: %v", claim, err)
		}
	}
}

func TestStatefulSetParallelAndRetention(t *testing.T) {
	cs := stsSetup(t)
	ctx := context.Background()
	stsStartKubelet(t, cs, false) // finishes deletions; pods stay unready
	set := stsWebSet(3, appsv1.ParallelPodManagement, true)
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	}
	created, err := cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(want string) func() error {
		return func() error {
			list, err := cs.CoreV1().PersistentVolumeClaims("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			var got []string
			for _, c := range list.Items {
				owner := "-"
				if ref := metav1.GetControllerOf(&c); ref != nil {
					owner = ref.Kind + "/" + ref.Name
				}
				got = append(got, c.Name+":"+owner)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != want {
				return fmt.Errorf("claims %v, want %s", got, want)
			}
			return nil
		}
	}
	// Parallel: all three at once, none of them ready.
	eventually(t, "three pods", func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && strings.Count(got, "=nginx:1@") != 3 {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})
	eventually(t, "three claims owned by the set", claims("www-web-0:StatefulSet/web,www-web-1:StatefulSet/web,www-web-2:StatefulSet/web"))
	// OnDelete: a new template waits for the pods to be deleted.
	stsPatch(t, cs, types.MergePatchType,
		`{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null},"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}`)
	stsNever(t, "pods kept under OnDelete", 300*time.Millisecond, func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && strings.Count(got, "=nginx:1@") != 3 {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})
	if err := cs.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-0 made again from the new template", func() error {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		pods, err := stsPodImages(cs, "app=web")
		if err == nil && !strings.HasPrefix(pods, "web-0=nginx:2@"+got.Status.UpdateRevision+",web-1=nginx:1@"+got.Status.CurrentRevision) ||
			got.Status.UpdatedReplicas != 1 || got.Status.CurrentReplicas != 2 {
			return fmt.Errorf("pods %s, status %+v", pods, got.Status)
		}
		return err
	})
	// whenScaled Delete: the claims of the pods scaled away go with them.
	stsPatch(t, cs, types.MergePatchType, `{"spec":{"replicas":1}}`)
	eventually(t, "one pod", func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && (strings.Contains(got, ",") || !strings.HasPrefix(got, "web-0=")) {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})
	eventually(t, "one claim", claims("www-web-0:StatefulSet/web"))
	// whenDeleted Delete: the last claim goes with the set.
	if err := cs.AppsV1().StatefulSets("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no claims", claims(""))
	eventually(t, "no pods", func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && got != "" {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})
	eventually(t, "no revisions", func() error {
		list, err := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) > 0 {
			return fmt.Errorf("%d revisions, owner %v (set uid %s)", len(list.Items), list.Items[0].OwnerReferences, created.UID)
		}
		return err
	})
}

// stsRevisionsOf maps each revision of the owner named to its number.
func stsRevisionsOf(cs kubernetes.Interface, owner string) (map[string]int64, error) {
	list, err := cs.AppsV1().ControllerRevisions("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, cr := range list.Items {
		if ref := metav1.GetControllerOf(&cr); ref != nil && ref.Name == owner {
			out[cr.Name] = cr.Revision
		}
	}
	return out, nil
}

// stsRollback runs kubectl rollout undo's code.
func stsRollback(t *testing.T, cs kubernetes.Interface, kind string, obj runtime.Object, to int64) string {
	t.Helper()
	rb, err := polymorphichelpers.RollbackerFor(schema.GroupKind{Group: "apps", Kind: kind}, cs)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := rb.Rollback(obj, nil, to, cmdutil.DryRunNone)
	if err != nil {
		t.Fatalf("rollout undo: %v", err)
	}
	return msg
}

func stsHistory(t *testing.T, cs kubernetes.Interface, kind, name string) string {
	t.Helper()
	hv, err := polymorphichelpers.HistoryViewerFor(schema.GroupKind{Group: "apps", Kind: kind}, cs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := hv.ViewHistory("default", name, 0)
	if err != nil {
		t.Fatalf("rollout history: %v", err)
	}
	return strings.Join(strings.Fields(out), " ")
}

func TestStatefulSetRollingUpdateAndUndo(t *testing.T) {
	cs := stsSetup(t)
	ctx := context.Background()
	stsStartKubelet(t, cs, true)
	set, err := cs.AppsV1().StatefulSets("default").Create(ctx, stsWebSet(3, "", false), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rev1, rev2 string
	eventually(t, "three pods at the first revision", func() error {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.ReadyReplicas != 3 || got.Status.CurrentRevision == "" {
			return fmt.Errorf("status %+v", got.Status)
		}
		rev1 = got.Status.CurrentRevision
		return nil
	})
	cr, err := cs.AppsV1().ControllerRevisions("default").Get(ctx, rev1, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]map[string]map[string]any
	if err := json.Unmarshal(cr.Data.Raw, &data); err != nil || data["spec"]["template"]["$patch"] != "replace" {
		t.Errorf("data %s: %v", cr.Data.Raw, err)
	}
	if ref := metav1.GetControllerOf(cr); cr.Revision != 1 || ref == nil || ref.UID != set.UID || cr.Labels["app"] != "web" ||
		rev1 != "web-"+cr.Labels["controller.kubernetes.io/hash"] {
		t.Errorf("revision %+v", cr.ObjectMeta)
	}

	// A new template with partition 2: only web-2 is replaced.
	stsPatch(t, cs, types.StrategicMergePatchType,
		`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}`)
	eventually(t, "web-2 updated", func() error {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := got.Status
		rev2 = st.UpdateRevision
		if st.ObservedGeneration != got.Generation || st.CurrentRevision != rev1 || rev2 == rev1 || st.UpdatedReplicas != 1 ||
			st.CurrentReplicas != 2 || st.ReadyReplicas != 3 {
			return fmt.Errorf("status %+v", st)
		}
		pods, err := stsPodImages(cs, "app=web")
		if want := fmt.Sprintf("web-0=nginx:1@%s,web-1=nginx:1@%[1]s,web-2=nginx:2@%s", rev1, rev2); err == nil && pods != want {
			return fmt.Errorf("pods %s, want %s", pods, want)
		}
		return err
	})
	stsNever(t, "web-1 below the partition", 300*time.Millisecond, func() error {
		got, err := stsPodImages(cs, "app=web")
		if err == nil && !strings.Contains(got, "web-1=nginx:1@") {
			return fmt.Errorf("pods %s", got)
		}
		return err
	})

	// Partition 0: web-1, then web-0.
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "controller-revision-hash=" + rev2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	stsPatch(t, cs, types.MergePatchType, `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
	var order []string
	for timeout := time.After(10 * time.Second); len(order) < 3; {
		select {
		case ev := <-w.ResultChan():
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				order = append(order, p.Name)
			}
		case <-timeout:
			t.Fatalf("pods made at the new revision: %v", order)
		}
	}
	if strings.Join(order, ",") != "web-2,web-1,web-0" {
		t.Errorf("replaced in the order %v", order)
	}
	eventually(t, "the rollout done", func() error {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err == nil && (got.Status.CurrentRevision != rev2 || got.Status.UpdateRevision != rev2 || got.Status.CurrentReplicas != 3 || got.Status.ReadyReplicas != 3) {
			return fmt.Errorf("status %+v", got.Status)
		}
		return err
	})
	if revs, err := stsRevisionsOf(cs, "web"); err != nil || len(revs) != 2 || revs[rev1] != 1 || revs[rev2] != 2 {
		t.Fatalf("revisions %v %v", revs, err)
	}
	if h := stsHistory(t, cs, "StatefulSet", "web"); h != "REVISION CHANGE-CAUSE 1 <none> 2 <none>" {
		t.Errorf("rollout history: %s", h)
	}

	// kubectl rollout undo: back to the first template, whose revision
	// becomes 3.
	if msg := stsRollback(t, cs, "StatefulSet", set, 0); msg != "rolled back" {
		t.Errorf("rollout undo: %s", msg)
	}
	eventually(t, "the rollback", func() error {
		got, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Spec.Template.Spec.Containers[0].Image != "nginx:1" || got.Status.CurrentRevision != rev1 || got.Status.UpdateRevision != rev1 ||
			got.Status.ReadyReplicas != 3 || got.Status.CurrentReplicas != 3 {
			return fmt.Errorf("image %s status %+v", got.Spec.Template.Spec.Containers[0].Image, got.Status)
		}
		pods, err := stsPodImages(cs, "app=web")
		if want := fmt.Sprintf("web-0=nginx:1@%s,web-1=nginx:1@%[1]s,web-2=nginx:1@%[1]s", rev1); err == nil && pods != want {
			return fmt.Errorf("pods %s, want %s", pods, want)
		}
		return err
	})
	if revs, err := stsRevisionsOf(cs, "web"); err != nil || len(revs) != 2 || revs[rev1] != 3 || revs[rev2] != 2 {
		t.Fatalf("revisions after the rollback %v %v", revs, err)
	}
	// The revision's data is what kubectl computes for the current
	// template: undoing to it is a no-op.
	if msg := stsRollback(t, cs, "StatefulSet", set, 3); !strings.HasPrefix(msg, "skipped rollback") {
		t.Errorf("rollout undo --to-revision=3: %s", msg)
	}
}

func TestDaemonSetRevisions(t *testing.T) {
	cs := stsSetup(t)
	ctx := context.Background()
	stsStartKubelet(t, cs, false)
	labels := map[string]string{"app": "agent"}
	ds, err := cs.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// pods is "image@hash" for the live daemon pods, and the revisions.
	state := func(want string, revs map[string]int64) func() error {
		return func() error {
			list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
			if err != nil {
				return err
			}
			var got []string
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil {
					got = append(got, p.Spec.Containers[0].Image+"@agent-"+p.Labels["controller-revision-hash"])
				}
			}
			if strings.Join(got, ",") != want {
				return fmt.Errorf("pods %v, want %s", got, want)
			}
			have, err := stsRevisionsOf(cs, "agent")
			if err == nil && fmt.Sprint(have) != fmt.Sprint(revs) {
				return fmt.Errorf("revisions %v, want %v", have, revs)
			}
			return err
		}
	}
	var first, second string
	eventually(t, "the first revision", func() error {
		revs, err := stsRevisionsOf(cs, "agent")
		if err != nil || len(revs) != 1 {
			return fmt.Errorf("revisions %v %v", revs, err)
		}
		for name := range revs {
			first = name
		}
		return nil
	})
	cr, err := cs.AppsV1().ControllerRevisions("default").Get(ctx, first, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first != "agent-"+cr.Labels["controller-revision-hash"] || cr.Labels["app"] != "agent" || !strings.Contains(string(cr.Data.Raw), `"$patch":"replace"`) {
		t.Errorf("revision %+v %s", cr.ObjectMeta, cr.Data.Raw)
	}
	eventually(t, "a pod at the first revision", state("busybox:1@"+first, map[string]int64{first: 1}))
	if _, err := cs.AppsV1().DaemonSets("default").Patch(ctx, "agent", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second revision", func() error {
		revs, err := stsRevisionsOf(cs, "agent")
		if err != nil || len(revs) != 2 {
			return fmt.Errorf("revisions %v %v", revs, err)
		}
		for name := range revs {
			if name != first {
				second = name
			}
		}
		return nil
	})
	eventually(t, "the pod replaced", state("busybox:2@"+second, map[string]int64{first: 1, second: 2}))
	if msg := stsRollback(t, cs, "DaemonSet", ds, 0); msg != "rolled back" {
		t.Errorf("rollout undo: %s", msg)
	}
	eventually(t, "the rollback", state("busybox:1@"+first, map[string]int64{first: 3, second: 2}))
	if h := stsHistory(t, cs, "DaemonSet", "agent"); h != "REVISION CHANGE-CAUSE 2 <none> 3 <none>" {
		t.Errorf("rollout history: %s", h)
	}
	eventually(t, "the status", func() error {
		got, err := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err == nil && (got.Status.ObservedGeneration != got.Generation || got.Status.UpdatedNumberScheduled != 1 || got.Status.DesiredNumberScheduled != 1) {
			return fmt.Errorf("status %+v", got.Status)
		}
		return err
	})
}
