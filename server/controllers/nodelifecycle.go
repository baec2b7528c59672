package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	nodetopology "k8s.io/component-helpers/node/topology"
	"k8s.io/klog/v2"
)

// The node lifecycle controller watches the kubelets' heartbeats, as
// upstream's (pkg/controller/nodelifecycle): a node whose Lease in
// kube-node-lease and whose Ready condition have not been renewed for the
// grace period (NodeMonitorGracePeriod, 50 s; NodeStartupGracePeriod, 60 s,
// counted from its creation, for a node whose kubelet never posted a
// status) gets its Ready, MemoryPressure, DiskPressure and PIDPressure
// conditions set to Unknown ("Kubelet stopped posting node status."), a
// NodeNotReady event, and its pods' Ready conditions set to False. A node
// whose Ready condition is False or Unknown gets the
// node.kubernetes.io/not-ready or unreachable NoExecute taint, through a
// rate-limited queue per zone (0.1 nodes a second; none at all while every
// node of every zone is down, since then the fault is more likely the
// control plane's), and loses it when it is Ready again. The
// TaintNodesByCondition half keeps the matching NoSchedule taints
// (not-ready, unreachable, memory-pressure, disk-pressure, pid-pressure,
// network-unavailable, unschedulable) in step with the conditions.
//
// The taint eviction controller (taint-eviction-controller, as upstream's
// pkg/controller/tainteviction) deletes the pods on a node with a NoExecute
// taint: at once when they do not tolerate it, after the shortest
// tolerationSeconds of the tolerations used when they do; never when they
// tolerate it without a limit. The API server gives every pod 300 s
// tolerations of not-ready and unreachable (DefaultTolerationSeconds).

const (
	defaultNodeMonitorPeriod      = 5 * time.Second
	defaultNodeMonitorGracePeriod = 50 * time.Second
	defaultNodeStartupGracePeriod = 60 * time.Second
	// nodeEvictionPeriod is how often the NoExecute tainting queues are tried.
	nodeEvictionPeriod = 100 * time.Millisecond
	// nodeHealthRetries bounds the attempts to post one node's health.
	nodeHealthRetries    = 5
	nodeHealthRetrySleep = 20 * time.Millisecond
	// Upstream's --node-eviction-rate, --secondary-node-eviction-rate,
	// --large-cluster-size-threshold and --unhealthy-zone-threshold.
	evictionLimiterQPS          float32 = 0.1
	secondaryEvictionLimiterQPS float32 = 0.01
	largeClusterThreshold               = 50
	unhealthyZoneThreshold      float32 = 0.55
	// labelNodeDisruptionExclusion keeps a node out of the zone health count.
	labelNodeDisruptionExclusion = "node.kubernetes.io/exclude-disruption"
	// taintEvictionRetries bounds the attempts to delete one pod.
	taintEvictionRetries = 5
)

var (
	unreachableTaintTemplate = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	notReadyTaintTemplate    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}

	// nodeConditionTaintKeys: which condition status gives which NoSchedule taint.
	nodeConditionTaintKeys = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
		corev1.NodeReady:              {corev1.ConditionFalse: corev1.TaintNodeNotReady, corev1.ConditionUnknown: corev1.TaintNodeUnreachable},
		corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
		corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
		corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
		corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
	}
	conditionTaintKeys = map[string]bool{
		corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true, corev1.TaintNodeNetworkUnavailable: true,
		corev1.TaintNodeMemoryPressure: true, corev1.TaintNodeDiskPressure: true, corev1.TaintNodePIDPressure: true,
	}

	// nodeLabelReconcile: beta labels kept equal to (and created from) the stable ones.
	nodeLabelReconcile = [][2]string{
		{corev1.LabelOSStable, "beta.kubernetes.io/os"},
		{corev1.LabelArchStable, "beta.kubernetes.io/arch"},
	}
)

type zoneState string

const (
	zoneInitial           zoneState = "Initial"
	zoneNormal            zoneState = "Normal"
	zoneFullDisruption    zoneState = "FullDisruption"
	zonePartialDisruption zoneState = "PartialDisruption"
)

// nodeHealthData is what the controller last saw of a node, with its own
// clock's times (not the kubelet's: the clocks may differ).
type nodeHealthData struct {
	probe, readyTransition time.Time
	status                 *corev1.NodeStatus
	lease                  *coordinationv1.Lease
}

func (n *nodeHealthData) deepCopy() *nodeHealthData {
	if n == nil {
		return nil
	}
	return &nodeHealthData{probe: n.probe, readyTransition: n.readyTransition, status: n.status.DeepCopy(), lease: n.lease.DeepCopy()}
}

type nodeLifecycle struct {
	cs       kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordinationlisters.LeaseLister
	pods     corelisters.PodLister
	podsOn   func(node string) []*corev1.Pod
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time

	period, grace, startupGrace time.Duration

	healthMu sync.Mutex
	health   map[string]*nodeHealthData
	// known, zoneStates: the monitor loop's own.
	known        map[string]*corev1.Node
	zoneStates   map[string]zoneState
	nodesToRetry sync.Map

	evictorMu sync.Mutex
	tainters  map[string]*nodeTaintQueue

	nodeQueue workqueue.TypedInterface[string]
	podQueue  workqueue.TypedRateLimitingInterface[types.NamespacedName]
}

