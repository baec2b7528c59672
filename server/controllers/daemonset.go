package controllers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// The DaemonSet controller keeps one pod of each DaemonSet on every node
// that can run it, as upstream's: a node is eligible when it matches the
// template's nodeSelector and required node affinity and its taints are
// tolerated (with the tolerations upstream adds to daemon pods). Each pod
// is pinned to its node by a required node affinity on the node's name and
// placed by the scheduler. A template change replaces the pods node by
// node, at most maxUnavailable at a time (RollingUpdate), or when they are
// deleted (OnDelete). The templates are kept as ControllerRevisions
// (history.go) named <daemonset>-<hash>, as upstream keeps them, so that
// kubectl rollout history and undo work; pods carry the template's hash as
// their controller-revision-hash label, and the pod-template-generation
// label (the DaemonSet's generation when they were made) as well.

const templateGenerationLabel = "pod-template-generation"

var daemonSetKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// daemonTolerations are added to every daemon pod, as upstream adds them:
// daemons stay through node trouble, and go on cordoned nodes.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

type daemonSets struct {
	cs       kubernetes.Interface
	dsLister appslisters.DaemonSetLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	history  history
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	expect   *expectations
}

func newDaemonSets(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	dsInf, podInf, nodeInf := f.Apps().V1().DaemonSets(), f.Core().V1().Pods(), f.Core().V1().Nodes()
	revInf := f.Apps().V1().ControllerRevisions()
	c := &daemonSets{
		cs: cs, dsLister: dsInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(),
		history: history{cs: cs, lister: revInf.Lister(), kind: daemonSetKind},
		synced: []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced,
			revInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"}),
		recorder: recorder, log: log.With("controller", "daemonset"), expect: newExpectations(),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	all := func(any) {
		dss, _ := c.dsLister.List(labels.Everything())
		for _, ds := range dss {
			c.queue.Add(ds.Namespace + "/" + ds.Name)
		}
	}
	owner := func(obj any) (string, bool) {
		if p, ok := deletedObject[*corev1.Pod](obj); ok {
			if ref := metav1.GetControllerOf(p); ref != nil && ref.Kind == daemonSetKind.Kind {
				key := p.Namespace + "/" + ref.Name
				c.queue.Add(key)
				return key, true
			}
		}
		return "", false
	}
	f.addEventHandler(dsInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue})
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if key, ok := owner(o); ok {
				c.expect.observed(key, 1, 0)
			}
		},
		UpdateFunc: func(old, o any) {
			// A graceful deletion shows as an update: count it then, as
			// upstream does, or the expectation would wait for the kubelet.
			if key, ok := owner(o); ok && o.(*corev1.Pod).DeletionTimestamp != nil && old.(*corev1.Pod).DeletionTimestamp == nil {
				c.expect.observed(key, 0, 1)
			}
		},
		DeleteFunc: func(o any) {
			if key, ok := owner(o); ok {
				c.expect.observed(key, 0, 1)
			}
		},
	})
	f.addEventHandler(nodeInf.Informer(), onAll(all))
	f.addEventHandler(revInf.Informer(), onAll(enqueueController(c.queue, daemonSetKind.Kind)))
	return c
}

func (c *daemonSets) name() string { return "daemonset" }

func (c *daemonSets) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

// eligible reports whether a daemon pod of ds belongs on node.
func eligible(ds *appsv1.DaemonSet, node *corev1.Node) bool {
	pod := &corev1.Pod{Spec: ds.Spec.Template.Spec}
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return false
	}
	tolerations := append(append([]corev1.Toleration(nil), ds.Spec.Template.Spec.Tolerations...), daemonTolerations...)
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return !untolerated
}

// daemonNode is the node a daemon pod is pinned to.
func daemonNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == metav1.ObjectNameField && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

