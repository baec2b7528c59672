package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// The Deployment controller rolls a Deployment's pod template out through
// ReplicaSets as upstream's does: one ReplicaSet per template, named
// <deployment>-<pod-template-hash>, numbered by the
// deployment.kubernetes.io/revision annotation (so that kubectl rollout
// history and undo work), scaled with the RollingUpdate strategy's
// maxSurge and maxUnavailable or all at once with Recreate, old ones kept
// up to revisionHistoryLimit, and the Available and Progressing
// conditions and ScalingReplicaSet events students read in kubectl
// describe.

const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	lastAppliedAnnotation     = "kubectl.kubernetes.io/last-applied-configuration"
)

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

type deployments struct {
	cs       kubernetes.Interface
	dLister  appslisters.DeploymentLister
	rsLister appslisters.ReplicaSetLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
}

func newDeployments(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	dInf := f.Apps().V1().Deployments()
	rsInf := f.Apps().V1().ReplicaSets()
	c := &deployments{
		cs: cs, dLister: dInf.Lister(), rsLister: rsInf.Lister(),
		synced: []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, f.Core().V1().Pods().Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment"}),
		recorder: recorder, log: log.With("controller", "deployment"), now: time.Now,
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(dInf.Informer(), onAll(enqueue))
	f.addEventHandler(rsInf.Informer(), onAll(enqueueController(c.queue, deploymentKind.Kind)))
	return c
}

func (c *deployments) name() string { return "deployment" }

func (c *deployments) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

// templateHash is the pod-template-hash of a template: a short, stable
// name for it (upstream hashes the Go structure; any stable hash does).
func templateHash(t *corev1.PodTemplateSpec, collisions *int32) string {
	h := fnv.New32a()
	b, _ := json.Marshal(t)
	h.Write(b)
	if collisions != nil {
		fmt.Fprint(h, *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// sameTemplate compares a ReplicaSet's template with the Deployment's,
// leaving out the pod-template-hash label the ReplicaSet adds.
func sameTemplate(rs *appsv1.ReplicaSet, t *corev1.PodTemplateSpec) bool {
	a := rs.Spec.Template.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	b := t.DeepCopy()
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return equality.Semantic.DeepEqual(a, b)
}

func revision(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
	return n
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func (c *deployments) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	d, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || d.DeletionTimestamp != nil {
		return err
	}
	d = d.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil
	}
	all, err := c.rsLister.ReplicaSets(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var owned []*appsv1.ReplicaSet
	for _, rs := range all {
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID {
			owned = append(owned, rs)
		}
	}
	var newRS *appsv1.ReplicaSet
	var olds []*appsv1.ReplicaSet
	maxRev := int64(0)
	for _, rs := range owned {
		maxRev = max(maxRev, revision(rs))
		if newRS == nil && sameTemplate(rs, &d.Spec.Template) {
			newRS = rs
		} else {
			olds = append(olds, rs)
		}
	}
	if d.Spec.Paused {
		return c.updateStatus(ctx, d, newRS, owned, false)
	}
	created := false
	if newRS == nil {
		if newRS, err = c.createNewRS(ctx, d, maxRev+1); err != nil {
			return err
		}
		created = true
		owned = append(owned, newRS)
	} else if revision(newRS) < maxRev {
		// A rollback to an older template: it becomes the newest revision.
		up := newRS.DeepCopy()
		up.Annotations[revisionAnnotation] = strconv.FormatInt(maxRev+1, 10)
		if newRS, err = c.cs.AppsV1().ReplicaSets(ns).Update(ctx, up, metav1.UpdateOptions{}); err != nil {
			return err
		}
		c.recorder.Eventf(d, corev1.EventTypeNormal, "DeploymentRollback", "Rolled back deployment %q to revision %d", d.Name, revision(up)-1)
	}
	want := replicasOf(d.Spec.Replicas)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		err = c.recreate(ctx, d, newRS, olds, want)
	} else {
		err = c.rollingUpdate(ctx, d, newRS, olds, want)
	}
	if err != nil {
		return err
	}
	if err := c.cleanup(ctx, d, olds); err != nil {
		return err
	}
	return c.updateStatus(ctx, d, newRS, owned, created)
}

func (c *deployments) createNewRS(ctx context.Context, d *appsv1.Deployment, rev int64) (*appsv1.ReplicaSet, error) {
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	t := d.Spec.Template.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if k != lastAppliedAnnotation && k != revisionAnnotation {
			annotations[k] = v
		}
	}
	annotations[revisionAnnotation] = strconv.FormatInt(rev, 10)
	annotations[desiredReplicasAnnotation] = strconv.Itoa(int(replicasOf(d.Spec.Replicas)))
	annotations[maxReplicasAnnotation] = strconv.Itoa(int(replicasOf(d.Spec.Replicas) + maxSurge(d)))
	yes := true
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:        d.Name + "-" + hash,
			Namespace:   d.Namespace,
			Labels:      t.Labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: deploymentKind.GroupVersion().String(), Kind: deploymentKind.Kind,
				Name: d.Name, UID: d.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: new(int32), MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *t},
	}
	out, err := c.cs.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Ours already, made by an earlier sync the cache has not shown
		// yet: that is the new ReplicaSet (as upstream checks).
		if have, gerr := c.cs.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{}); gerr == nil {
			if ref := metav1.GetControllerOf(have); ref != nil && ref.UID == d.UID && sameTemplate(have, &d.Spec.Template) {
				return have, nil
			}
		}
		// A ReplicaSet of that name with another template: a hash
		// collision. Count it so the next try gets another name.
		up := d.DeepCopy()
		n := int32(1)
		if up.Status.CollisionCount != nil {
			n = *up.Status.CollisionCount + 1
		}
		up.Status.CollisionCount = &n
		_, _ = c.cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return out, nil // the scale up that follows has the event
}

