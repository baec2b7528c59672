// Package scheduler is labctl's kube-scheduler: it picks a node for every
// pod that has none and names no other scheduler, and records the choice
// through the API (the pods/binding subresource), as the course's outline
// tells it: "the scheduler looks at node state and picks a node". It
// follows upstream's default profile and words its messages as upstream
// does.
//
// The scheduler keeps its own picture of the cluster (cache.go): every
// node with the pods bound to it and their summed requests, host ports
// and (anti-)affinity, updated by informer events and by its own
// decisions: a pod it has chosen a node for is "assumed" there at once,
// before its binding is written and seen, so the next decision already
// counts it. Decisions are made one pod at a time; bindings are written by
// a few goroutines meanwhile.
//
// Pods wait in a scheduling queue (queue.go), as upstream's: the active
// queue, ordered by priority (spec.priority) then creation time; a backoff
// queue for pods whose last attempt failed (1 s, doubling to 10 s); and a
// pool of unschedulable pods that cluster events move back (a node added
// or changed, a pod deleted, a pod bound that they may want to join) when
// the event concerns a filter that rejected them, or after 5 minutes.
//
// A node fits a pod when it passes upstream's filters, in upstream's
// order (filter.go): NodeUnschedulable, NodeName, TaintToleration
// (NoSchedule and NoExecute taints), NodeAffinity (nodeSelector and
// required node affinity), NodePorts (host ports), NodeResourcesFit
// (requests and the pod count against allocatable; a request larger than
// the node's whole allocatable is one no eviction helps), PodTopologySpread
// (DoNotSchedule constraints: maxSkew per topologyKey over the pods the
// labelSelector picks, minDomains, nodeAffinityPolicy and
// nodeTaintsPolicy), and InterPodAffinity (required affinity and
// anti-affinity by topologyKey, with namespaces and namespaceSelector, and
// the required anti-affinity of the pods already placed). Pods nominated to
// a node by preemption keep their room there from pods of no higher
// priority.
//
// The nodes that fit are scored as upstream's default profile does
// (score.go), with its weights: TaintToleration 3 (fewer untolerated
// PreferNoSchedule taints), NodeAffinity 2 (preferred node affinity),
// NodeResourcesFit 1 (least allocated), PodTopologySpread 2 (the pod's
// ScheduleAnyway constraints, or upstream's system defaults that spread
// the pods of a Service, ReplicaSet, ReplicationController or StatefulSet
// over hostnames, maxSkew 3, and zones, maxSkew 5), InterPodAffinity 2
// (preferred affinity and anti-affinity, both ways) and
// NodeResourcesBalancedAllocation 1. The best wins, at random among ties.
//
// A pod no node fits gets upstream's FailedScheduling event and
// PodScheduled=False condition, e.g. "0/3 nodes are available: 1 node(s)
// had untolerated taint {lab: only}, 2 Insufficient cpu. preemption: 0/3 nodes are
// available: 3 Preemption is not helpful for scheduling." Unless its
// preemptionPolicy is Never, preemption (preempt.go) then looks for a node
// where evicting pods of lower priority makes it fit, fewest and least
// important first, sparing PodDisruptionBudgets when it can; the victims
// get the DisruptionTarget condition (PreemptionByScheduler), are deleted
// and get a Preempted event, and the pod gets status.nominatedNodeName and
// is scheduled when they are gone.
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Name is the scheduler pods name in spec.schedulerName to be ours.
const Name = corev1.DefaultSchedulerName

// bindWorkers is how many bindings are written at once.
const bindWorkers = 8

// maxMessageLength is where event messages are cut (validation.NoteLengthLimit).
const maxMessageLength = 1024

// Scheduler places pods on nodes.
type Scheduler struct {
	cs       kubernetes.Interface
	pods     corelisters.PodLister
	synced   []toolscache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	clock    clock.WithTicker

	cache     *clusterCache
	algo      *algorithm
	queue     *schedulingQueue
	nominator *nominator
	binds     chan binding
	bindWG    sync.WaitGroup
}