func (c *daemonSets) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	ds, err := c.dsLister.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		return nil
	}
	if err != nil || ds.DeletionTimestamp != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	byNode := map[string][]*corev1.Pod{}
	var owned []*corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == ds.UID {
			owned = append(owned, p)
			if isActive(p) {
				byNode[daemonNode(p)] = append(byNode[daemonNode(p)], p)
			}
		}
	}
	if !c.expect.satisfied(key) {
		return nil // the pods asked for are not all in the cache yet
	}
	cur, old, collisions, err := c.constructHistory(ctx, ds, owned)
	if err != nil {
		return err
	}
	hash := cur.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	gen := strconv.FormatInt(ds.Generation, 10)
	var st appsv1.DaemonSetStatus
	var outdated, doomed []*corev1.Pod
	var missing []string
	unavailable := 0
	for _, n := range nodes {
		here := byNode[n.Name]
		delete(byNode, n.Name)
		if !eligible(ds, n) {
			st.NumberMisscheduled += int32(len(here))
			doomed = append(doomed, here...)
			continue
		}
		st.DesiredNumberScheduled++
		if len(here) == 0 {
			unavailable++
			missing = append(missing, n.Name)
			continue
		}
		doomed = append(doomed, here[1:]...)
		p := here[0]
		st.CurrentNumberScheduled++
		if podReady(p) {
			st.NumberReady++
			if podAvailable(p, ds.Spec.MinReadySeconds, time.Now()) {
				st.NumberAvailable++
			}
		} else {
			unavailable++
		}
		if podUpToDate(p, hash, gen) {
			st.UpdatedNumberScheduled++
		} else {
			outdated = append(outdated, p)
		}
	}
	for _, left := range byNode { // pods on nodes that are gone
		doomed = append(doomed, left...)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		maxUnavailable := 1
		if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
			maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, int(st.DesiredNumberScheduled), true)
		}
		// Outdated pods that are not ready cost nothing to replace; ready
		// ones go while the unavailable stay under maxUnavailable.
		for _, p := range outdated {
			if podReady(p) {
				if unavailable >= maxUnavailable {
					continue
				}
				unavailable++
			}
			doomed = append(doomed, p)
		}
	}
	c.expect.expect(key, len(missing), len(doomed))
	for _, node := range missing {
		if err := c.createPod(ctx, ds, node, gen, hash); err != nil {
			c.expect.observed(key, 1, 0)
			return err
		}
	}
	for _, p := range doomed {
		deleted, err := c.deletePod(ctx, ds, p)
		if !deleted {
			c.expect.observed(key, 0, 1) // no delete event will come
		}
		if err != nil {
			return err
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	st.ObservedGeneration = ds.Generation
	if ds.Status.CollisionCount != nil || collisions > 0 {
		st.CollisionCount = &collisions
	}
	if err := c.cleanupHistory(ctx, ds, old, owned); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(ds.Status, st) {
		return nil
	}
	next := ds.DeepCopy()
	next.Status = st
	_, err = c.cs.AppsV1().DaemonSets(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// podUpToDate: the pod runs the DaemonSet's template, by its
// controller-revision-hash or, as upstream also accepts, its template
// generation.
func podUpToDate(p *corev1.Pod, hash, gen string) bool {
	return hash != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash || p.Labels[templateGenerationLabel] == gen
}

// constructHistory returns the revision of the DaemonSet's template, made
// now if there is none, or moved to the top if the template went back to
// an older one, and the other revisions, as upstream; and the collision
// count to keep in the status.
func (c *daemonSets) constructHistory(ctx context.Context, ds *appsv1.DaemonSet, pods []*corev1.Pod) (cur *appsv1.ControllerRevision, old []*appsv1.ControllerRevision, collisions int32, err error) {
	if ds.Status.CollisionCount != nil {
		collisions = *ds.Status.CollisionCount
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, nil, collisions, fmt.Errorf("the selector of DaemonSet %s: %w", ds.Name, err)
	}
	revs, err := c.history.owned(ctx, ds, sel)
	if err != nil {
		return nil, nil, collisions, err
	}
	data, err := templatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, nil, collisions, err
	}
	var matching []*appsv1.ControllerRevision
	for _, cr := range revs {
		if bytes.Equal(cr.Data.Raw, data) {
			matching = append(matching, cr)
		} else {
			old = append(old, cr)
		}
	}
	next := nextRevision(old)
	if len(matching) == 0 {
		namer := func(cr *appsv1.ControllerRevision, collisions *int32) {
			hash := templateHash(&ds.Spec.Template, collisions)
			cr.Name = revisionName(ds.Name, hash)
			cr.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
		}
		cur, err = c.history.create(ctx, ds, newRevision(ds, daemonSetKind, ds.Spec.Template.Labels, data, next), &collisions, namer)
		return cur, old, collisions, err
	}
	if cur, err = c.dedupHistory(ctx, ds, matching, pods); err != nil {
		return nil, nil, collisions, err
	}
	if cur.Revision < next {
		cur, err = c.history.renumber(ctx, cur, next)
	}
	return cur, old, collisions, err
}

// dedupHistory keeps the newest of several revisions of the same template
// and deletes the others, moving their pods to its hash, as upstream.
func (c *daemonSets) dedupHistory(ctx context.Context, ds *appsv1.DaemonSet, same []*appsv1.ControllerRevision, pods []*corev1.Pod) (*appsv1.ControllerRevision, error) {
	keep := same[len(same)-1] // sorted oldest first
	if len(same) == 1 {
		return keep, nil
	}
	hash := keep.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, appsv1.DefaultDaemonSetUniqueLabelKey, hash)
	for _, dup := range same[:len(same)-1] {
		dupHash := dup.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		for _, p := range pods {
			if dupHash != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == dupHash {
				_, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("relabel pod %s: %w", p.Name, err)
				}
			}
		}
		err := c.cs.AppsV1().ControllerRevisions(ds.Namespace).Delete(ctx, dup.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete revision %s: %w", dup.Name, err)
		}
	}
	return keep, nil
}

