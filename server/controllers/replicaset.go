package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// The ReplicaSet controller keeps each ReplicaSet's number of pods: it
// creates pods from the template (named <replicaset>-<random>, owned by
// the ReplicaSet) when there are too few and deletes the least useful
// when there are too many, adopts matching orphans and releases pods that
// stop matching, and reports replicas, fullyLabeledReplicas,
// readyReplicas and availableReplicas in the status, with upstream's
// SuccessfulCreate and SuccessfulDelete events.

// burstReplicas bounds the pods created or deleted in one sync, as
// upstream's --concurrent-replicaset-syncs burst of 500.
const burstReplicas = 500

type replicaSets struct {
	cs       kubernetes.Interface
	src      replicaSource
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	expect   *expectations
	now      func() time.Time
}

// replicaSource is what the controller manages: ReplicaSets, or
// ReplicationControllers seen as ReplicaSets (rc.go), as upstream runs one
// controller for both.
type replicaSource struct {
	kind         schema.GroupVersionKind
	informer     cache.SharedIndexInformer
	get          func(namespace, name string) (*appsv1.ReplicaSet, error)
	list         func(namespace string) ([]*appsv1.ReplicaSet, error)
	updateStatus func(ctx context.Context, rs *appsv1.ReplicaSet) error
	// object is what events are about: the ReplicaSet, or the
	// ReplicationController it stands for.
	object func(rs *appsv1.ReplicaSet) runtime.Object
}

func replicaSetSource(cs kubernetes.Interface, f informers.SharedInformerFactory) replicaSource {
	inf := f.Apps().V1().ReplicaSets()
	return replicaSource{
		kind:     appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		informer: inf.Informer(),
		get:      func(ns, name string) (*appsv1.ReplicaSet, error) { return inf.Lister().ReplicaSets(ns).Get(name) },
		list: func(ns string) ([]*appsv1.ReplicaSet, error) {
			return inf.Lister().ReplicaSets(ns).List(labels.Everything())
		},
		updateStatus: func(ctx context.Context, rs *appsv1.ReplicaSet) error {
			_, err := cs.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
			return err
		},
		object: func(rs *appsv1.ReplicaSet) runtime.Object { return rs },
	}
}

func newReplicaSets(cs kubernetes.Interface, f informerSet, src replicaSource, recorder record.EventRecorder, log *slog.Logger) controller {
	rsInf := src.informer
	podInf := f.Core().V1().Pods()
	c := &replicaSets{
		cs:     cs,
		src:    src,
		pods:   podInf.Lister(),
		synced: []cache.InformerSynced{rsInf.HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: strings.ToLower(src.kind.Kind)}),
		recorder: recorder,
		log:      log.With("controller", strings.ToLower(src.kind.Kind)),
		expect:   newExpectations(),
		now:      time.Now,
	}
	f.addEventHandler(rsInf, cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			if key, ok := c.ownerKey(pod); ok {
				c.expect.observed(key, 1, 0)
			}
			c.enqueuePod(pod)
		},
		UpdateFunc: func(old, obj any) {
			// A graceful deletion shows as an update: count it then.
			if pod := obj.(*corev1.Pod); pod.DeletionTimestamp != nil && old.(*corev1.Pod).DeletionTimestamp == nil {
				if key, ok := c.ownerKey(pod); ok {
					c.expect.observed(key, 0, 1)
				}
			}
			c.enqueuePod(old.(*corev1.Pod))
			c.enqueuePod(obj.(*corev1.Pod))
		},
		DeleteFunc: func(obj any) {
			pod, ok := deletedObject[*corev1.Pod](obj)
			if !ok {
				return
			}
			if key, ok := c.ownerKey(pod); ok {
				c.expect.observed(key, 0, 1)
			}
			c.enqueuePod(pod)
		},
	})
	return c
}

func (c *replicaSets) name() string { return strings.ToLower(c.src.kind.Kind) }

func (c *replicaSets) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// ownerKey is the key of the ReplicaSet controlling pod, if one does.
func (c *replicaSets) ownerKey(pod *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != c.src.kind.Kind || ref.APIVersion != c.src.kind.GroupVersion().String() {
		return "", false
	}
	return pod.Namespace + "/" + ref.Name, true
}

// enqueuePod wakes the ReplicaSet owning pod, or, for an orphan, every
// ReplicaSet that selects it (one may adopt it).
func (c *replicaSets) enqueuePod(pod *corev1.Pod) {
	if key, ok := c.ownerKey(pod); ok {
		c.queue.Add(key)
		return
	}
	rss, err := c.src.list(pod.Namespace)
	if err != nil {
		return
	}
	for _, rs := range rss {
		if sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			c.queue.Add(rs.Namespace + "/" + rs.Name)
		}
	}
}

func (c *replicaSets) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

func (c *replicaSets) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	rs, err := c.src.get(ns, name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil // invalid selectors are refused by validation; nothing to do
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	owned, err := c.claim(ctx, rs, sel, all)
	if err != nil {
		return err
	}
	var active []*corev1.Pod
	for _, p := range owned {
		if isActive(p) {
			active = append(active, p)
		}
	}
	var manageErr error
	if rs.DeletionTimestamp == nil && c.expect.satisfied(key) {
		manageErr = c.manage(ctx, rs, active)
	}
	if err := c.updateStatus(ctx, rs, active, manageErr); err != nil {
		return err
	}
	return manageErr
}