func newNodeLifecycle(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, cfg Config) controller {
	podInf, nodeInf, leaseInf := f.Core().V1().Pods(), f.Core().V1().Nodes(), f.Coordination().V1().Leases()
	c := &nodeLifecycle{
		cs: cs, nodes: nodeInf.Lister(), leases: leaseInf.Lister(), pods: podInf.Lister(),
		podsOn:   podsOnNode(podInf.Informer()),
		synced:   []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced},
		recorder: recorder, log: cfg.Logger.With("controller", "node-lifecycle"), now: time.Now,
		period: cfg.NodeMonitorPeriod, grace: cfg.NodeMonitorGracePeriod, startupGrace: cfg.NodeStartupGracePeriod,
		health: map[string]*nodeHealthData{}, known: map[string]*corev1.Node{}, zoneStates: map[string]zoneState{},
		tainters:  map[string]*nodeTaintQueue{},
		nodeQueue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "node_lifecycle_controller"}),
		podQueue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName](),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "node_lifecycle_controller_pods"}),
	}
	if c.period <= 0 {
		c.period = defaultNodeMonitorPeriod
	}
	if c.grace <= 0 {
		c.grace = defaultNodeMonitorGracePeriod
	}
	if c.startupGrace <= 0 {
		c.startupGrace = defaultNodeStartupGracePeriod
	}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.podUpdated(nil, obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) {
			c.podUpdated(old.(*corev1.Pod), obj.(*corev1.Pod))
		},
	})
	f.addEventHandler(nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeQueue.Add(obj.(*corev1.Node).Name) },
		UpdateFunc: func(_, obj any) { c.nodeQueue.Add(obj.(*corev1.Node).Name) },
		DeleteFunc: func(obj any) {
			if n, ok := deletedObject[*corev1.Node](obj); ok {
				c.nodesToRetry.Delete(n.Name)
			}
		},
	})
	return c
}

func (c *nodeLifecycle) name() string { return "node-lifecycle" }

func (c *nodeLifecycle) run(ctx context.Context) {
	defer c.nodeQueue.ShutDown()
	defer c.podQueue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		c.nodeQueue.ShutDown()
		c.podQueue.ShutDown()
	}()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() { c.nodeWorker(ctx) })
	}
	for i := 0; i < 4; i++ {
		wg.Go(func() { c.podWorker(ctx) })
	}
	wg.Go(func() { wait.UntilWithContext(ctx, c.noExecuteTaintingPass, nodeEvictionPeriod) })
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := c.monitorNodeHealth(ctx); err != nil {
			c.log.Warn("monitoring node health failed", "err", err)
		}
	}, c.period)
	wg.Wait()
}

// nodeWorker keeps the NoSchedule taints and the beta labels of the nodes
// that change.
func (c *nodeLifecycle) nodeWorker(ctx context.Context) {
	for {
		name, quit := c.nodeQueue.Get()
		if quit {
			return
		}
		if err := c.noScheduleTaintingPass(ctx, name); err != nil {
			c.log.Warn("tainting the node NoSchedule failed", "node", name, "err", err)
		}
		if err := c.reconcileNodeLabels(ctx, name); err != nil {
			c.log.Warn("reconciling the node's labels failed", "node", name, "err", err)
		}
		c.nodeQueue.Done(name)
	}
}

