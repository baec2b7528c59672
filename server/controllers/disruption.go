package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	pdbhelper "k8s.io/component-helpers/apps/poddisruptionbudget"
)

// The disruption controller keeps each PodDisruptionBudget's status, as
// upstream's (pkg/controller/disruption), for the eviction subresource
// (server/apiserver/pods.go) to decide by:
//   - expectedPods: with an integer minAvailable, the pods selected; else
//     the replicas of the pods' controllers (Deployments, ReplicaSets,
//     ReplicationControllers, StatefulSets, or any kind with a scale
//     subresource);
//   - desiredHealthy: minAvailable, or expectedPods less maxUnavailable
//     (percentages of expectedPods rounded up in both cases);
//   - currentHealthy: selected pods that are Ready, not being deleted and
//     not just evicted (in disruptedPods, for two minutes);
//   - disruptionsAllowed: currentHealthy - desiredHealthy, at least 0 (and
//     0 when no pods are expected);
//   - the DisruptionAllowed condition (SufficientPods, InsufficientPods, or
//     SyncFailed with 0 allowed when the status cannot be worked out).
// disruptedPods entries whose pods were not deleted within two minutes
// are dropped, and a pod's DisruptionTarget condition left True for two
// minutes without a deletion is set back to False.

const (
	// pdbDeletionTimeout is how long an evicted pod counts as disrupted
	// before its deletion shows.
	pdbDeletionTimeout = 2 * time.Minute
	// stalePodDisruptionTimeout: a DisruptionTarget condition without a
	// deletion this long is stale.
	stalePodDisruptionTimeout = 2 * time.Minute
)

type disruption struct {
	cs       kubernetes.Interface
	pdbs     policylisters.PodDisruptionBudgetLister
	pods     corelisters.PodLister
	rcs      corelisters.ReplicationControllerLister
	rss      appslisters.ReplicaSetLister
	deploys  appslisters.DeploymentLister
	sets     appslisters.StatefulSetLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	stale    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
}

func newDisruption(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	podInf, pdbInf := f.Core().V1().Pods(), f.Policy().V1().PodDisruptionBudgets()
	rcInf, rsInf, dInf, ssInf := f.Core().V1().ReplicationControllers(), f.Apps().V1().ReplicaSets(), f.Apps().V1().Deployments(), f.Apps().V1().StatefulSets()
	c := &disruption{
		cs: cs, pdbs: pdbInf.Lister(), pods: podInf.Lister(),
		rcs: rcInf.Lister(), rss: rsInf.Lister(), deploys: dInf.Lister(), sets: ssInf.Lister(),
		synced: []cache.InformerSynced{podInf.Informer().HasSynced, pdbInf.Informer().HasSynced, rcInf.Informer().HasSynced,
			rsInf.Informer().HasSynced, dInf.Informer().HasSynced, ssInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "disruption"}),
		stale: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "stale_pod_disruption"}),
		recorder: recorder, log: log.With("controller", "disruption"), now: time.Now,
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(pdbInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue})
	onPod := func(obj any, checkStale bool) {
		pod, ok := deletedObject[*corev1.Pod](obj)
		if !ok {
			return
		}
		if pdb := c.pdbForPod(pod); pdb != nil {
			c.queue.Add(pdb.Namespace + "/" + pdb.Name)
		}
		if checkStale {
			if stale, after := c.staleDisruptionCondition(pod); stale {
				c.stale.AddAfter(pod.Namespace+"/"+pod.Name, after)
			}
		}
	}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { onPod(o, true) },
		UpdateFunc: func(_, o any) { onPod(o, true) },
		DeleteFunc: func(o any) { onPod(o, false) },
	})
	return c
}

func (c *disruption) name() string { return "disruption" }

func (c *disruption) run(ctx context.Context) {
	go runWorkers(ctx, c.stale, c.synced, 1, c.log, c.syncStalePodDisruption)
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

// pdbForPod is the budget covering pod (the first, when several do, with
// a warning event as upstream's).
func (c *disruption) pdbForPod(pod *corev1.Pod) *policyv1.PodDisruptionBudget {
	pdbs, err := c.pdbs.GetPodPodDisruptionBudgets(pod)
	if err != nil || len(pdbs) == 0 {
		return nil
	}
	if len(pdbs) > 1 {
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "MultiplePodDisruptionBudgets",
			"Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, pdbs[0].Name)
	}
	return pdbs[0]
}

func (c *disruption) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = c.trySync(ctx, pdb)
	if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return err
	}
	c.log.Warn("working out the budget failed", "pdb", key, "err", err)
	return c.failSafe(ctx, pdb, err)
}