// binding is a decision to write.
type binding struct {
	pod     *corev1.Pod
	key     string
	node    string
	volumes volumePlan // claims to bind first (VolumeBinding's pre-bind)
}

// New makes a scheduler over informers from f; events go to recorder.
// It adds its event handlers to the informers with addHandler, or with
// their AddEventHandler when addHandler is nil. The controller manager's
// addHandler has all the handlers of an informer share one client-go
// listener, so they must not block: the scheduler's take only the
// cache's lock, which a scheduling attempt holds while it decides.
func New(cs kubernetes.Interface, f informers.SharedInformerFactory,
	addHandler func(toolscache.SharedIndexInformer, toolscache.ResourceEventHandler), recorder record.EventRecorder, log *slog.Logger) *Scheduler {
	if addHandler == nil {
		addHandler = func(inf toolscache.SharedIndexInformer, h toolscache.ResourceEventHandler) {
			_, _ = inf.AddEventHandler(h)
		}
	}
	core, apps := f.Core().V1(), f.Apps().V1()
	podInf, nodeInf, nsInf := core.Pods(), core.Nodes(), core.Namespaces()
	svcInf, rcInf, rsInf, ssInf := core.Services(), core.ReplicationControllers(), apps.ReplicaSets(), apps.StatefulSets()
	pdbInf := f.Policy().V1().PodDisruptionBudgets()
	pvcInf, pvInf, scInf := core.PersistentVolumeClaims(), core.PersistentVolumes(), f.Storage().V1().StorageClasses()
	objs := &listerObjects{namespaces: nsInf.Lister(), svcs: svcInf.Lister(), rcs: rcInf.Lister(), rss: rsInf.Lister(),
		sss: ssInf.Lister(), disruptions: pdbInf.Lister(),
		claims: pvcInf.Lister(), volumes: pvInf.Lister(), classes: scInf.Lister()}
	s := newScheduler(cs, objs, recorder, log, clock.RealClock{})
	s.pods = podInf.Lister()
	for _, inf := range []toolscache.SharedIndexInformer{podInf.Informer(), nodeInf.Informer(), nsInf.Informer(),
		svcInf.Informer(), rcInf.Informer(), rsInf.Informer(), ssInf.Informer(), pdbInf.Informer(),
		pvcInf.Informer(), pvInf.Informer(), scInf.Informer()} {
		s.synced = append(s.synced, inf.HasSynced)
	}
	// Claims, volumes and classes that come or change may let pods that
	// VolumeBinding refused fit.
	volumesChanged := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.move(plVolumeBinding) },
		UpdateFunc: func(any, any) { s.queue.move(plVolumeBinding) },
	}
	for _, inf := range []toolscache.SharedIndexInformer{pvcInf.Informer(), pvInf.Informer(), scInf.Informer()} {
		addHandler(inf, volumesChanged)
	}
	addHandler(podInf.Informer(), toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.podAdded(obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) { s.podUpdated(old.(*corev1.Pod), obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				s.podDeleted(pod)
			}
		},
	})
	addHandler(nodeInf.Informer(), toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.nodeChanged(nil, obj.(*corev1.Node)) },
		UpdateFunc: func(old, obj any) { s.nodeChanged(old.(*corev1.Node), obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				s.nodeDeleted(n)
			}
		},
	})
	addHandler(nsInf.Informer(), toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.queue.move(plInterPodAffinity) },
		UpdateFunc: func(old, obj any) {
			if !labels.Equals(old.(*corev1.Namespace).Labels, obj.(*corev1.Namespace).Labels) {
				s.queue.move(plInterPodAffinity)
			}
		},
	})
	return s
}