// noScheduleTaintingPass gives the node the NoSchedule taints its
// conditions (and spec.unschedulable) call for, and takes away the others.
func (c *nodeLifecycle) noScheduleTaintingPass(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var want []corev1.Taint
	for _, cond := range node.Status.Conditions {
		if key, ok := nodeConditionTaintKeys[cond.Type][cond.Status]; ok {
			want = append(want, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		want = append(want, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	var have []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule && (t.Key == corev1.TaintNodeUnschedulable || conditionTaintKeys[t.Key]) {
			have = append(have, t)
		}
	}
	add, del := taintSetDiff(want, have)
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	return c.swapTaints(ctx, node, add, del)
}

// taintSetDiff: the taints of want missing from have, and those of have
// missing from want (compared by key and effect).
func taintSetDiff(want, have []corev1.Taint) (add, del []corev1.Taint) {
	for _, w := range want {
		if !taintExists(have, w) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !taintExists(want, h) {
			del = append(del, h)
		}
	}
	return add, del
}

func taintExists(taints []corev1.Taint, t corev1.Taint) bool {
	for i := range taints {
		if taints[i].MatchTaint(&t) {
			return true
		}
	}
	return false
}

// swapTaints adds (stamped with the time) and removes taints on a node, as
// upstream's SwapNodeControllerTaint, from a fresh read on conflicts.
func (c *nodeLifecycle) swapTaints(ctx context.Context, node *corev1.Node, add, del []corev1.Taint) error {
	return swapNodeTaints(ctx, c.cs, node, add, del, c.now())
}

func swapNodeTaints(ctx context.Context, cs kubernetes.Interface, node *corev1.Node, add, del []corev1.Taint, now time.Time) error {
	if len(add) == 0 {
		present := false
		for _, t := range del {
			present = present || taintExists(node.Spec.Taints, t)
		}
		if !present {
			return nil
		}
	}
	stamp := metav1.NewTime(now)
	first := true
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := node
		if !first || cur.ResourceVersion == "" {
			var err error
			if cur, err = cs.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		first = false
		var taints []corev1.Taint
		for _, t := range cur.Spec.Taints {
			if !taintExists(del, t) {
				taints = append(taints, t)
			}
		}
		for _, t := range add {
			t.TimeAdded = &stamp
			replaced := false
			for i := range taints {
				if taints[i].MatchTaint(&t) {
					if taints[i].Value != t.Value {
						taints[i] = t
					}
					replaced = true
				}
			}
			if !replaced {
				taints = append(taints, t)
			}
		}
		if equality.Semantic.DeepEqual(taints, cur.Spec.Taints) {
			return nil
		}
		next := cur.DeepCopy()
		next.Spec.Taints = taints
		_, err := cs.CoreV1().Nodes().Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

// reconcileNodeLabels keeps the beta os and arch labels equal to the
// stable ones, as upstream still does.
func (c *nodeLifecycle) reconcileNodeLabels(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	update := map[string]string{}
	for _, r := range nodeLabelReconcile {
		primary, ok := node.Labels[r[0]]
		if !ok {
			continue
		}
		if secondary, ok := node.Labels[r[1]]; !ok || secondary != primary {
			update[r[1]] = primary
		}
	}
	if len(update) == 0 {
		return nil
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		next := cur.DeepCopy()
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		for k, v := range update {
			next.Labels[k] = v
		}
		_, err = c.cs.CoreV1().Nodes().Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

// noExecuteTaintingPass taints the nodes waiting in the zones' queues with
// not-ready or unreachable, whichever their Ready condition calls for.
func (c *nodeLifecycle) noExecuteTaintingPass(ctx context.Context) {
	c.evictorMu.Lock()
	queues := make([]*nodeTaintQueue, 0, len(c.tainters))
	for _, q := range c.tainters {
		queues = append(queues, q)
	}
	c.evictorMu.Unlock()
	for _, q := range queues {
		q.try(c.now, func(v timedNode) (bool, time.Duration) {
			node, err := c.nodes.Get(v.name)
			if apierrors.IsNotFound(err) {
				return true, 0
			}
			if err != nil {
				return false, 50 * time.Millisecond
			}
			cond := nodeCondition(&node.Status, corev1.NodeReady)
			if cond == nil {
				return false, 50 * time.Millisecond
			}
			// Mutually exclusive, as the Ready condition's values are.
			var add, opposite corev1.Taint
			switch cond.Status {
			case corev1.ConditionFalse:
				add, opposite = notReadyTaintTemplate, unreachableTaintTemplate
			case corev1.ConditionUnknown:
				add, opposite = unreachableTaintTemplate, notReadyTaintTemplate
			default:
				return true, 0 // ready again
			}
			if err := c.swapTaints(ctx, node, []corev1.Taint{add}, []corev1.Taint{opposite}); err != nil {
				c.log.Warn("tainting the node failed", "node", node.Name, "err", err)
				return false, 0
			}
			return true, 0
		})
	}
}

func nodeCondition(status *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	if status == nil {
		return nil
	}
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

// monitorNodeHealth is one pass over every node: mark the silent ones
// Unknown, queue the unready ones for tainting, mark their pods not
// ready, and work out each zone's state.
func (c *nodeLifecycle) monitorNodeHealth(ctx context.Context) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	added, deleted, newZones := c.classifyNodes(nodes)
	for _, n := range newZones {
		c.addZone(n)
	}
	for _, n := range added {
		c.nodeEvent(n, corev1.EventTypeNormal, "RegisteredNode", fmt.Sprintf("Registered Node %s in Controller", n.Name))
		c.known[n.Name] = n
		c.addZone(n)
		if _, err := c.markNodeAsReachable(ctx, n); err != nil {
			c.log.Warn("removing the node's NoExecute taints failed", "node", n.Name, "err", err)
		}
	}
	for _, n := range deleted {
		c.nodeEvent(n, corev1.EventTypeNormal, "RemovingNode", fmt.Sprintf("Removing Node %s from Controller", n.Name))
		delete(c.known, n.Name)
		c.healthMu.Lock()
		delete(c.health, n.Name)
		c.healthMu.Unlock()
	}
	var mu sync.Mutex
	zoneConditions := map[string][]*corev1.NodeCondition{}
	workqueue.ParallelizeUntil(ctx, 8, len(nodes), func(i int) {
		node := nodes[i].DeepCopy()
		var observed corev1.NodeCondition
		var current *corev1.NodeCondition
		for attempt := 0; ; attempt++ {
			var err error
			if observed, current, err = c.tryUpdateNodeHealth(ctx, node); err == nil {
				break
			}
			if attempt == nodeHealthRetries {
				c.log.Warn("updating the node's health failed; no pods will be evicted", "node", node.Name, "err", err)
				return
			}
			time.Sleep(nodeHealthRetrySleep)
			if node, err = c.cs.CoreV1().Nodes().Get(ctx, nodes[i].Name, metav1.GetOptions{}); err != nil {
				c.log.Debug("getting the node to update its health failed; deleted?", "node", nodes[i].Name, "err", err)
				return
			}
		}
		if _, excluded := node.Labels[labelNodeDisruptionExclusion]; !excluded {
			mu.Lock()
			zone := nodetopology.GetZoneKey(node)
			zoneConditions[zone] = append(zoneConditions[zone], current)
			mu.Unlock()
		}
		if current != nil {
			pods := c.podsOn(node.Name)
			c.processTaintBasedEviction(ctx, node, &observed)
			_, needsRetry := c.nodesToRetry.Load(node.Name)
			switch {
			case current.Status != corev1.ConditionTrue && observed.Status == corev1.ConditionTrue:
				// Reported once, when the status changes.
				c.recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: %s", node.Name, "NodeNotReady")
				fallthrough
			case needsRetry && observed.Status != corev1.ConditionTrue:
				if err := c.markPodsNotReady(ctx, pods, node.Name); err != nil {
					c.log.Warn("marking the node's pods not ready failed; will retry", "node", node.Name, "err", err)
					c.nodesToRetry.Store(node.Name, struct{}{})
					return
				}
			}
		}
		c.nodesToRetry.Delete(node.Name)
	})
	c.handleDisruption(ctx, zoneConditions, nodes)
	return nil
}

func nodeRef(n *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}
}

func (c *nodeLifecycle) nodeEvent(n *corev1.Node, eventType, reason, msg string) {
	c.recorder.Eventf(nodeRef(n), eventType, reason, "Node %s event: %s", n.Name, msg)
}

// classifyNodes: nodes new to the controller, nodes gone, and known nodes
// in a zone it has not seen yet.
func (c *nodeLifecycle) classifyNodes(all []*corev1.Node) (added, deleted, newZones []*corev1.Node) {
	seen := map[string]bool{}
	for _, n := range all {
		seen[n.Name] = true
		if _, ok := c.known[n.Name]; !ok {
			added = append(added, n)
		} else if _, ok := c.zoneStates[nodetopology.GetZoneKey(n)]; !ok {
			newZones = append(newZones, n)
		}
	}
	for name, n := range c.known {
		if !seen[name] {
			deleted = append(deleted, n)
		}
	}
	return added, deleted, newZones
}

func (c *nodeLifecycle) addZone(n *corev1.Node) {
	zone := nodetopology.GetZoneKey(n)
	if _, ok := c.zoneStates[zone]; ok {
		return
	}
	c.zoneStates[zone] = zoneInitial
	c.evictorMu.Lock()
	c.tainters[zone] = newNodeTaintQueue(evictionLimiterQPS)
	c.evictorMu.Unlock()
}

// tryUpdateNodeHealth compares what the node shows with what the
// controller saw last, and when neither its Ready condition nor its Lease
// moved for the grace period, sets its conditions to Unknown. It returns
// the Ready condition as observed and as it is now.
func (c *nodeLifecycle) tryUpdateNodeHealth(ctx context.Context, node *corev1.Node) (corev1.NodeCondition, *corev1.NodeCondition, error) {
	c.healthMu.Lock()
	health := c.health[node.Name].deepCopy()
	c.healthMu.Unlock()
	defer func() {
		c.healthMu.Lock()
		c.health[node.Name] = health
		c.healthMu.Unlock()
	}()
	now := c.now()
	var observed corev1.NodeCondition
	var grace time.Duration
	current := nodeCondition(&node.Status, corev1.NodeReady)
	if current == nil {
		// The kubelet never posted a status: count from the node's creation.
		created := node.CreationTimestamp
		observed = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, LastHeartbeatTime: created, LastTransitionTime: created}
		grace = c.startupGrace
		if health != nil {
			health.status = &node.Status
		} else {
			health = &nodeHealthData{status: &node.Status, probe: created.Time, readyTransition: created.Time}
		}
	} else {
		observed = *current
		grace = c.grace
	}
	var saved *corev1.NodeCondition
	var savedLease *coordinationv1.Lease
	if health != nil {
		saved = nodeCondition(health.status, corev1.NodeReady)
		savedLease = health.lease
	}
	switch {
	case health == nil:
		health = &nodeHealthData{status: &node.Status, probe: now, readyTransition: now}
	case saved == nil && current != nil:
		health = &nodeHealthData{status: &node.Status, probe: now, readyTransition: now}
	case saved != nil && current == nil:
		c.log.Warn("the Ready condition was removed from the node's status", "node", node.Name)
		health = &nodeHealthData{status: &node.Status, probe: now, readyTransition: now}
	case saved != nil && current != nil && !saved.LastHeartbeatTime.Equal(&current.LastHeartbeatTime):
		transition := health.readyTransition
		if !saved.LastTransitionTime.Equal(&current.LastTransitionTime) {
			transition = now
		}
		health = &nodeHealthData{status: &node.Status, probe: now, readyTransition: transition}
	}
	// A renewed Lease is a heartbeat too.
	lease, _ := c.leases.Leases(corev1.NamespaceNodeLease).Get(node.Name)
	if lease != nil && (savedLease == nil || savedLease.Spec.RenewTime.Before(lease.Spec.RenewTime)) {
		health.lease = lease
		health.probe = now
	}
	if !now.After(health.probe.Add(grace)) {
		return observed, current, nil
	}
	stamp := metav1.NewTime(now)
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		// NetworkUnavailable is left alone: the network plugin owns it.
		cond := nodeCondition(&node.Status, t)
		if cond == nil {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.",
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: stamp,
			})
		} else if cond.Status != corev1.ConditionUnknown {
			cond.Status = corev1.ConditionUnknown
			cond.Reason = "NodeStatusUnknown"
			cond.Message = "Kubelet stopped posting node status."
			cond.LastTransitionTime = stamp
		}
	}
	current = nodeCondition(&node.Status, corev1.NodeReady)
	if equality.Semantic.DeepEqual(current, &observed) {
		return observed, current, nil
	}
	if _, err := c.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return observed, current, err
	}
	health = &nodeHealthData{status: &node.Status, probe: health.probe, readyTransition: now, lease: lease}
	return observed, current, nil
}

// processTaintBasedEviction queues an unready node for its NoExecute
// taint (or swaps not-ready and unreachable at once), and untaints a
// ready one.
func (c *nodeLifecycle) processTaintBasedEviction(ctx context.Context, node *corev1.Node, observed *corev1.NodeCondition) {
	switch observed.Status {
	case corev1.ConditionFalse:
		if taintExists(node.Spec.Taints, unreachableTaintTemplate) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{notReadyTaintTemplate}, []corev1.Taint{unreachableTaintTemplate}); err != nil {
				c.log.Warn("swapping the unreachable taint for not-ready failed; will retry", "node", node.Name, "err", err)
			}
		} else {
			c.markNodeForTainting(node, corev1.ConditionFalse)
		}
	case corev1.ConditionUnknown:
		if taintExists(node.Spec.Taints, notReadyTaintTemplate) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{unreachableTaintTemplate}, []corev1.Taint{notReadyTaintTemplate}); err != nil {
				c.log.Warn("swapping the not-ready taint for unreachable failed; will retry", "node", node.Name, "err", err)
			}
		} else {
			c.markNodeForTainting(node, corev1.ConditionUnknown)
		}
	case corev1.ConditionTrue:
		if _, err := c.markNodeAsReachable(ctx, node); err != nil {
			c.log.Warn("removing the node's NoExecute taints failed; will retry", "node", node.Name, "err", err)
		}
	}
}