func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := surgeAndUnavailable(d)
	return s
}

// surgeAndUnavailable resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against spec.replicas; both zero means one unavailable.
func surgeAndUnavailable(d *appsv1.Deployment) (int32, int32) {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate == nil {
		return 0, 0
	}
	want := int(replicasOf(d.Spec.Replicas))
	q25 := intstr.FromString("25%")
	s, u := &q25, &q25
	if d.Spec.Strategy.RollingUpdate.MaxSurge != nil {
		s = d.Spec.Strategy.RollingUpdate.MaxSurge
	}
	if d.Spec.Strategy.RollingUpdate.MaxUnavailable != nil {
		u = d.Spec.Strategy.RollingUpdate.MaxUnavailable
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(s, want, true)
	unavail, _ := intstr.GetScaledValueFromIntOrPercent(u, want, false)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	return int32(surge), int32(unavail)
}

// scale sets a ReplicaSet's replicas, with upstream's event.
func (c *deployments) scale(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, to int32) (*appsv1.ReplicaSet, error) {
	from := replicasOf(rs.Spec.Replicas)
	desired := strconv.Itoa(int(replicasOf(d.Spec.Replicas)))
	if from == to && rs.Annotations[desiredReplicasAnnotation] == desired {
		return rs, nil
	}
	up := rs.DeepCopy()
	up.Spec.Replicas = &to
	if up.Annotations == nil {
		up.Annotations = map[string]string{}
	}
	up.Annotations[desiredReplicasAnnotation] = desired
	up.Annotations[maxReplicasAnnotation] = strconv.Itoa(int(replicasOf(d.Spec.Replicas) + maxSurge(d)))
	out, err := c.cs.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, up, metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	if from != to {
		dir := "up"
		if to < from {
			dir = "down"
		}
		// Upstream sizes a new ReplicaSet as it creates it, and says so
		// without a "from"; every later scaling names both sizes.
		if from == 0 {
			c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", rs.Name, to)
		} else {
			c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d", dir, rs.Name, to, from)
		}
	}
	return out, nil
}

func (c *deployments) recreate(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, olds []*appsv1.ReplicaSet, want int32) error {
	running := int32(0)
	for _, rs := range olds {
		if replicasOf(rs.Spec.Replicas) > 0 {
			if _, err := c.scale(ctx, d, rs, 0); err != nil {
				return err
			}
		}
		running += rs.Status.Replicas
	}
	if running > 0 {
		return nil // the new pods wait until the old ones are gone
	}
	_, err := c.scale(ctx, d, newRS, want)
	return err
}

func (c *deployments) rollingUpdate(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, olds []*appsv1.ReplicaSet, want int32) error {
	surge, unavail := surgeAndUnavailable(d)
	total := replicasOf(newRS.Spec.Replicas)
	for _, rs := range olds {
		total += replicasOf(rs.Spec.Replicas)
	}
	// Scale the new ReplicaSet up, within want+surge in all.
	newWant := replicasOf(newRS.Spec.Replicas)
	switch cur := replicasOf(newRS.Spec.Replicas); {
	case cur > want:
		newWant = want
	case cur < want:
		newWant = min(want, cur+max(0, want+surge-total))
	}
	if newWant != replicasOf(newRS.Spec.Replicas) {
		var err error
		if newRS, err = c.scale(ctx, d, newRS, newWant); err != nil {
			return err
		}
	}
	// Scale old ReplicaSets down as far as availability allows: first
	// their unavailable pods, then as many as keep want-maxUnavailable
	// pods available.
	minAvailable := want - unavail
	available := newRS.Status.AvailableReplicas
	for _, rs := range olds {
		available += rs.Status.AvailableReplicas
	}
	newUnavailable := replicasOf(newRS.Spec.Replicas) - newRS.Status.AvailableReplicas
	allPods := replicasOf(newRS.Spec.Replicas)
	for _, rs := range olds {
		allPods += replicasOf(rs.Spec.Replicas)
	}
	budget := allPods - minAvailable - newUnavailable
	sort.Slice(olds, func(i, j int) bool { return revision(olds[i]) < revision(olds[j]) })
	for _, rs := range olds {
		cur := replicasOf(rs.Spec.Replicas)
		if cur == 0 {
			continue
		}
		// Unavailable old pods cost no availability.
		down := cur - rs.Status.AvailableReplicas
		if budget > 0 {
			down += min(budget, rs.Status.AvailableReplicas)
		}
		down = min(down, cur)
		if down <= 0 {
			continue
		}
		if _, err := c.scale(ctx, d, rs, cur-down); err != nil {
			return err
		}
		budget -= min(budget, down-(cur-rs.Status.AvailableReplicas))
	}
	return nil
}

// cleanup deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (c *deployments) cleanup(ctx context.Context, d *appsv1.Deployment, olds []*appsv1.ReplicaSet) error {
	limit := int32(10)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = *d.Spec.RevisionHistoryLimit
	}
	var idle []*appsv1.ReplicaSet
	for _, rs := range olds {
		if replicasOf(rs.Spec.Replicas) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			idle = append(idle, rs)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return revision(idle[i]) < revision(idle[j]) })
	for i := 0; i < len(idle)-int(limit); i++ {
		err := c.cs.AppsV1().ReplicaSets(d.Namespace).Delete(ctx, idle[i].Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (c *deployments) updateStatus(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, owned []*appsv1.ReplicaSet, created bool) error {
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
	for _, rs := range owned {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	want := replicasOf(d.Spec.Replicas)
	st.UnavailableReplicas = max(0, want-st.AvailableReplicas)
	_, unavail := surgeAndUnavailable(d)
	now := metav1.NewTime(c.now())
	conds := map[appsv1.DeploymentConditionType]appsv1.DeploymentCondition{}
	for _, cond := range d.Status.Conditions {
		conds[cond.Type] = cond
	}
	set := func(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string) {
		old, ok := conds[t]
		cond := appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
		if ok && old.Status == status {
			cond.LastTransitionTime = old.LastTransitionTime
			if old.Reason == reason && old.Message == msg {
				cond.LastUpdateTime = old.LastUpdateTime
			}
		}
		conds[t] = cond
	}
	if st.AvailableReplicas >= want-unavail {
		set(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.")
	} else {
		set(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
	}
	switch {
	case d.Spec.Paused:
		set(appsv1.DeploymentProgressing, corev1.ConditionUnknown, "DeploymentPaused", "Deployment is paused")
	case newRS == nil:
	case newRS.Status.AvailableReplicas >= want && st.Replicas == newRS.Status.Replicas && st.UpdatedReplicas == want:
		set(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name))
	case created:
		set(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetCreated", fmt.Sprintf("Created new replica set %q", newRS.Name))
	default:
		prev, ok := conds[appsv1.DeploymentProgressing]
		deadline := int32(600)
		if d.Spec.ProgressDeadlineSeconds != nil {
			deadline = *d.Spec.ProgressDeadlineSeconds
		}
		stalled := ok && prev.Reason != "NewReplicaSetAvailable" && !prev.LastUpdateTime.IsZero() &&
			prev.LastUpdateTime.Add(time.Duration(deadline)*time.Second).Before(now.Time)
		if stalled || ok && prev.Reason == "ProgressDeadlineExceeded" {
			set(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded", fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name))
		} else {
			set(appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name))
		}
		// Check again when the deadline passes.
		c.queue.AddAfter(d.Namespace+"/"+d.Name, time.Duration(deadline)*time.Second)
	}
	for _, t := range []appsv1.DeploymentConditionType{appsv1.DeploymentAvailable, appsv1.DeploymentProgressing, appsv1.DeploymentReplicaFailure} {
		if cond, ok := conds[t]; ok {
			st.Conditions = append(st.Conditions, cond)
		}
	}
	if equality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	d.Status = st
	_, err := c.cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