func newScheduler(cs kubernetes.Interface, objs objects, recorder record.EventRecorder, log *slog.Logger, clk clock.WithTicker) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := newClusterCache()
	return &Scheduler{
		cs: cs, recorder: recorder, log: log.With("component", "scheduler"), clock: clk,
		cache:     c,
		algo:      &algorithm{cache: c, objs: objs, rnd: rand.New(rand.NewSource(time.Now().UnixNano()))},
		queue:     newSchedulingQueue(clk),
		nominator: newNominator(),
		binds:     make(chan binding, 256),
	}
}

// needsScheduling reports whether pod is ours to place now.
func needsScheduling(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && (pod.Spec.SchedulerName == Name || pod.Spec.SchedulerName == "") && pod.DeletionTimestamp == nil &&
		!terminal(pod) && len(pod.Spec.SchedulingGates) == 0
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// The plugins whose verdict an event may change (upstream's
// EventsToRegister, simplified).
const (
	moveOnAssignedPodAdd    = plInterPodAffinity | plPodTopologySpread
	moveOnAssignedPodDelete = plNodeResourcesFit | plNodePorts | plInterPodAffinity | plPodTopologySpread
)

func (s *Scheduler) podAdded(pod *corev1.Pod) {
	key := podKey(pod)
	switch {
	case pod.Spec.NodeName != "" && !terminal(pod):
		s.cache.mu.Lock()
		s.cache.addPod(pod)
		s.cache.mu.Unlock()
		s.queue.remove(key)
		s.nominator.remove(key)
		s.queue.move(moveOnAssignedPodAdd)
	case needsScheduling(pod):
		s.queue.add(pod)
		s.nominate(pod)
	}
}

// nominate records the nomination the pod's status carries.
func (s *Scheduler) nominate(pod *corev1.Pod) {
	if pod.Status.NominatedNodeName != "" {
		s.nominator.set(newPodInfo(pod), pod.Status.NominatedNodeName)
	} else {
		s.nominator.remove(podKey(pod))
	}
}

func (s *Scheduler) podUpdated(old, pod *corev1.Pod) {
	key := podKey(pod)
	if pod.Spec.NodeName != "" {
		if terminal(pod) {
			s.forgetPod(key) // finished pods free their room
			return
		}
		s.cache.mu.Lock()
		s.cache.addPod(pod)
		s.cache.mu.Unlock()
		if old.Spec.NodeName == "" {
			s.queue.remove(key)
			s.nominator.remove(key)
			s.queue.move(moveOnAssignedPodAdd)
		} else if !labels.Equals(old.Labels, pod.Labels) {
			s.queue.move(moveOnAssignedPodAdd)
		}
		return
	}
	if needsScheduling(pod) {
		s.queue.add(pod)
		s.nominate(pod)
		return
	}
	s.queue.remove(key)
	s.nominator.remove(key)
}

func (s *Scheduler) podDeleted(pod *corev1.Pod) {
	key := podKey(pod)
	s.queue.remove(key)
	s.nominator.remove(key)
	s.forgetPod(key)
}

// forgetPod takes a pod that is gone or finished off its node.
func (s *Scheduler) forgetPod(key string) {
	s.cache.mu.Lock()
	st := s.cache.removePod(key)
	s.cache.mu.Unlock()
	if st != nil {
		s.queue.move(moveOnAssignedPodDelete)
	}
}

func (s *Scheduler) nodeChanged(old, n *corev1.Node) {
	s.cache.mu.Lock()
	s.cache.setNode(n)
	s.cache.mu.Unlock()
	if mask := nodeChangeMask(old, n); mask != 0 {
		s.queue.move(mask)
	}
}

// nodeChangeMask returns the plugins whose verdict a node's change may
// turn: all for a new node; for a changed one, as what changed.
func nodeChangeMask(old, n *corev1.Node) uint16 {
	if old == nil {
		return plAll
	}
	var mask uint16
	if !labels.Equals(old.Labels, n.Labels) {
		mask |= plNodeAffinity | plVolumeBinding | plPodTopologySpread | plInterPodAffinity
	}
	if old.Spec.Unschedulable != n.Spec.Unschedulable || !apiequality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) {
		mask |= plNodeUnschedulable | plTaintToleration | plPodTopologySpread
	}
	if !resourceListsEqual(old.Status.Allocatable, n.Status.Allocatable) {
		mask |= plNodeResourcesFit
	}
	return mask
}