func (c *nodeLifecycle) markNodeForTainting(node *corev1.Node, status corev1.ConditionStatus) bool {
	c.evictorMu.Lock()
	defer c.evictorMu.Unlock()
	q := c.tainters[nodetopology.GetZoneKey(node)]
	if q == nil {
		return false
	}
	if status == corev1.ConditionFalse && !taintExists(node.Spec.Taints, notReadyTaintTemplate) ||
		status == corev1.ConditionUnknown && !taintExists(node.Spec.Taints, unreachableTaintTemplate) {
		q.remove(node.Name)
	}
	return q.add(node.Name, string(node.UID), c.now())
}

func (c *nodeLifecycle) markNodeAsReachable(ctx context.Context, node *corev1.Node) (bool, error) {
	if err := c.swapTaints(ctx, node, nil, []corev1.Taint{unreachableTaintTemplate, notReadyTaintTemplate}); err != nil {
		return false, err
	}
	c.evictorMu.Lock()
	defer c.evictorMu.Unlock()
	if q := c.tainters[nodetopology.GetZoneKey(node)]; q != nil {
		return q.remove(node.Name), nil
	}
	return false, nil
}

// markPodsNotReady sets the Ready condition of the node's pods to False,
// with a NodeNotReady event on each.
func (c *nodeLifecycle) markPodsNotReady(ctx context.Context, pods []*corev1.Pod, nodeName string) error {
	var errs []error
	for _, p := range pods {
		if p.Spec.NodeName != nodeName {
			continue
		}
		ready := podConditionOf(&p.Status, corev1.PodReady)
		if ready == nil {
			continue
		}
		next := p.DeepCopy()
		if !applyPodCondition(&next.Status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse,
			Reason: ready.Reason, Message: ready.Message, LastProbeTime: ready.LastProbeTime}, c.now()) {
			continue
		}
		if _, err := c.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			errs = append(errs, err)
		}
		c.recorder.Event(next, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func podConditionOf(status *corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

// applyPodCondition sets a pod condition as upstream's UpdatePodCondition
// does: the transition time moves only when the status does; it reports
// whether anything changed.
func applyPodCondition(status *corev1.PodStatus, cond corev1.PodCondition, now time.Time) bool {
	cond.LastTransitionTime = metav1.NewTime(now)
	old := podConditionOf(status, cond.Type)
	if old == nil {
		status.Conditions = append(status.Conditions, cond)
		return true
	}
	if cond.Status == old.Status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	changed := cond.Status != old.Status || cond.Reason != old.Reason || cond.Message != old.Message ||
		!cond.LastProbeTime.Equal(&old.LastProbeTime) || !cond.LastTransitionTime.Equal(&old.LastTransitionTime)
	*old = cond
	return changed
}

// handleDisruption works out each zone's state from its nodes' Ready
// conditions and sets the zones' tainting rates: normal; slower (or none
// in a small cluster) when most of a zone is down; none at all, and the
// NoExecute taints taken off, when every zone is down.
func (c *nodeLifecycle) handleDisruption(ctx context.Context, zoneConditions map[string][]*corev1.NodeCondition, nodes []*corev1.Node) {
	newStates := map[string]zoneState{}
	allAreFullyDisrupted := true
	for zone, conds := range zoneConditions {
		state := computeZoneState(conds)
		if state != zoneFullDisruption {
			allAreFullyDisrupted = false
		}
		newStates[zone] = state
		if _, ok := c.zoneStates[zone]; !ok {
			c.zoneStates[zone] = zoneInitial
		}
	}
	allWereFullyDisrupted := true
	for zone, state := range c.zoneStates {
		if _, ok := zoneConditions[zone]; !ok {
			delete(c.zoneStates, zone)
			continue
		}
		if state != zoneFullDisruption {
			allWereFullyDisrupted = false
			break
		}
	}
	if allAreFullyDisrupted && allWereFullyDisrupted {
		return
	}
	switch {
	case allAreFullyDisrupted:
		c.log.Info("every node is not ready: the controller stops tainting and evicting")
		for _, n := range nodes {
			if _, err := c.markNodeAsReachable(ctx, n); err != nil {
				c.log.Warn("removing the node's NoExecute taints failed", "node", n.Name, "err", err)
			}
		}
		for zone := range c.zoneStates {
			c.setZoneLimiter(zone, 0)
			c.zoneStates[zone] = zoneFullDisruption
		}
	case allWereFullyDisrupted:
		c.log.Info("some nodes are ready again: the controller resumes tainting and evicting")
		now := c.now()
		c.healthMu.Lock()
		for _, n := range nodes {
			if h := c.health[n.Name]; h != nil {
				h.probe, h.readyTransition = now, now
			}
		}
		c.healthMu.Unlock()
		for zone := range c.zoneStates {
			c.setZoneLimiter(zone, c.zoneQPS(len(zoneConditions[zone]), newStates[zone]))
			c.zoneStates[zone] = newStates[zone]
		}
	default:
		for zone, state := range c.zoneStates {
			if next := newStates[zone]; next != state {
				c.log.Info("zone changed state", "zone", zone, "state", next)
				c.setZoneLimiter(zone, c.zoneQPS(len(zoneConditions[zone]), next))
				c.zoneStates[zone] = next
			}
		}
	}
}

func computeZoneState(conds []*corev1.NodeCondition) zoneState {
	ready, notReady := 0, 0
	for _, cond := range conds {
		if cond != nil && cond.Status == corev1.ConditionTrue {
			ready++
		} else {
			notReady++
		}
	}
	switch {
	case ready == 0 && notReady > 0:
		return zoneFullDisruption
	case notReady > 2 && float32(notReady)/float32(notReady+ready) >= unhealthyZoneThreshold:
		return zonePartialDisruption
	}
	return zoneNormal
}

func (c *nodeLifecycle) zoneQPS(size int, state zoneState) float32 {
	switch state {
	case zonePartialDisruption:
		if size > largeClusterThreshold {
			return secondaryEvictionLimiterQPS
		}
		return 0
	}
	return evictionLimiterQPS
}

func (c *nodeLifecycle) setZoneLimiter(zone string, qps float32) {
	c.evictorMu.Lock()
	defer c.evictorMu.Unlock()
	if q := c.tainters[zone]; q != nil {
		q.swapLimiter(qps)
	}
}

// podUpdated queues a pod newly bound to a node: if the node is not
// ready, the pod is marked not ready too.
func (c *nodeLifecycle) podUpdated(old, pod *corev1.Pod) {
	if pod.Spec.NodeName != "" && (old == nil || old.Spec.NodeName != pod.Spec.NodeName) {
		c.podQueue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
	}
}

func (c *nodeLifecycle) podWorker(ctx context.Context) {
	for {
		key, quit := c.podQueue.Get()
		if quit {
			return
		}
		if err := c.processPod(ctx, key); err != nil {
			c.podQueue.AddRateLimited(key)
		} else {
			c.podQueue.Forget(key)
		}
		c.podQueue.Done(key)
	}
}

func (c *nodeLifecycle) processPod(ctx context.Context, key types.NamespacedName) error {
	pod, err := c.pods.Pods(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.healthMu.Lock()
	health := c.health[pod.Spec.NodeName].deepCopy()
	c.healthMu.Unlock()
	if health == nil {
		return nil // not seen yet, or gone
	}
	if _, err := c.nodes.Get(pod.Spec.NodeName); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	ready := nodeCondition(health.status, corev1.NodeReady)
	if ready == nil || ready.Status == corev1.ConditionTrue {
		return nil
	}
	return c.markPodsNotReady(ctx, []*corev1.Pod{pod}, pod.Spec.NodeName)
}

// nodeTaintQueue is upstream's RateLimitedTimedQueue: nodes waiting for
// their NoExecute taint, taken in order at the zone's rate; a node stays
// known after it is processed, until it is removed, so that it is not
// queued twice.
type nodeTaintQueue struct {
	mu      sync.Mutex
	queue   []timedNode
	set     map[string]bool
	limiter flowcontrol.RateLimiter
}

type timedNode struct {
	name, uid string
	processAt time.Time
}

func newNodeTaintQueue(qps float32) *nodeTaintQueue {
	q := &nodeTaintQueue{set: map[string]bool{}, limiter: flowcontrol.NewFakeNeverRateLimiter()}
	if qps > 0 {
		q.limiter = flowcontrol.NewTokenBucketRateLimiter(qps, 1)
	}
	return q
}

func (q *nodeTaintQueue) add(name, uid string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.set[name] {
		return false
	}
	q.set[name] = true
	q.queue = append(q.queue, timedNode{name: name, uid: uid, processAt: now})
	sort.SliceStable(q.queue, func(i, j int) bool { return q.queue[i].processAt.Before(q.queue[j].processAt) })
	return true
}

func (q *nodeTaintQueue) remove(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.set[name] {
		return false
	}
	delete(q.set, name)
	for i, v := range q.queue {
		if v.name == name {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			break
		}
	}
	return true
}

// try processes the nodes that are due while the limiter allows; fn
// reports whether a node is done, or when to try it again.
func (q *nodeTaintQueue) try(now func() time.Time, fn func(timedNode) (bool, time.Duration)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) > 0 {
		if !q.limiter.TryAccept() {
			return
		}
		head := q.queue[0]
		t := now()
		if t.Before(head.processAt) {
			return
		}
		// fn runs under the lock: add and remove wait, as upstream's do.
		if done, wait := fn(head); !done {
			q.queue[0].processAt = t.Add(wait + 1)
			sort.SliceStable(q.queue, func(i, j int) bool { return q.queue[i].processAt.Before(q.queue[j].processAt) })
		} else {
			q.queue = q.queue[1:] // stays in set until removed
		}
	}
}

func (q *nodeTaintQueue) swapLimiter(qps float32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.limiter.QPS() == qps {
		return
	}
	var next flowcontrol.RateLimiter
	if qps <= 0 {
		next = flowcontrol.NewFakeNeverRateLimiter()
	} else {
		next = flowcontrol.NewTokenBucketRateLimiter(qps, 1)
		// Waiting on the old one: the new one starts drained.
		if !q.limiter.TryAccept() {
			next.TryAccept()
		}
	}
	q.limiter.Stop()
	q.limiter = next
}

// podsByNodeIndex indexes the pod informer by spec.nodeName.
const podsByNodeIndex = "spec.nodeName"

// podsOnNode returns a function listing the pods bound to a node, from an
// index on the pod informer (added here if no other controller did).
func podsOnNode(inf cache.SharedIndexInformer) func(node string) []*corev1.Pod {
	if _, ok := inf.GetIndexer().GetIndexers()[podsByNodeIndex]; !ok {
		_ = inf.AddIndexers(cache.Indexers{podsByNodeIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
				return []string{p.Spec.NodeName}, nil
			}
			return nil, nil
		}})
	}
	return func(node string) []*corev1.Pod {
		objs, err := inf.GetIndexer().ByIndex(podsByNodeIndex, node)
		if err != nil {
			objs = inf.GetIndexer().List()
		}
		var pods []*corev1.Pod
		for _, o := range objs {
			if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName == node {
				pods = append(pods, p)
			}
		}
		return pods
	}
}