func (c *disruption) trySync(ctx context.Context, pdb *policyv1.PodDisruptionBudget) error {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	pods, err := c.pods.Pods(pdb.Namespace).List(sel)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "NoPods", "Failed to get pods: %v", err)
		return err
	}
	if len(pods) == 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	expected, desired, unmanaged, err := c.expectedPodCount(ctx, pdb, pods)
	if err != nil {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return err
	}
	if len(unmanaged) > 0 {
		c.recorder.Eventf(pdb, corev1.EventTypeWarning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	now := c.now()
	disrupted, recheck := c.disruptedPodMap(pods, pdb, now)
	healthy := int32(0)
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[p.Name]; ok && at.Add(pdbDeletionTimeout).After(now) {
			continue // evicted, its deletion not seen yet
		}
		if podReady(p) {
			healthy++
		}
	}
	if err := c.updateStatus(ctx, pdb, healthy, desired, expected, disrupted); err != nil {
		return err
	}
	if recheck != nil {
		c.queue.AddAfter(pdb.Namespace+"/"+pdb.Name, recheck.Sub(now))
	}
	return nil
}

// expectedPodCount works out expectedPods and desiredHealthy; unmanaged
// lists the pods without a controller when their controllers' scale is
// needed.
func (c *disruption) expectedPodCount(ctx context.Context, pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if expected, unmanaged, err = c.expectedScale(ctx, pods); err != nil {
			return
		}
		var maxUnavailable int
		if maxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true); err != nil {
			return
		}
		desired = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desired = pdb.Spec.MinAvailable.IntVal
		expected = int32(len(pods))
	case pdb.Spec.MinAvailable != nil:
		if expected, unmanaged, err = c.expectedScale(ctx, pods); err != nil {
			return
		}
		var minAvailable int
		if minAvailable, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true); err != nil {
			return
		}
		desired = int32(minAvailable)
	}
	return
}

// expectedScale adds up the replicas of the pods' controllers.
func (c *disruption) expectedScale(ctx context.Context, pods []*corev1.Pod) (int32, []string, error) {
	scales := map[types.UID]int32{}
	var unmanaged []string
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if ref == nil {
			unmanaged = append(unmanaged, p.Name)
			continue
		}
		if _, ok := scales[ref.UID]; ok {
			continue
		}
		uid, scale, found, err := c.controllerScale(ctx, ref, p.Namespace)
		if err != nil {
			return 0, nil, err
		}
		if !found {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", p.Name)
		}
		scales[uid] = scale
	}
	var sum int32
	for _, n := range scales {
		sum += n
	}
	return sum, unmanaged, nil
}

// controllerScale finds the controller ref names and its replicas: a
// ReplicaSet's Deployment stands for it when it has one.
func (c *disruption) controllerScale(ctx context.Context, ref *metav1.OwnerReference, ns string) (types.UID, int32, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", 0, false, err
	}
	apps := gv.Group == "apps" || gv.Group == "extensions"
	switch {
	case ref.Kind == "ReplicationController" && gv.Group == "":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return "", 0, false, nil
		}
		return rc.UID, replicasOf(rc.Spec.Replicas), true, nil
	case ref.Kind == "ReplicaSet" && apps:
		rs, err := c.rss.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return "", 0, false, nil
		}
		if owner := metav1.GetControllerOf(rs); owner != nil && owner.Kind == "Deployment" {
			if ogv, err := schema.ParseGroupVersion(owner.APIVersion); err == nil && (ogv.Group == "apps" || ogv.Group == "extensions") {
				d, err := c.deploys.Deployments(ns).Get(owner.Name)
				if err != nil || d.UID != owner.UID {
					return "", 0, false, nil
				}
				return d.UID, replicasOf(d.Spec.Replicas), true, nil
			}
		}
		return rs.UID, replicasOf(rs.Spec.Replicas), true, nil
	case ref.Kind == "StatefulSet" && gv.Group == "apps":
		ss, err := c.sets.StatefulSets(ns).Get(ref.Name)
		if err != nil || ss.UID != ref.UID {
			return "", 0, false, nil
		}
		return ss.UID, replicasOf(ss.Spec.Replicas), true, nil
	}
	return c.scaleSubresource(ctx, ref, gv, ns)
}