// cleanupHistory deletes the oldest revisions no pod runs beyond
// revisionHistoryLimit old ones, as upstream.
func (c *daemonSets) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, old []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	live := map[string]bool{}
	for _, p := range pods {
		if h := p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]; h != "" {
			live[h] = true
		}
	}
	isLive := func(cr *appsv1.ControllerRevision) bool {
		return live[cr.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]]
	}
	liveOld := 0
	for _, cr := range old {
		if isLive(cr) {
			liveOld++
		}
	}
	return c.history.trim(ctx, old, isLive, max(0, revisionHistoryLimit(ds.Spec.RevisionHistoryLimit)-liveOld))
}

func (c *daemonSets) createPod(ctx context.Context, ds *appsv1.DaemonSet, node, gen, hash string) error {
	t := ds.Spec.Template.DeepCopy()
	labels := map[string]string{templateGenerationLabel: gen, appsv1.DefaultDaemonSetUniqueLabelKey: hash}
	for k, v := range t.Labels {
		labels[k] = v
	}
	spec := t.Spec
	spec.Tolerations = append(spec.Tolerations, daemonTolerations...)
	// Pinned to the node by affinity; the scheduler binds it there.
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	spec.Affinity.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
		}}}},
	}}
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: ds.Name + "-", Labels: labels, Annotations: t.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: daemonSetKind.GroupVersion().String(), Kind: daemonSetKind.Kind,
				Name: ds.Name, UID: ds.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: spec,
	}
	created, err := c.cs.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create a daemon pod for node %q: %w", node, err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// deletePod deletes a daemon pod and reports whether it did.
func (c *daemonSets) deletePod(ctx context.Context, ds *appsv1.DaemonSet, p *corev1.Pod) (bool, error) {
	err := c.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	return true, nil
}