// taintEviction is the taint eviction controller.
type taintEviction struct {
	cs       kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	podsOn   func(node string) []*corev1.Pod
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger

	mu      sync.Mutex
	tainted map[string][]corev1.Taint // NoExecute taints by node

	queue  workqueue.TypedInterface[taintItem]
	timers *evictionTimers
}

// taintItem is a node to look at (name empty) or a pod on node.
type taintItem struct{ node, namespace, name string }

func newTaintEviction(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	podInf, nodeInf := f.Core().V1().Pods(), f.Core().V1().Nodes()
	c := &taintEviction{
		cs: cs, pods: podInf.Lister(), nodes: nodeInf.Lister(), podsOn: podsOnNode(podInf.Informer()),
		synced:   []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		recorder: recorder, log: log.With("controller", "taint-eviction"),
		tainted: map[string][]corev1.Taint{},
		queue:   workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[taintItem]{Name: "noexec_taint"}),
	}
	c.timers = &evictionTimers{work: map[types.NamespacedName]*evictionTimer{}, fn: c.evict}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.podUpdated(nil, obj.(*corev1.Pod)) },
		UpdateFunc: func(old, obj any) { c.podUpdated(old.(*corev1.Pod), obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if p, ok := deletedObject[*corev1.Pod](obj); ok {
				c.podUpdated(p, nil)
			}
		},
	})
	f.addEventHandler(nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeUpdated(nil, obj.(*corev1.Node)) },
		UpdateFunc: func(old, obj any) { c.nodeUpdated(old.(*corev1.Node), obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if n, ok := deletedObject[*corev1.Node](obj); ok {
				c.nodeUpdated(n, nil)
			}
		},
	})
	return c
}