func (s *Scheduler) nodeDeleted(n *corev1.Node) {
	s.cache.mu.Lock()
	s.cache.removeNode(n.Name)
	s.cache.mu.Unlock()
	s.queue.move(plPodTopologySpread)
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.queue.close()
	if !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	s.run(ctx)
}

func (s *Scheduler) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		s.queue.close()
	}()
	go s.every(ctx, backoffFlushPeriod, s.queue.flushBackoff)
	go s.every(ctx, unschedulableFlushPeriod, s.queue.flushUnschedulable)
	for range bindWorkers {
		s.bindWG.Add(1)
		go func() {
			defer s.bindWG.Done()
			for b := range s.binds {
				s.bind(ctx, b)
			}
		}()
	}
	for {
		p, pod, cycle, ok := s.queue.pop()
		if !ok {
			break
		}
		s.scheduleOne(ctx, p, pod, cycle)
	}
	close(s.binds)
	s.bindWG.Wait()
}

func (s *Scheduler) every(ctx context.Context, d time.Duration, fn func()) {
	t := s.clock.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			fn()
		}
	}
}

// decision is what one scheduling attempt decided.
type decision struct {
	node       string     // chosen node; "" when the pod fits nowhere
	volumes    volumePlan // how the pod's waiting claims bind there
	msg        string     // why it fits nowhere
	rejectedBy uint16
	preemption preemption
}

// decide runs one attempt for pi over the cache and assumes the pod on
// the node chosen.
func (s *Scheduler) decide(pi *podInfo) (d decision, skip bool) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if s.cache.has(pi.key) {
		return d, true // assumed already, or bound
	}
	nodes := s.cache.nodeList()
	if len(nodes) == 0 {
		return decision{msg: msgNoNodes, rejectedBy: plAll, preemption: preemption{clearNomination: true}}, false
	}
	if pi.parseErr != nil {
		// InterPodAffinity's pre-filter refuses the pod on every node.
		return decision{msg: fmt.Sprintf("0/%d nodes are available: parsing pod: %v. preemption: %s", len(nodes), pi.parseErr,
			fitMessage(len(nodes), nil, reasonPreemptionNotHelpful, "")), rejectedBy: plInterPodAffinity,
			preemption: preemption{clearNomination: true}}, false
	}
	c := s.algo.newCycle(pi, s.nominator.weighing(pi))
	if msg := c.volumeMsg; msg != "" {
		// VolumeBinding's pre-filter refuses the pod on every node.
		return decision{msg: fmt.Sprintf("0/%d nodes are available: %s. preemption: %s", len(nodes), msg,
			fitMessage(len(nodes), nil, reasonPreemptionNotHelpful, "")), rejectedBy: plVolumeBinding,
			preemption: preemption{clearNomination: true}}, false
	}
	feasible, statuses := s.algo.findFeasible(c)
	if len(feasible) == 0 {
		d.preemption = s.algo.preempt(c, statuses, len(nodes))
		for _, ns := range statuses {
			d.rejectedBy |= ns.st.plugin
		}
		d.msg = fitMessage(len(nodes), statuses, "", d.preemption.msg)
		return d, false
	}
	host := feasible[0]
	if len(feasible) > 1 {
		host = s.algo.selectHost(feasible, s.algo.prioritize(c, feasible))
	}
	if c.volumes != nil {
		d.volumes, _ = s.algo.volumeFit(c.volumes, host.node)
	}
	s.cache.assume(pi, host.name)
	d.node = host.name
	return d, false
}