// scaleSubresource reads the scale of any other kind that has one.
func (c *disruption) scaleSubresource(ctx context.Context, ref *metav1.OwnerReference, gv schema.GroupVersion, ns string) (types.UID, int32, bool, error) {
	resources, err := c.cs.Discovery().ServerResourcesForGroupVersion(gv.String())
	if err != nil {
		return "", 0, false, err
	}
	resource, hasScale := "", false
	for _, r := range resources.APIResources {
		if r.Kind == ref.Kind && !strings.Contains(r.Name, "/") {
			resource = r.Name
		}
	}
	for _, r := range resources.APIResources {
		if resource != "" && r.Name == resource+"/scale" {
			hasScale = true
		}
	}
	if resource == "" {
		return "", 0, false, fmt.Errorf("no resource for kind %s in %s", ref.Kind, gv)
	}
	if !hasScale {
		return "", 0, false, fmt.Errorf("%s does not implement the scale subresource", schema.GroupResource{Group: gv.Group, Resource: resource})
	}
	prefix := "/apis/" + gv.String()
	if gv.Group == "" {
		prefix = "/api/" + gv.Version
	}
	raw, err := c.cs.Discovery().RESTClient().Get().AbsPath(prefix, "namespaces", ns, resource, ref.Name, "scale").
		SetHeader("Accept", "application/json").DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	var scale autoscalingv1.Scale
	if err := json.Unmarshal(raw, &scale); err != nil {
		return "", 0, false, err
	}
	if scale.UID != ref.UID {
		return "", 0, false, nil
	}
	return scale.UID, scale.Spec.Replicas, true, nil
}

// disruptedPodMap keeps the disruptedPods entries still waiting for their
// pod's deletion, and says when the first of them runs out.
func (c *disruption) disruptedPodMap(pods []*corev1.Pod, pdb *policyv1.PodDisruptionBudget, now time.Time) (map[string]metav1.Time, *time.Time) {
	out := map[string]metav1.Time{}
	var recheck *time.Time
	if pdb.Status.DisruptedPods == nil {
		return out, nil
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[p.Name]
		if !ok {
			continue
		}
		expires := at.Add(pdbDeletionTimeout)
		if expires.Before(now) {
			c.recorder.Eventf(p, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
			continue
		}
		if recheck == nil || expires.Before(*recheck) {
			recheck = &expires
		}
		out[p.Name] = at
	}
	return out, recheck
}

func (c *disruption) updateStatus(ctx context.Context, pdb *policyv1.PodDisruptionBudget, healthy, desired, expected int32, disrupted map[string]metav1.Time) error {
	allowed := healthy - desired
	if expected <= 0 || allowed <= 0 {
		allowed = 0 // a budget that matches no pods yet is safe when they come
	}
	st := pdb.Status
	if st.CurrentHealthy == healthy && st.DesiredHealthy == desired && st.ExpectedPods == expected && st.DisruptionsAllowed == allowed &&
		equality.Semantic.DeepEqual(st.DisruptedPods, disrupted) && st.ObservedGeneration == pdb.Generation && pdbhelper.ConditionsAreUpToDate(pdb) {
		return nil
	}
	next := pdb.DeepCopy()
	next.Status = policyv1.PodDisruptionBudgetStatus{
		CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: expected, DisruptionsAllowed: allowed,
		DisruptedPods: disrupted, ObservedGeneration: pdb.Generation, Conditions: next.Status.Conditions,
	}
	pdbhelper.UpdateDisruptionAllowedCondition(next)
	_, err := c.cs.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// failSafe allows no disruption when the status cannot be worked out;
// the budget is worked out again at its next change or its pods'.
func (c *disruption) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error) error {
	next := pdb.DeepCopy()
	next.Status.DisruptionsAllowed = 0
	meta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{
		Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse, Reason: policyv1.SyncFailedReason,
		Message: cause.Error(), ObservedGeneration: next.Status.ObservedGeneration,
	})
	if equality.Semantic.DeepEqual(next.Status, pdb.Status) {
		return nil
	}
	_, err := c.cs.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// staleDisruptionCondition reports whether pod has a DisruptionTarget
// condition that no deletion followed, and how long until it is stale.
func (c *disruption) staleDisruptionCondition(pod *corev1.Pod) (bool, time.Duration) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	cond := podConditionOf(&pod.Status, corev1.DisruptionTarget)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason == corev1.PodReasonTerminationByKubelet {
		return false, 0
	}
	return true, max(stalePodDisruptionTimeout-c.now().Sub(cond.LastTransitionTime.Time), 0)
}

func (c *disruption) syncStalePodDisruption(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	stale, after := c.staleDisruptionCondition(pod)
	if !stale {
		return nil
	}
	if after > 0 {
		c.stale.AddAfter(key, after)
		return nil
	}
	next := pod.DeepCopy()
	if !applyPodCondition(&next.Status, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionFalse}, c.now()) {
		return nil
	}
	_, err = c.cs.CoreV1().Pods(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
