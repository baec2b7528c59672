// Package scheduler is labctl's kube-scheduler: it picks a node for every
// pod that has none and names no other scheduler, and records the choice
// through the API (the pods/binding subresource), as the course's outline
// tells it: "the scheduler looks at node state and picks a node".
//
// A node fits a pod when it is schedulable (or the pod tolerates that),
// the pod tolerates its NoSchedule and NoExecute taints, it matches the
// pod's nodeSelector and required node affinity, and it has room for the
// pod's requests (CPU, memory, pods) in its allocatable resources after
// the pods already on it. Among the nodes that fit, the least allocated
// wins. A pod no node fits gets upstream's FailedScheduling event and
// PodScheduled=False condition, and is tried again when nodes or pods
// change, with backoff.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Name is the scheduler pods name in spec.schedulerName to be ours.
const Name = corev1.DefaultSchedulerName

// Scheduler places pods on nodes.
type Scheduler struct {
	cs       kubernetes.Interface
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger

	mu          sync.Mutex
	unscheduled map[string]bool // pods that fit nowhere, retried on cluster changes
}

// New makes a scheduler over informers from f; events go to recorder.
func New(cs kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Scheduler {
	podInf, nodeInf := f.Core().V1().Pods(), f.Core().V1().Nodes()
	s := &Scheduler{
		cs: cs, pods: podInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 10*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"}),
		recorder:    recorder,
		log:         log.With("component", "scheduler"),
		unscheduled: map[string]bool{},
	}
	podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: s.podChanged,
		UpdateFunc: func(_, obj any) {
			s.podChanged(obj)
		},
		DeleteFunc: func(any) { s.retryUnscheduled() }, // room freed
	})
	nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.retryUnscheduled() },
		UpdateFunc: func(any, any) { s.retryUnscheduled() },
	})
	return s
}

func needsScheduling(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.Spec.SchedulerName == Name && pod.DeletionTimestamp == nil &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && len(pod.Spec.SchedulingGates) == 0
}

func (s *Scheduler) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if needsScheduling(pod) {
		if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
			s.queue.Add(key)
		}
	}
}

// retryUnscheduled puts every pod that fit nowhere back in the queue.
func (s *Scheduler) retryUnscheduled() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.unscheduled {
		s.queue.AddRateLimited(key)
		delete(s.unscheduled, key)
	}
}

// Run schedules until ctx ends; a pod is bound by one worker at a time,
// so that two pods never take the same room.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	// Pods that fit nowhere are tried again now and then, as upstream
	// flushes its unschedulable queue.
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.retryUnscheduled()
			}
		}
	}()
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		if err := s.scheduleOne(ctx, key); err != nil {
			s.log.Warn("scheduling failed; retrying", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func (s *Scheduler) scheduleOne(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || err == nil && !needsScheduling(pod) {
		return nil
	}
	if err != nil {
		return err
	}
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	all, err := s.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	node, reasons := s.pick(pod, nodes, all)
	if node == "" {
		return s.unschedulable(ctx, key, pod, len(nodes), reasons)
	}
	err = s.cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: ns, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or gone
	}
	if err != nil {
		return err
	}
	s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, pod.Name, node)
	return nil
}

// pick returns the best node for pod, or "" and why each node failed.
func (s *Scheduler) pick(pod *corev1.Pod, nodes []*corev1.Node, all []*corev1.Pod) (string, map[string]int) {
	reasons := map[string]int{}
	used := map[string]corev1.ResourceList{}
	count := map[string]int64{}
	for _, p := range all {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		add(used, p.Spec.NodeName, resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}))
		count[p.Spec.NodeName]++
	}
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
	best, bestScore := "", -1.0
	for _, n := range nodes {
		if why := s.filter(pod, n, affinity, want, used[n.Name], count[n.Name]); why != "" {
			reasons[why]++
			continue
		}
		score := leastAllocated(n, used[n.Name], want)
		if score > bestScore || score == bestScore && n.Name < best {
			best, bestScore = n.Name, score
		}
	}
	return best, reasons
}

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// filter returns why n cannot run pod, in upstream's words, or "".
func (s *Scheduler) filter(pod *corev1.Pod, n *corev1.Node, affinity nodeaffinity.RequiredNodeAffinity, want, used corev1.ResourceList, pods int64) string {
	if n.Spec.Unschedulable && !corev1helpers.TolerationsTolerateTaint(klog.Background(), pod.Spec.Tolerations, &unschedulableTaint, false) {
		return "node(s) were unschedulable"
	}
	taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), n.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}, false)
	if untolerated {
		return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value)
	}
	if ok, _ := affinity.Match(n); !ok {
		return "node(s) didn't match Pod's node affinity/selector"
	}
	alloc := n.Status.Allocatable
	if max, ok := alloc[corev1.ResourcePods]; ok && pods+1 > max.Value() {
		return "Too many pods"
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		need, ok := want[r]
		if !ok || need.IsZero() {
			continue
		}
		have := alloc[r]
		have.Sub(used[r])
		if need.Cmp(have) > 0 {
			return "Insufficient " + string(r)
		}
	}
	return ""
}

func add(used map[string]corev1.ResourceList, node string, req corev1.ResourceList) {
	if used[node] == nil {
		used[node] = corev1.ResourceList{}
	}
	for r, q := range req {
		cur := used[node][r]
		cur.Add(q)
		used[node][r] = cur
	}
}

// leastAllocated scores a node by the share of CPU and memory left after
// the pod, as upstream's default NodeResourcesFit scoring.
func leastAllocated(n *corev1.Node, used, want corev1.ResourceList) float64 {
	score := 0.0
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		alloc := n.Status.Allocatable[r]
		if alloc.IsZero() {
			continue
		}
		u := used[r]
		u.Add(want[r])
		score += 1 - float64(u.MilliValue())/float64(alloc.MilliValue())
	}
	return score
}

// unschedulable records why pod fits nowhere, as upstream words it, and
// keeps it for a retry when the cluster changes.
func (s *Scheduler) unschedulable(ctx context.Context, key string, pod *corev1.Pod, nodes int, reasons map[string]int) error {
	msg := "no nodes available to schedule pods"
	if nodes > 0 {
		var parts []string
		for why, n := range reasons {
			parts = append(parts, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(parts)
		msg = fmt.Sprintf("0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling.",
			nodes, strings.Join(parts, ", "), nodes, nodes)
	}
	s.mu.Lock()
	s.unscheduled[key] = true
	s.mu.Unlock()
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == msg {
			return nil // said already
		}
	}
	s.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	next := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: msg, LastTransitionTime: metav1.Now()}
	replaced := false
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == corev1.PodScheduled {
			next.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		next.Status.Conditions = append(next.Status.Conditions, cond)
	}
	_, err := s.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