func (s *Scheduler) scheduleOne(ctx context.Context, p *queuedPod, pod *corev1.Pod, cycle int64) {
	if !needsScheduling(pod) {
		s.queue.done(p)
		return
	}
	pi := newPodInfo(pod)
	d, skip := s.decide(pi)
	if skip {
		s.queue.done(p)
		return
	}
	if d.node != "" {
		s.queue.done(p)
		s.nominator.remove(pi.key)
		s.binds <- binding{pod: pod, key: pi.key, node: d.node, volumes: d.volumes}
		return
	}
	// Fits nowhere: preempt if that helps, then say why.
	var nominate *string
	if d.preemption.clearNomination {
		nominate = new(string)
	}
	if cand := d.preemption.chosen; cand != nil {
		if err := s.evict(ctx, pod, cand); err != nil {
			s.log.Warn("preemption failed", "pod", pi.key, "node", cand.ni.name, "err", err)
			s.queue.failed(p, cycle, d.rejectedBy, true)
			s.recordFailure(ctx, pod, corev1.PodReasonSchedulerError, err.Error(), nil)
			return
		}
		node := cand.ni.name
		nominate = &node
		s.nominator.set(pi, node)
		s.clearNominations(ctx, s.nominator.lower(node, pi.priority))
	}
	s.queue.failed(p, cycle, d.rejectedBy, false)
	s.recordFailure(ctx, pod, corev1.PodReasonUnschedulable, d.msg, nominate)
}

// bind writes a decision; when that fails the pod leaves its node in
// the cache and is tried again after a backoff.
func (s *Scheduler) bind(ctx context.Context, b binding) {
	if len(b.volumes) > 0 {
		// The claims bind first, which may take a provisioner a while:
		// not on one of the bind workers.
		s.bindWG.Add(1)
		go func() {
			defer s.bindWG.Done()
			if err := s.bindVolumes(ctx, b.pod, b.node, b.volumes); err != nil {
				s.bindFailed(ctx, b, fmt.Sprintf("running PreBind plugin %q: %v", "VolumeBinding", err), err)
				return
			}
			b.volumes = nil
			s.bind(ctx, b)
		}()
		return
	}
	pod := b.pod
	err := s.cs.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: b.node},
	}, metav1.CreateOptions{})
	if err == nil {
		s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, b.node)
		return
	}
	s.bindFailed(ctx, b, fmt.Sprintf("running Bind plugin %q: %v", "DefaultBinder", err), err)
}

// bindFailed takes the pod off its node in the cache and tries it again
// after a backoff, unless err says it is gone or bound meanwhile.
func (s *Scheduler) bindFailed(ctx context.Context, b binding, msg string, err error) {
	pod := b.pod
	s.cache.mu.Lock()
	s.cache.forget(b.key, string(pod.UID))
	s.cache.mu.Unlock()
	s.queue.move(moveOnAssignedPodDelete)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) || ctx.Err() != nil {
		return // gone, bound meanwhile, being deleted: the informer tells
	}
	s.log.Warn("binding failed; retrying", "pod", b.key, "node", b.node, "err", err)
	s.recordFailure(ctx, pod, corev1.PodReasonSchedulerError, msg, nil)
	s.queue.retry(pod)
}