// claim returns the pods rs owns after adopting matching orphans and
// releasing owned pods that no longer match, as upstream's
// ControllerRefManager does.
func (c *replicaSets) claim(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		matches := sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == rs.UID && matches:
			owned = append(owned, p)
		case ref != nil && ref.UID == rs.UID:
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, rs.UID, p.UID)
			if _, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		case ref == nil && matches && rs.DeletionTimestamp == nil && p.DeletionTimestamp == nil:
			refJSON, _ := json.Marshal(c.controllerRef(rs))
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"uid":%q}}`, refJSON, p.UID)
			adopted, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

func (c *replicaSets) controllerRef(rs *appsv1.ReplicaSet) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: c.src.kind.GroupVersion().String(), Kind: c.src.kind.Kind, Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}
}

// isActive: not finished and not being deleted.
func isActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// manage creates or deletes pods to reach spec.replicas.
func (c *replicaSets) manage(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	key := rs.Namespace + "/" + rs.Name
	diff := len(active) - int(want)
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		c.expect.expect(key, n, 0)
		// Slow start, as upstream: 1, 2, 4... pods at once, stopping at
		// the first error so that a broken template does not flood.
		created, err := slowStart(n, func() error { return c.createPod(ctx, rs) })
		if skipped := n - created; skipped > 0 {
			c.expect.observed(key, skipped, 0)
		}
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		victims := rankForDeletion(active)[:n]
		c.expect.expect(key, 0, n)
		var firstErr error
		for _, p := range victims {
			err := c.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			if err != nil {
				c.expect.observed(key, 0, 1)
				if !apierrors.IsNotFound(err) && firstErr == nil {
					firstErr = err
				}
				continue
			}
			c.recorder.Eventf(c.src.object(rs), corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
		return firstErr
	}
	return nil
}

// slowStart calls fn n times in growing batches and returns how many
// calls were made before the first error.
func slowStart(n int, fn func() error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		errs := make(chan error, size)
		var wg sync.WaitGroup
		for i := 0; i < size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- fn()
			}()
		}
		wg.Wait()
		close(errs)
		var first error
		for err := range errs {
			if err != nil && first == nil {
				first = err
			}
		}
		done += size
		if first != nil {
			return done, first
		}
	}
	return done, nil
}

func (c *replicaSets) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	t := rs.Spec.Template
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{c.controllerRef(rs)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	created, err := c.cs.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsForbidden(err) || !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(c.src.object(rs), corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.recorder.Eventf(c.src.object(rs), corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// rankForDeletion orders pods from the first to delete to the last, as
// upstream ranks them: not yet on a node before on one, pending before
// running, not ready before ready, more restarts before fewer, newer
// before older.
func rankForDeletion(pods []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod(nil), pods...)
	phase := func(p *corev1.Pod) int {
		switch p.Status.Phase {
		case corev1.PodPending:
			return 0
		case corev1.PodUnknown:
			return 1
		}
		return 2
	}
	restarts := func(p *corev1.Pod) int32 {
		var n int32
		for _, s := range p.Status.ContainerStatuses {
			n += s.RestartCount
		}
		return n
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if phase(a) != phase(b) {
			return phase(a) < phase(b)
		}
		if podReady(a) != podReady(b) {
			return !podReady(a)
		}
		if restarts(a) != restarts(b) {
			return restarts(a) > restarts(b)
		}
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	})
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podAvailable: ready for at least minReadySeconds.
func podAvailable(p *corev1.Pod, minReady int32, now time.Time) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return minReady == 0 || !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(time.Duration(minReady)*time.Second).Before(now)
		}
	}
	return false
}

func (c *replicaSets) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod, manageErr error) error {
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: rs.Generation}
	tmpl := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if podReady(p) {
			st.ReadyReplicas++
			if podAvailable(p, rs.Spec.MinReadySeconds, c.now()) {
				st.AvailableReplicas++
			}
		}
	}
	for _, cond := range rs.Status.Conditions {
		if cond.Type != appsv1.ReplicaSetReplicaFailure {
			st.Conditions = append(st.Conditions, cond)
		}
	}
	if manageErr != nil {
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(c.now()), Reason: "FailedCreate", Message: manageErr.Error(),
		})
	}
	if equalRSStatus(rs.Status, st) {
		return nil
	}
	next := rs.DeepCopy()
	next.Status = st
	err := c.src.updateStatus(ctx, next)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // a newer version is on its way through the informer
	}
	return err
}

func equalRSStatus(a, b appsv1.ReplicaSetStatus) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status || a.Conditions[i].Message != b.Conditions[i].Message {
			return false
		}
	}
	return true
}

// expectations remember the creates and deletes a controller has asked
// for and not yet seen in its informer, so that it does not act twice on
// a stale cache; they lapse after five minutes, as upstream's.
type expectations struct {
	mu sync.Mutex
	m  map[string]*expected
}

type expected struct {
	add, del int
	at       time.Time
}

func newExpectations() *expectations { return &expectations{m: map[string]*expected{}} }

func (e *expectations) expect(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expected{add: add, del: del, at: time.Now()}
}

func (e *expectations) observed(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	return !ok || (x.add <= 0 && x.del <= 0) || time.Since(x.at) > 5*time.Minute
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