func (c *taintEviction) name() string { return "taint-eviction" }

func (c *taintEviction) run(ctx context.Context) {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() {
			for {
				item, quit := c.queue.Get()
				if quit {
					return
				}
				if item.name == "" {
					c.handleNode(ctx, item.node)
				} else {
					c.handlePod(ctx, item)
				}
				c.queue.Done(item)
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.timers.cancelAndWait()
}

func noExecuteTaints(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

func (c *taintEviction) podUpdated(old, pod *corev1.Pod) {
	if old != nil && pod != nil && old.Spec.NodeName == pod.Spec.NodeName && equality.Semantic.DeepEqual(old.Spec.Tolerations, pod.Spec.Tolerations) {
		return
	}
	p := pod
	if p == nil {
		p = old
	}
	c.queue.Add(taintItem{node: p.Spec.NodeName, namespace: p.Namespace, name: p.Name})
}

func (c *taintEviction) nodeUpdated(old, node *corev1.Node) {
	if old != nil && node != nil && equality.Semantic.DeepEqual(noExecuteTaints(old.Spec.Taints), noExecuteTaints(node.Spec.Taints)) {
		return
	}
	n := node
	if n == nil {
		n = old
	}
	c.queue.Add(taintItem{node: n.Name})
}

func (c *taintEviction) handlePod(ctx context.Context, item taintItem) {
	key := types.NamespacedName{Namespace: item.namespace, Name: item.name}
	pod, err := c.pods.Pods(item.namespace).Get(item.name)
	if apierrors.IsNotFound(err) {
		c.cancelWithEvent(key)
		return
	}
	if err != nil || pod.Spec.NodeName != item.node || pod.Spec.NodeName == "" {
		return
	}
	c.mu.Lock()
	taints, ok := c.tainted[pod.Spec.NodeName]
	c.mu.Unlock()
	if !ok {
		return // untainted: the node's update cancelled what was scheduled
	}
	c.processPodOnNode(ctx, key, pod.Spec.Tolerations, taints, time.Now())
}

func (c *taintEviction) handleNode(ctx context.Context, name string) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.tainted, name)
		c.mu.Unlock()
		return
	}
	if err != nil {
		return
	}
	taints := noExecuteTaints(node.Spec.Taints)
	c.mu.Lock()
	if len(taints) == 0 {
		delete(c.tainted, name)
	} else {
		c.tainted[name] = taints
	}
	c.mu.Unlock()
	now := time.Now()
	for _, p := range c.podsOn(name) {
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		if len(taints) == 0 {
			c.cancelWithEvent(key)
			continue
		}
		c.processPodOnNode(ctx, key, p.Spec.Tolerations, taints, now)
	}
}