// recordFailure tells why pod was not scheduled, as upstream: a
// FailedScheduling event and the PodScheduled=False condition, with the
// nomination (nil leaves it as it is).
func (s *Scheduler) recordFailure(ctx context.Context, pod *corev1.Pod, reason, msg string, nominate *string) {
	if s.pods != nil {
		cur, err := s.pods.Pods(pod.Namespace).Get(pod.Name)
		if err != nil || cur.UID != pod.UID || cur.Spec.NodeName != "" {
			return // gone or bound meanwhile
		}
		pod = cur
	}
	event := msg
	if len(event) > maxMessageLength {
		event = event[:maxMessageLength-len(" ...")] + " ..."
	}
	s.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", event)
	next := pod.Status.DeepCopy()
	changed := updatePodCondition(next, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: reason, Message: msg, ObservedGeneration: pod.Generation}, s.clock.Now())
	if nominate != nil && next.NominatedNodeName != *nominate {
		next.NominatedNodeName = *nominate
		changed = true
	}
	if !changed {
		return
	}
	if err := s.patchStatus(ctx, pod, next); err != nil && !apierrors.IsNotFound(err) {
		s.log.Warn("updating the pod's status failed", "pod", podKey(pod), "err", err)
	}
}

// updatePodCondition sets cond in status as upstream's
// UpdatePodCondition: the transition time moves only when the status
// does. It reports whether anything changed.
func updatePodCondition(status *corev1.PodStatus, cond corev1.PodCondition, now time.Time) bool {
	cond.LastTransitionTime = metav1.NewTime(now)
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != cond.Type {
			continue
		}
		if old.Status == cond.Status {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		same := old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message &&
			old.LastProbeTime.Equal(&cond.LastProbeTime) && old.LastTransitionTime.Equal(&cond.LastTransitionTime) &&
			old.ObservedGeneration == cond.ObservedGeneration
		*old = cond
		return !same
	}
	status.Conditions = append(status.Conditions, cond)
	return true
}

// patchStatus writes the difference between pod's status and next as a
// strategic merge patch of pods/status, as upstream's PatchPodStatus.
func (s *Scheduler) patchStatus(ctx context.Context, pod *corev1.Pod, next *corev1.PodStatus) error {
	oldData, err := json.Marshal(corev1.Pod{Status: pod.Status})
	if err != nil {
		return err
	}
	newData, err := json.Marshal(corev1.Pod{Status: *next})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, &corev1.Pod{})
	if err != nil {
		return err
	}
	if string(patch) == "{}" {
		return nil
	}
	_, err = s.cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// evict preempts the candidate's victims, as upstream: the
// DisruptionTarget condition first, then the deletion, then a Preempted
// event on each.
func (s *Scheduler) evict(ctx context.Context, preemptor *corev1.Pod, cand *candidate) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cand.pods))
	for i, victim := range cand.pods {
		if victim.DeletionTimestamp != nil {
			continue // already going
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := victim.Status.DeepCopy()
			if updatePodCondition(next, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: corev1.PodReasonPreemptionByScheduler, ObservedGeneration: victim.Generation,
				Message: fmt.Sprintf("%s: preempting to accommodate a higher priority pod", preemptor.Spec.SchedulerName)}, s.clock.Now()) {
				if err := s.patchStatus(ctx, victim, next); err != nil {
					if !apierrors.IsNotFound(err) {
						errs[i] = err
					}
					return
				}
			}
			if err := s.cs.CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
				if !apierrors.IsNotFound(err) {
					errs[i] = err
				}
				return
			}
			s.recorder.Eventf(victim, corev1.EventTypeNormal, "Preempted", "Preempted by pod %v on node %v", preemptor.UID, cand.ni.name)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clearNominations takes the nomination away from lower-priority pods
// nominated to a node the preemptor now takes, so they look elsewhere.
func (s *Scheduler) clearNominations(ctx context.Context, pods []*podInfo) {
	for _, p := range pods {
		s.nominator.remove(p.key)
		s.queue.activate(p.key) // let it look elsewhere
		if p.pod.Status.NominatedNodeName == "" {
			continue
		}
		next := p.pod.Status.DeepCopy()
		next.NominatedNodeName = ""
		if err := s.patchStatus(ctx, p.pod, next); err != nil && !apierrors.IsNotFound(err) {
			s.log.Warn("clearing a nomination failed", "pod", p.key, "err", err)
		}
	}
}
