package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// The StatefulSet controller runs each StatefulSet's pods as upstream's
// does. Pod <set>-<ordinal> exists for every ordinal from
// spec.ordinals.start on, made from the template with the
// statefulset.kubernetes.io/pod-name and apps.kubernetes.io/pod-index
// labels, its name as hostname and spec.serviceName as subdomain, and for
// each volumeClaimTemplate the PVC <claim>-<set>-<ordinal>, created before
// the pod and mounted as the template's volume.
//
// Under OrderedReady (the default) pods are created in ordinal order, each
// once every one before it is Running and Ready, and removed from the
// highest ordinal down, one at a time, each once the others are Ready;
// Parallel creates and removes them all at once.
//
// Templates are kept as ControllerRevisions (history.go), and each pod's
// controller-revision-hash label names the revision it was made from;
// status.currentRevision and updateRevision name the old and new ones.
// RollingUpdate replaces the pods not at the update revision from the
// highest ordinal down to the partition, one at a time, each once the one
// replaced before it is Ready; OnDelete replaces them as they are deleted.
// A deleted pod's claims stay, and a set's when the set goes, unless
// persistentVolumeClaimRetentionPolicy says Delete: the claim is then
// owned by the set (whenDeleted) or, once scaled away, by its pod
// (whenScaled), and the garbage collector deletes it with that owner.

var (
	statefulSetKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
	podKind         = corev1.SchemeGroupVersion.WithKind("Pod")
	// statefulPodName splits a pod name into its set's name and ordinal.
	statefulPodName = regexp.MustCompile(`^(.*)-([0-9]+)$`)
)

type statefulSets struct {
	cs       kubernetes.Interface
	sets     appslisters.StatefulSetLister
	pods     corelisters.PodLister
	claims   corelisters.PersistentVolumeClaimLister
	history  history
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
}

func newStatefulSets(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	setInf, podInf := f.Apps().V1().StatefulSets(), f.Core().V1().Pods()
	pvcInf, revInf := f.Core().V1().PersistentVolumeClaims(), f.Apps().V1().ControllerRevisions()
	c := &statefulSets{
		cs: cs, sets: setInf.Lister(), pods: podInf.Lister(), claims: pvcInf.Lister(),
		history: history{cs: cs, lister: revInf.Lister(), kind: statefulSetKind},
		synced: []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced,
			pvcInf.Informer().HasSynced, revInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"}),
		recorder: recorder, log: log.With("controller", "statefulset"), now: time.Now,
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(setInf.Informer(), onAll(enqueue))
	pod := func(obj any) {
		if p, ok := deletedObject[*corev1.Pod](obj); ok {
			c.enqueuePod(p)
		}
	}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: pod,
		UpdateFunc: func(old, o any) {
			// A pod that changed owner or labels wakes the old set too.
			if a, b := old.(*corev1.Pod), o.(*corev1.Pod); !equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) ||
				!equality.Semantic.DeepEqual(a.Labels, b.Labels) {
				c.enqueuePod(a)
			}
			pod(o)
		},
		DeleteFunc: pod,
	})
	f.addEventHandler(revInf.Informer(), onAll(enqueueController(c.queue, statefulSetKind.Kind)))
	return c
}

func (c *statefulSets) name() string { return "statefulset" }

func (c *statefulSets) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

// enqueuePod wakes the set owning p, or, for an orphan, the sets that
// could adopt it.
func (c *statefulSets) enqueuePod(p *corev1.Pod) {
	if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
		if ref.Kind == statefulSetKind.Kind && ref.APIVersion == statefulSetKind.GroupVersion().String() {
			c.queue.Add(p.Namespace + "/" + ref.Name)
		}
		return
	}
	sets, err := c.sets.StatefulSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil && !sel.Empty() &&
			sel.Matches(labels.Set(p.Labels)) && isMemberOf(set, p) {
			c.queue.Add(set.Namespace + "/" + set.Name)
		}
	}
}