func (c *taintEviction) processPodOnNode(ctx context.Context, key types.NamespacedName, tolerations []corev1.Toleration, taints []corev1.Taint, now time.Time) {
	if len(taints) == 0 {
		c.cancelWithEvent(key)
		return
	}
	all, used := matchingTolerations(taints, tolerations)
	if !all {
		// Deleted at once; anything scheduled is moot.
		c.cancelWithEvent(key)
		c.timers.add(ctx, key, now, now)
		return
	}
	wait := minTolerationTime(used)
	if wait < 0 {
		c.cancelWithEvent(key) // tolerated forever
		return
	}
	start, fireAt := now, now.Add(wait)
	if created, ok := c.timers.createdAt(key); ok {
		start = created
		if start.Add(wait).Before(fireAt) {
			return
		}
		c.cancelWithEvent(key)
	}
	c.timers.add(ctx, key, start, fireAt)
}

// matchingTolerations reports whether every taint is tolerated, and the
// first toleration matching each.
func matchingTolerations(taints []corev1.Taint, tolerations []corev1.Toleration) (bool, []corev1.Toleration) {
	var used []corev1.Toleration
	for i := range taints {
		found := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(klog.Background(), &taints[i], false) {
				used = append(used, tolerations[j])
				found = true
				break
			}
		}
		if !found {
			return false, nil
		}
	}
	return true, used
}

