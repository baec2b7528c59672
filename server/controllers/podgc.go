package controllers

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Pod GC deletes the pods nothing else will, as upstream's
// (pkg/controller/podgc), every PodGCPeriod (20 s):
//   - finished pods (Succeeded or Failed) beyond TerminatedPodGCThreshold
//     (12500), evicted ones first, then the oldest;
//   - pods bound to a node that no longer exists, once the node has been
//     missing for PodGCQuarantine (40 s) and the API confirms it is gone,
//     marked Failed with a DisruptionTarget condition (DeletionByPodGC)
//     first;
//   - terminating pods that were never scheduled, and terminating pods on
//     a node that is not ready and has the node.kubernetes.io/out-of-service
//     taint (marked Failed first).
// Its deletions have no grace period: no kubelet would finish them.

const (
	defaultTerminatedPodGCThreshold = 12500
	defaultPodGCPeriod              = 20 * time.Second
	defaultPodGCQuarantine          = 40 * time.Second
)

type podGC struct {
	cs         kubernetes.Interface
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	synced     []cache.InformerSynced
	log        *slog.Logger
	threshold  int
	period     time.Duration
	quarantine time.Duration
	nodeQueue  workqueue.TypedDelayingInterface[string]
}

func newPodGC(cs kubernetes.Interface, f informers.SharedInformerFactory, cfg Config) controller {
	podInf, nodeInf := f.Core().V1().Pods(), f.Core().V1().Nodes()
	c := &podGC{
		cs: cs, pods: podInf.Lister(), nodes: nodeInf.Lister(),
		synced:    []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		log:       cfg.Logger.With("controller", "pod-garbage-collector"),
		threshold: cfg.TerminatedPodGCThreshold, period: cfg.PodGCPeriod, quarantine: cfg.PodGCQuarantine,
		nodeQueue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "orphaned_pods_nodes"}),
	}
	if c.threshold == 0 {
		c.threshold = defaultTerminatedPodGCThreshold
	}
	if c.period <= 0 {
		c.period = defaultPodGCPeriod
	}
	if c.quarantine <= 0 {
		c.quarantine = defaultPodGCQuarantine
	}
	return c
}

func (c *podGC) name() string { return "pod-garbage-collector" }

func (c *podGC) run(ctx context.Context) {
	defer c.nodeQueue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	wait.UntilWithContext(ctx, c.gc, c.period)
}

func (c *podGC) gc(ctx context.Context) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return
	}
	if c.threshold > 0 {
		c.gcTerminated(ctx, pods)
	}
	c.gcTerminating(ctx, pods)
	c.gcOrphaned(ctx, pods, nodes)
	c.gcUnscheduledTerminating(ctx, pods)
}

func podFinished(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodPending && p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodUnknown
}

// deleteAll deletes pods in parallel, marking them Failed (with cond, if
// any) first.
func (c *podGC) deleteAll(ctx context.Context, pods []*corev1.Pod, cond *corev1.PodCondition, why string) {
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			if err := c.markFailedAndDelete(ctx, p, cond); err != nil && !apierrors.IsNotFound(err) {
				c.log.Warn("deleting the pod failed", "pod", p.Namespace+"/"+p.Name, "why", why, "err", err)
				return
			}
			c.log.Info("deleted the pod", "pod", p.Namespace+"/"+p.Name, "why", why)
		})
	}
	wg.Wait()
}

// gcTerminated deletes the finished pods beyond the threshold.
func (c *podGC) gcTerminated(ctx context.Context, pods []*corev1.Pod) {
	var finished []*corev1.Pod
	for _, p := range pods {
		if podFinished(p) {
			finished = append(finished, p)
		}
	}
	n := len(finished) - c.threshold
	if n <= 0 {
		return
	}
	sortForPodGC(finished)
	c.deleteAll(ctx, finished[:n], nil, "terminated pods over the threshold")
}

// sortForPodGC orders pods evicted first, then oldest first, then by name.
func sortForPodGC(pods []*corev1.Pod) {
	evicted := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted" }
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if evicted(a) != evicted(b) {
			return evicted(a)
		}
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.Name < b.Name
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
}

// gcTerminating deletes terminating pods on nodes that are not ready and
// are out of service.
func (c *podGC) gcTerminating(ctx context.Context, pods []*corev1.Pod) {
	var doomed []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil || p.Spec.NodeName == "" {
			continue
		}
		node, err := c.nodes.Get(p.Spec.NodeName)
		if err != nil {
			continue
		}
		ready := nodeCondition(&node.Status, corev1.NodeReady)
		outOfService := false
		for _, t := range node.Spec.Taints {
			outOfService = outOfService || t.Key == corev1.TaintNodeOutOfService
		}
		if (ready == nil || ready.Status != corev1.ConditionTrue) && outOfService {
			doomed = append(doomed, p)
		}
	}
	if len(doomed) == 0 {
		return
	}
	sortForPodGC(doomed)
	c.deleteAll(ctx, doomed, nil, "terminating on an out-of-service node")
}

// gcOrphaned deletes the pods bound to nodes that are gone.
func (c *podGC) gcOrphaned(ctx context.Context, pods []*corev1.Pod, nodes []*corev1.Node) {
	existing := map[string]bool{}
	for _, n := range nodes {
		existing[n.Name] = true
	}
	// A node missing from the cache waits out the quarantine: it may be
	// new and not there yet.
	for _, p := range pods {
		if p.Spec.NodeName != "" && !existing[p.Spec.NodeName] {
			c.nodeQueue.AddAfter(p.Spec.NodeName, c.quarantine)
		}
	}
	gone := map[string]bool{}
	for c.nodeQueue.Len() > 0 {
		name, quit := c.nodeQueue.Get()
		if quit {
			return
		}
		if !existing[name] {
			_, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				gone[name] = true
			case err != nil:
				c.log.Warn("getting the node failed", "node", name, "err", err)
			}
		}
		c.nodeQueue.Done(name)
	}
	var doomed []*corev1.Pod
	for _, p := range pods {
		if gone[p.Spec.NodeName] {
			doomed = append(doomed, p)
		}
	}
	if len(doomed) == 0 {
		return
	}
	cond := &corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists"}
	for _, p := range doomed {
		c.deleteAll(ctx, []*corev1.Pod{p}, cond, "orphaned: its node is gone")
	}
}

// gcUnscheduledTerminating deletes terminating pods never bound to a node.
func (c *podGC) gcUnscheduledTerminating(ctx context.Context, pods []*corev1.Pod) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			c.deleteAll(ctx, []*corev1.Pod{p}, nil, "unscheduled and terminating")
		}
	}
}

// markFailedAndDelete moves an unfinished pod to Failed (no kubelet will),
// with cond if given, and deletes it without a grace period.
func (c *podGC) markFailedAndDelete(ctx context.Context, pod *corev1.Pod, cond *corev1.PodCondition) error {
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			cur, err := c.cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cur.UID != pod.UID {
				return apierrors.NewNotFound(corev1.Resource("pods"), pod.Name)
			}
			if cur.Status.Phase == corev1.PodSucceeded || cur.Status.Phase == corev1.PodFailed {
				return nil
			}
			next := cur.DeepCopy()
			next.Status.Phase = corev1.PodFailed
			if cond != nil {
				applyPodCondition(&next.Status, *cond, time.Now())
			}
			_, err = c.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return err
		}
	}
	zero := int64(0)
	return c.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
}