func (c *statefulSets) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	set = set.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil // validation refuses these: nothing to do
	}
	revs, err := c.history.owned(ctx, set, sel)
	if err != nil {
		return err
	}
	pods, err := c.claimPods(ctx, set, sel)
	if err != nil {
		return err
	}
	current, update, collisions, err := c.revisions(ctx, set, revs)
	if err != nil {
		return err
	}
	st, syncErr := c.syncPods(ctx, set, pods, current, update, collisions)
	if st != nil {
		if err := c.updateStatus(ctx, set, st); err != nil && syncErr == nil {
			syncErr = err
		}
		if set.Spec.MinReadySeconds > 0 && st.AvailableReplicas != replicasOf(set.Spec.Replicas) {
			// Pods become available with time alone: look again then.
			c.queue.AddAfter(key, time.Duration(set.Spec.MinReadySeconds)*time.Second)
		}
	}
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	trimErr := c.history.trim(ctx, revs, func(cr *appsv1.ControllerRevision) bool { return live[cr.Name] }, revisionHistoryLimit(set.Spec.RevisionHistoryLimit))
	return errors.Join(syncErr, trimErr)
}

// claimPods returns the pods set owns after adopting orphans that its
// selector matches and that are named as its members, and releasing owned
// pods that stopped matching, as upstream's ControllerRefManager does.
func (c *statefulSets) claimPods(ctx context.Context, set *appsv1.StatefulSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var owned []*corev1.Pod
	for _, p := range all {
		ref := metav1.GetControllerOfNoCopy(p)
		matches := sel.Matches(labels.Set(p.Labels)) && isMemberOf(set, p)
		switch {
		case ref != nil && ref.UID == set.UID && (matches || set.DeletionTimestamp != nil):
			owned = append(owned, p)
		case ref != nil && ref.UID == set.UID:
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, set.UID, p.UID)
			if _, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("release pod %s: %w", p.Name, err)
			}
		case ref == nil && matches && set.DeletionTimestamp == nil && p.DeletionTimestamp == nil:
			refJSON, _ := json.Marshal(metav1.NewControllerRef(set, statefulSetKind))
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"uid":%q}}`, refJSON, p.UID)
			adopted, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("adopt pod %s: %w", p.Name, err)
			}
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

// revisions finds the set's current and update revisions, creating the
// update revision for a new template, or moving an old one to the top when
// the template went back to it, as upstream. It returns the collision
// count to keep in the status.
func (c *statefulSets) revisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisions int32, err error) {
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	data, err := templatePatch(&set.Spec.Template)
	if err != nil {
		return nil, nil, collisions, err
	}
	var equal []*appsv1.ControllerRevision
	for _, cr := range revs {
		if bytes.Equal(cr.Data.Raw, data) {
			equal = append(equal, cr)
		}
	}
	next := nextRevision(revs)
	switch {
	case len(equal) > 0 && equal[len(equal)-1] == revs[len(revs)-1]:
		update = revs[len(revs)-1] // the template has not changed
	case len(equal) > 0:
		update, err = c.history.renumber(ctx, equal[len(equal)-1], next) // back to an older template
	default:
		namer := func(cr *appsv1.ControllerRevision, collisions *int32) {
			hash := hashRevisionData(cr.Data.Raw, collisions)
			cr.Name = revisionName(set.Name, hash)
			cr.Labels[revisionDataHashLabel] = hash
		}
		update, err = c.history.create(ctx, set, newRevision(set, statefulSetKind, set.Spec.Template.Labels, data, next), &collisions, namer)
	}
	if err != nil {
		return nil, nil, collisions, err
	}
	for _, cr := range revs {
		if cr.Name == set.Status.CurrentRevision {
			current = cr
			break
		}
	}
	if current == nil {
		current = update // a new set: its history starts here
	}
	return current, update, collisions, nil
}

// applyRevision is set with the template of revision cr.
func applyRevision(set *appsv1.StatefulSet, cr *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	orig, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode StatefulSet %s: %w", set.Name, err)
	}
	patched, err := strategicpatch.StrategicMergePatch(orig, cr.Data.Raw, &appsv1.StatefulSet{})
	if err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", cr.Name, err)
	}
	out := &appsv1.StatefulSet{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", cr.Name, err)
	}
	return out, nil
}

// syncPods creates, deletes and fixes the set's pods, as upstream's
// updateStatefulSet, and returns the status that results.
func (c *statefulSets) syncPods(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, current, update *appsv1.ControllerRevision, collisions int32) (*appsv1.StatefulSetStatus, error) {
	currentSet, err := applyRevision(set, current)
	if err != nil {
		return nil, err
	}
	updateSet, err := applyRevision(set, update)
	if err != nil {
		return nil, err
	}
	st := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation, CurrentRevision: current.Name, UpdateRevision: update.Name,
		CollisionCount: &collisions, Conditions: set.Status.Conditions,
	}
	start, n := startOrdinal(set), int(replicasOf(set.Spec.Replicas))
	replicas := make([]*corev1.Pod, n)
	var condemned []*corev1.Pod
	for _, p := range pods {
		switch ord := ordinalOf(p); {
		case ord >= start && ord < start+n:
			replicas[ord-start] = p
		case ord >= 0:
			condemned = append(condemned, p)
		}
	}
	for i := range replicas {
		if replicas[i] == nil {
			replicas[i] = newVersionedPod(currentSet, updateSet, current.Name, update.Name, start+i)
		}
	}
	sort.Slice(condemned, func(i, j int) bool { return ordinalOf(condemned[i]) > ordinalOf(condemned[j]) })
	now := c.now()
	minReady := set.Spec.MinReadySeconds
	unavailable := func(p *corev1.Pod) bool { return !podAvailable(p, minReady, now) || p.DeletionTimestamp != nil }
	var firstUnavailable *corev1.Pod
	for _, p := range replicas {
		if firstUnavailable == nil && unavailable(p) {
			firstUnavailable = p
		}
	}
	for i := len(condemned) - 1; i >= 0 && firstUnavailable == nil; i-- {
		if unavailable(condemned[i]) {
			firstUnavailable = condemned[i]
		}
	}
	count := func() *appsv1.StatefulSetStatus {
		countStatefulPods(st, minReady, now, current.Name, update.Name, replicas, condemned)
		return st
	}
	if set.DeletionTimestamp != nil {
		return count(), nil // the garbage collector takes it from here
	}
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement

	// The pods that should be there: created, waited for, fixed.
	if stop, err := runForAll(len(replicas), monotonic, func(i int) (bool, error) {
		return c.processReplica(ctx, set, updateSet, monotonic, replicas, i, now)
	}); stop || err != nil {
		return count(), err
	}
	// The claims of the pods that should go: owned as the policy says
	// before the pods go.
	if stop, err := runForAll(len(condemned), monotonic, func(i int) (bool, error) {
		return false, c.fixClaimOwners(ctx, updateSet, condemned[i])
	}); stop || err != nil {
		return count(), err
	}
	// The pods that should go, from the highest ordinal.
	if stop, err := runForAll(len(condemned), monotonic, func(i int) (bool, error) {
		p := condemned[i]
		if p.DeletionTimestamp != nil {
			return monotonic, nil // wait for it to go
		}
		if monotonic && p != firstUnavailable && (!runningAndReady(p) || unavailable(p)) {
			return true, nil // another pod is unavailable: wait
		}
		return true, c.deletePod(ctx, set, p)
	}); stop || err != nil {
		return count(), err
	}
	count()
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return st, nil
	}
	// RollingUpdate: replace the pod with the highest ordinal not at the
	// update revision, down to the partition, one at a time.
	updateMin := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		updateMin = int(*ru.Partition)
	}
	for target := len(replicas) - 1; target >= updateMin; target-- {
		p := replicas[target]
		if p.Labels[appsv1.StatefulSetRevisionLabel] != update.Name && p.DeletionTimestamp == nil {
			c.log.Debug("replacing a pod for the update", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name)
			if err := c.deletePod(ctx, set, p); err != nil {
				return st, err
			}
			st.CurrentReplicas = max(st.CurrentReplicas-1, 0)
			return st, nil
		}
		if unavailable(p) {
			return st, nil // wait for the last one replaced
		}
	}
	return st, nil
}

// processReplica brings the pod that should hold ordinal i closer to what
// it should be, and reports whether an ordered set must stop there.
func (c *statefulSets) processReplica(ctx context.Context, set, updateSet *appsv1.StatefulSet, monotonic bool, replicas []*corev1.Pod, i int, now time.Time) (bool, error) {
	p := replicas[i]
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		if p.DeletionTimestamp == nil {
			c.recorder.Eventf(set, corev1.EventTypeWarning, "RecreatingFailedPod", "StatefulSet %s/%s is recreating failed Pod %s", set.Namespace, set.Name, p.Name)
			if err := c.deletePod(ctx, set, p); err != nil {
				return true, err
			}
		}
		return true, nil // made again once it is gone
	}
	if p.Status.Phase == "" { // not created yet
		if stale, err := c.claimsStale(set, p); err != nil || stale {
			// A claim of the pod scaled away before is still to be
			// deleted; nothing here watches for that: look again soon.
			c.queue.AddAfter(set.Namespace+"/"+set.Name, time.Second)
			return true, err
		}
		if err := c.createPod(ctx, set, p); err != nil {
			return true, err
		}
		return monotonic, nil
	}
	if p.Status.Phase == corev1.PodPending {
		if err := c.createClaims(ctx, set, p); err != nil {
			return true, err
		}
	}
	if monotonic && (p.DeletionTimestamp != nil || !runningAndReady(p) || !podAvailable(p, set.Spec.MinReadySeconds, now)) {
		return true, nil // the next ordinal waits for this one
	}
	if !identityMatches(set, p) {
		if err := c.fixIdentity(ctx, set, p); err != nil {
			return true, err
		}
	}
	return false, c.fixClaimOwners(ctx, updateSet, p)
}

// runForAll calls fn for 0..n-1: in order, stopping where fn says, for an
// ordered set; all at once, in growing batches, for a parallel one. It
// reports whether the caller must stop.
func runForAll(n int, monotonic bool, fn func(i int) (bool, error)) (bool, error) {
	if monotonic {
		for i := 0; i < n; i++ {
			if stop, err := fn(i); stop || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	var next atomic.Int64
	if _, err := slowStart(n, func() error {
		_, err := fn(int(next.Add(1) - 1))
		return err
	}); err != nil {
		return true, err
	}
	return false, nil
}

// countStatefulPods fills the counts of st from the pods.
func countStatefulPods(st *appsv1.StatefulSetStatus, minReady int32, now time.Time, current, update string, lists ...[]*corev1.Pod) {
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.CurrentReplicas, st.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, list := range lists {
		for _, p := range list {
			if p.Status.Phase == "" {
				continue // not created
			}
			st.Replicas++
			if runningAndReady(p) {
				st.ReadyReplicas++
				if podAvailable(p, minReady, now) {
					st.AvailableReplicas++
				}
			}
			if p.DeletionTimestamp == nil {
				switch rev := p.Labels[appsv1.StatefulSetRevisionLabel]; {
				case rev == current && rev == update:
					st.CurrentReplicas++
					st.UpdatedReplicas++
				case rev == current:
					st.CurrentReplicas++
				case rev == update:
					st.UpdatedReplicas++
				}
			}
		}
	}
}

func (c *statefulSets) updateStatus(ctx context.Context, set *appsv1.StatefulSet, st *appsv1.StatefulSetStatus) error {
	// A finished rolling update makes the update revision the current one.
	replicas := replicasOf(set.Spec.Replicas)
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		st.UpdatedReplicas == replicas && st.ReadyReplicas == replicas && st.Replicas == replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
	if equality.Semantic.DeepEqual(set.Status, *st) {
		return nil
	}
	next := set.DeepCopy()
	next.Status = *st
	_, err := c.cs.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is on its way through the informer
	}
	if err != nil {
		return fmt.Errorf("update the status of StatefulSet %s: %w", set.Name, err)
	}
	return nil
}

// The pods.

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

// parentAndOrdinal splits a pod's name; the ordinal is -1 for a name that
// is not <set>-<ordinal>.
func parentAndOrdinal(p *corev1.Pod) (string, int) {
	m := statefulPodName.FindStringSubmatch(p.Name)
	if m == nil {
		return "", -1
	}
	ord, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return "", -1
	}
	return m[1], int(ord)
}

func ordinalOf(p *corev1.Pod) int {
	_, ord := parentAndOrdinal(p)
	return ord
}

func isMemberOf(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	parent, _ := parentAndOrdinal(p)
	return parent == set.Name
}

func inOrdinalRange(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	ord, start := ordinalOf(p), startOrdinal(set)
	return ord >= start && ord < start+int(replicasOf(set.Spec.Replicas))
}

func runningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && podReady(p)
}

// identityMatches: the pod has its name and namespace, and the labels
// that say so.
func identityMatches(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	parent, ord := parentAndOrdinal(p)
	return ord >= 0 && parent == set.Name && p.Namespace == set.Namespace &&
		p.Labels[appsv1.StatefulSetPodNameLabel] == p.Name && p.Labels[appsv1.PodIndexLabel] == strconv.Itoa(ord)
}

// newStatefulPod is the pod of set at ordinal ord.
func newStatefulPod(set *appsv1.StatefulSet, ord int) *corev1.Pod {
	t := set.Spec.Template.DeepCopy()
	name := fmt.Sprintf("%s-%d", set.Name, ord)
	l := map[string]string{}
	for k, v := range t.Labels {
		l[k] = v
	}
	l[appsv1.StatefulSetPodNameLabel] = name
	l[appsv1.PodIndexLabel] = strconv.Itoa(ord)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: set.Namespace, Labels: l, Annotations: t.Annotations, Finalizers: t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, statefulSetKind)},
		},
		Spec: t.Spec,
	}
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	// The claims' volumes, then the template's own volumes but those a
	// claim replaces.
	var volumes []corev1.Volume
	byClaim := map[string]bool{}
	for _, claim := range podClaims(set, ord) {
		byClaim[claim.template] = true
		volumes = append(volumes, corev1.Volume{Name: claim.template, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.pvc.Name},
		}})
	}
	for _, v := range pod.Spec.Volumes {
		if !byClaim[v.Name] {
			volumes = append(volumes, v)
		}
	}
	pod.Spec.Volumes = volumes
	return pod
}

// newVersionedPod is the pod at ordinal ord at the current revision if it
// is below the partition (or among the current replicas), else at the
// update revision, as upstream.
func newVersionedPod(currentSet, updateSet *appsv1.StatefulSet, current, update string, ord int) *corev1.Pod {
	set, rev := updateSet, update
	if s := currentSet.Spec.UpdateStrategy; s.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		start := startOrdinal(currentSet)
		if s.RollingUpdate == nil && ord < start+int(currentSet.Status.CurrentReplicas) ||
			s.RollingUpdate != nil && s.RollingUpdate.Partition != nil && ord < start+int(*s.RollingUpdate.Partition) {
			set, rev = currentSet, current
		}
	}
	pod := newStatefulPod(set, ord)
	pod.Labels[appsv1.StatefulSetRevisionLabel] = rev
	return pod
}

// podEvent records verb done (or failed) to a pod, in upstream's words.
func (c *statefulSets) podEvent(verb string, set *appsv1.StatefulSet, p *corev1.Pod, err error) {
	title := strings.ToUpper(verb[:1]) + verb[1:]
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+title, "%s Pod %s in StatefulSet %s successful", verb, p.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+title, "%s Pod %s in StatefulSet %s failed error: %s", verb, p.Name, set.Name, err)
}

func (c *statefulSets) createPod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	if err := c.createClaims(ctx, set, p); err != nil {
		c.podEvent("create", set, p, err)
		return err
	}
	_, err := c.cs.CoreV1().Pods(set.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Ours, and the cache is behind (its add event will bring us
		// back), or someone else's in the way.
		got, getErr := c.cs.CoreV1().Pods(set.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if getErr == nil && metav1.IsControlledBy(got, set) {
			return nil
		}
		return fmt.Errorf("create pod %s: %w", p.Name, err)
	}
	c.podEvent("create", set, p, err)
	if err != nil {
		return fmt.Errorf("create pod %s: %w", p.Name, err)
	}
	return nil
}

// deletePod deletes p (and not a pod of the same name made since).
func (c *statefulSets) deletePod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	err := c.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already
	}
	c.podEvent("delete", set, p, err)
	if err != nil {
		return fmt.Errorf("delete pod %s: %w", p.Name, err)
	}
	return nil
}

// fixIdentity puts back the labels that name the pod.
func (c *statefulSets) fixIdentity(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
		appsv1.StatefulSetPodNameLabel: p.Name, appsv1.PodIndexLabel: strconv.Itoa(ordinalOf(p)),
	}}})
	_, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	c.podEvent("update", set, p, err)
	if err != nil {
		return fmt.Errorf("update pod %s: %w", p.Name, err)
	}
	return nil
}

// The claims.

type podClaim struct {
	template string // the volumeClaimTemplate's name, the pod's volume's
	pvc      *corev1.PersistentVolumeClaim
}

// podClaims are the PVCs of the pod at ordinal ord: <claim>-<set>-<ord>,
// labeled with the template's labels and the set's matchLabels.
func podClaims(set *appsv1.StatefulSet, ord int) []podClaim {
	var out []podClaim
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%s-%d", t.Name, set.Name, ord), Namespace: set.Namespace,
				Labels: map[string]string{}, Annotations: t.Annotations, Finalizers: t.Finalizers,
			},
			Spec: *t.Spec.DeepCopy(),
		}
		for k, v := range t.Labels {
			pvc.Labels[k] = v
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				pvc.Labels[k] = v
			}
		}
		out = append(out, podClaim{template: t.Name, pvc: pvc})
	}
	return out
}

// claimEvent records verb done (or failed) to a pod's claim, in upstream's
// words.
func (c *statefulSets) claimEvent(verb string, set *appsv1.StatefulSet, p *corev1.Pod, claim string, err error) {
	title := strings.ToUpper(verb[:1]) + verb[1:]
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+title, "%s Claim %s Pod %s in StatefulSet %s success", verb, claim, p.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+title, "%s Claim %s for Pod %s in StatefulSet %s failed error: %s", verb, claim, p.Name, set.Name, err)
}

// createClaims creates the pod's claims that do not exist.
func (c *statefulSets) createClaims(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	var errs []error
	for _, claim := range podClaims(set, ordinalOf(p)) {
		existing, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claim.pvc.Name)
		switch {
		case apierrors.IsNotFound(err):
			claim.pvc.OwnerReferences = retentionOwners(claim.pvc, set, p)
			_, err := c.cs.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, claim.pvc, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // the cache is behind
			}
			c.claimEvent("create", set, p, claim.pvc.Name, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to create PVC %s: %w", claim.pvc.Name, err))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("failed to retrieve PVC %s: %w", claim.pvc.Name, err))
		case existing.DeletionTimestamp != nil:
			errs = append(errs, fmt.Errorf("pvc %s is being deleted", claim.pvc.Name))
		}
	}
	return errors.Join(errs...)
}

// claimsStale reports whether a claim of the pod to be created is still
// owned by the pod of that name that was scaled away: the garbage
// collector is about to delete it, and the new pod waits for that.
func (c *statefulSets) claimsStale(set *appsv1.StatefulSet, p *corev1.Pod) (bool, error) {
	if retentionPolicy(set).WhenScaled == appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		return false, nil
	}
	for _, claim := range podClaims(set, ordinalOf(p)) {
		pvc, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claim.pvc.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, ref := range pvc.OwnerReferences {
			if refersTo(ref, podKind, p.Name) && ref.UID != p.UID {
				return true, nil
			}
		}
	}
	return false, nil
}

func retentionPolicy(set *appsv1.StatefulSet) appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
	policy := appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
	}
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		if p.WhenDeleted != "" {
			policy.WhenDeleted = p.WhenDeleted
		}
		if p.WhenScaled != "" {
			policy.WhenScaled = p.WhenScaled
		}
	}
	return policy
}

func refersTo(ref metav1.OwnerReference, kind schema.GroupVersionKind, name string) bool {
	return ref.APIVersion == kind.GroupVersion().String() && ref.Kind == kind.Kind && ref.Name == name
}

// retentionOwners are the owner references the retention policy gives a
// claim of pod: the set's when whenDeleted is Delete, the pod's instead
// once the pod is scaled away and whenScaled is Delete, as upstream. A
// claim with references to an older set or pod of the same name, or with
// another controller, keeps its references (less ours, for the latter).
func retentionOwners(pvc *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, p *corev1.Pod) []metav1.OwnerReference {
	var refs []metav1.OwnerReference
	otherController := false
	for _, ref := range pvc.OwnerReferences {
		switch {
		case refersTo(ref, statefulSetKind, set.Name):
			if ref.UID != set.UID {
				return pvc.OwnerReferences // an older set's
			}
		case refersTo(ref, podKind, p.Name):
			if p.UID != "" && ref.UID != p.UID {
				return pvc.OwnerReferences // an older pod's
			}
		default:
			otherController = otherController || ref.Controller != nil && *ref.Controller
			refs = append(refs, ref)
		}
	}
	if otherController {
		return refs
	}
	const del = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	policy := retentionPolicy(set)
	scaledAway := !inOrdinalRange(set, p)
	switch {
	case policy.WhenScaled == del && scaledAway && p.UID != "":
		refs = append(refs, *metav1.NewControllerRef(p, podKind))
	case policy.WhenDeleted == del && !(policy.WhenScaled == del && scaledAway):
		refs = append(refs, *metav1.NewControllerRef(set, statefulSetKind))
	}
	return refs
}

// sameOwners compares owner references by owner and controller flag.
func sameOwners(a, b []metav1.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(r metav1.OwnerReference) string {
		return fmt.Sprintf("%s/%t", r.UID, r.Controller != nil && *r.Controller)
	}
	seen := map[string]int{}
	for _, r := range a {
		seen[key(r)]++
	}
	for _, r := range b {
		if seen[key(r)]--; seen[key(r)] < 0 {
			return false
		}
	}
	return true
}

// fixClaimOwners sets the owners of the pod's claims as the retention
// policy says.
func (c *statefulSets) fixClaimOwners(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	for _, claim := range podClaims(set, ordinalOf(p)) {
		pvc, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claim.pvc.Name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		want := retentionOwners(pvc, set, p)
		if sameOwners(pvc.OwnerReferences, want) {
			continue
		}
		next := pvc.DeepCopy()
		next.OwnerReferences = want
		if _, err := c.cs.CoreV1().PersistentVolumeClaims(set.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			c.claimEvent("update", set, p, pvc.Name, err)
			return fmt.Errorf("update the owners of PVC %s: %w", pvc.Name, err)
		}
	}
	return nil
}