// minTolerationTime is the shortest tolerationSeconds, or -1 for forever.
func minTolerationTime(tolerations []corev1.Toleration) time.Duration {
	if len(tolerations) == 0 {
		return 0
	}
	least := int64(math.MaxInt64)
	for _, t := range tolerations {
		if t.TolerationSeconds != nil {
			if *t.TolerationSeconds <= 0 {
				return 0
			}
			least = min(least, *t.TolerationSeconds)
		}
	}
	if least == math.MaxInt64 {
		return -1
	}
	return time.Duration(least) * time.Second
}

func (c *taintEviction) cancelWithEvent(key types.NamespacedName) {
	if c.timers.cancel(key) {
		c.recorder.Eventf(podRef(key), corev1.EventTypeNormal, "TaintManagerEviction", "Cancelling deletion of Pod %s", key)
	}
}

func podRef(key types.NamespacedName) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: key.Namespace, Name: key.Name}
}

// evict marks the pod as a disruption target and deletes it.
func (c *taintEviction) evict(ctx context.Context, key types.NamespacedName) {
	c.recorder.Eventf(podRef(key), corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", key)
	var err error
	for i := 0; i < taintEvictionRetries; i++ {
		if err = c.markAndDelete(ctx, key); err == nil || apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.log.Warn("deleting the pod failed", "pod", key, "err", err)
}

func (c *taintEviction) markAndDelete(ctx context.Context, key types.NamespacedName) error {
	pod, err := c.cs.CoreV1().Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	next := pod.DeepCopy()
	if applyPodCondition(&next.Status, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByTaintManager", Message: "Taint manager: deleting due to NoExecute taint"}, time.Now()) {
		if _, err := c.cs.CoreV1().Pods(key.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return c.cs.CoreV1().Pods(key.Namespace).Delete(ctx, key.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
}

// evictionTimers are the scheduled deletions, as upstream's
// TimedWorkerQueue: one per pod; an entry stays while its work runs.
type evictionTimers struct {
	mu     sync.Mutex
	work   map[types.NamespacedName]*evictionTimer
	closed bool
	wg     sync.WaitGroup
	fn     func(ctx context.Context, key types.NamespacedName)
}

type evictionTimer struct {
	createdAt time.Time
	timer     *time.Timer
	cancelled atomic.Bool
}

func (q *evictionTimers) add(ctx context.Context, key types.NamespacedName, createdAt, fireAt time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.work[key]; ok || q.closed {
		return
	}
	w := &evictionTimer{createdAt: createdAt}
	run := func() {
		q.mu.Lock()
		if q.closed || w.cancelled.Load() {
			q.mu.Unlock()
			return
		}
		q.wg.Add(1) // under the lock, so that cancelAndWait waits for it
		q.mu.Unlock()
		defer q.wg.Done()
		q.fn(ctx, key)
		q.mu.Lock()
		if q.work[key] == w {
			delete(q.work, key)
		}
		q.mu.Unlock()
	}
	q.work[key] = w
	if d := time.Until(fireAt); d > 0 {
		w.timer = time.AfterFunc(d, run)
	} else {
		go run()
	}
}

func (q *evictionTimers) createdAt(key types.NamespacedName) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.work[key]
	if !ok {
		return time.Time{}, false
	}
	return w.createdAt, true
}

// cancel drops the pod's scheduled deletion and reports whether one was
// still waiting.
func (q *evictionTimers) cancel(key types.NamespacedName) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.work[key]
	if !ok {
		return false
	}
	delete(q.work, key)
	w.cancelled.Store(true)
	return w.timer != nil && w.timer.Stop()
}

func (q *evictionTimers) cancelAndWait() {
	q.mu.Lock()
	q.closed = true
	for key, w := range q.work {
		w.cancelled.Store(true)
		if w.timer != nil {
			w.timer.Stop()
		}
		delete(q.work, key)
	}
	q.mu.Unlock()
	q.wg.Wait()
}
