package scheduler

import (
	"container/heap"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/utils/clock"
)

// Upstream's scheduling queue settings: backoff from 1 s doubling to
// 10 s (podInitialBackoffSeconds, podMaxBackoffSeconds), and pods left in
// the unschedulable pool for 5 minutes are tried again anyway
// (podMaxInUnschedulablePodsDuration).
const (
	initialBackoff           = time.Second
	maxBackoff               = 10 * time.Second
	maxInUnschedulable       = 5 * time.Minute
	backoffFlushPeriod       = time.Second
	unschedulableFlushPeriod = 30 * time.Second
)

// Where a queued pod is.
const (
	inActive = iota + 1
	inBackoff
	inUnschedulable
	inFlight // popped, being scheduled
)

// queuedPod is a pod waiting for (or in) a scheduling attempt.
type queuedPod struct {
	pod       *corev1.Pod
	key       string
	priority  int32
	created   time.Time
	timestamp time.Time // when queued, or when its last attempt failed
	seq       uint64
	attempts  int
	// rejectedBy are the filter plugins that rejected it in its last
	// attempt; only events that concern them move it out of the
	// unschedulable pool.
	rejectedBy         uint16
	unschedulableSince time.Time
	where              int
	index              int  // in its heap
	movedInFlight      bool // a cluster event came during its attempt
}

// schedulingQueue is upstream's PriorityQueue: an active queue ordered by
// priority then creation time, a backoff queue of pods whose last attempt
// failed ordered by when their backoff ends, and a pool of unschedulable
// pods that cluster events move back.
type schedulingQueue struct {
	mu    sync.Mutex
	cond  *sync.Cond
	clock clock.Clock

	pods          map[string]*queuedPod
	active        activeHeap
	backoff       backoffHeap
	cycle         int64 // attempts started
	moveCycle     int64 // the attempt during which pods were last moved
	seq           uint64
	closed        bool
	unschedulable int
}

func newSchedulingQueue(c clock.Clock) *schedulingQueue {
	q := &schedulingQueue{clock: c, pods: map[string]*queuedPod{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// activeHeap orders by priority, then creation time, then queue order.
type activeHeap []*queuedPod

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if !a.timestamp.Equal(b.timestamp) {
		return a.timestamp.Before(b.timestamp)
	}
	return a.seq < b.seq
}
func (h activeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *activeHeap) Push(x any)   { p := x.(*queuedPod); p.index = len(*h); *h = append(*h, p) }
func (h *activeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// backoffHeap orders by the end of the backoff; expiry is set on push.
type backoffHeap struct {
	pods   []*queuedPod
	expiry map[*queuedPod]time.Time
}

func (h *backoffHeap) Len() int           { return len(h.pods) }
func (h *backoffHeap) Less(i, j int) bool { return h.expiry[h.pods[i]].Before(h.expiry[h.pods[j]]) }
func (h *backoffHeap) Swap(i, j int) {
	h.pods[i], h.pods[j] = h.pods[j], h.pods[i]
	h.pods[i].index = i
	h.pods[j].index = j
}
func (h *backoffHeap) Push(x any) {
	p := x.(*queuedPod)
	p.index = len(h.pods)
	h.pods = append(h.pods, p)
}
func (h *backoffHeap) Pop() any {
	p := h.pods[len(h.pods)-1]
	h.pods[len(h.pods)-1] = nil
	h.pods = h.pods[:len(h.pods)-1]
	delete(h.expiry, p)
	return p
}

// backoffDuration is 1 s doubled for each failed attempt after the
// first, at most 10 s.
func backoffDuration(attempts int) time.Duration {
	if attempts == 0 {
		return 0
	}
	d := initialBackoff
	for i := 1; i < attempts; i++ {
		if d > maxBackoff-d {
			return maxBackoff
		}
		d += d
	}
	return d
}

func (q *schedulingQueue) backoffExpiry(p *queuedPod) time.Time {
	return p.timestamp.Add(backoffDuration(p.attempts))
}

// take removes p from wherever it is queued.
func (q *schedulingQueue) take(p *queuedPod) {
	switch p.where {
	case inActive:
		heap.Remove(&q.active, p.index)
	case inBackoff:
		heap.Remove(&q.backoff, p.index)
	case inUnschedulable:
		q.unschedulable--
	}
	p.where = 0
}

func (q *schedulingQueue) toActive(p *queuedPod) {
	q.take(p)
	p.where = inActive
	heap.Push(&q.active, p)
	q.cond.Signal()
}

func (q *schedulingQueue) toBackoff(p *queuedPod) {
	q.take(p)
	p.where = inBackoff
	if q.backoff.expiry == nil {
		q.backoff.expiry = map[*queuedPod]time.Time{}
	}
	q.backoff.expiry[p] = q.backoffExpiry(p)
	heap.Push(&q.backoff, p)
}

// toActiveOrBackoff puts p in the active queue, or in the backoff queue
// while its backoff lasts.
func (q *schedulingQueue) toActiveOrBackoff(p *queuedPod) {
	if q.clock.Now().Before(q.backoffExpiry(p)) {
		q.toBackoff(p)
	} else {
		q.toActive(p)
	}
}

// add queues a new pod that needs scheduling, or updates a queued one.
func (q *schedulingQueue) add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(pod)
	if p := q.pods[key]; p != nil {
		q.updateLocked(p, pod)
		return
	}
	q.seq++
	now := q.clock.Now()
	p := &queuedPod{pod: pod, key: key, priority: corev1helpers.PodPriority(pod), created: pod.CreationTimestamp.Time, timestamp: now, seq: q.seq}
	q.pods[key] = p
	q.toActive(p)
}

// updateLocked takes a new version of a queued pod. A pod that was
// unschedulable is tried again if what it asks for changed (upstream's
// isPodUpdated: anything but its status and bookkeeping).
func (q *schedulingQueue) updateLocked(p *queuedPod, pod *corev1.Pod) {
	old := p.pod
	p.pod = pod
	p.priority = corev1helpers.PodPriority(pod)
	changed := podSpecChanged(old, pod)
	switch p.where {
	case inActive:
		heap.Fix(&q.active, p.index)
	case inUnschedulable:
		if changed {
			q.toActiveOrBackoff(p)
		}
	case inFlight:
		if changed {
			p.movedInFlight = true
		}
	}
}

func podSpecChanged(old, new *corev1.Pod) bool {
	if old == new {
		return false
	}
	return !apiequality.Semantic.DeepEqual(old.Spec, new.Spec) ||
		!apiequality.Semantic.DeepEqual(old.Labels, new.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Annotations, new.Annotations) ||
		!apiequality.Semantic.DeepEqual(old.OwnerReferences, new.OwnerReferences) ||
		!apiequality.Semantic.DeepEqual(old.DeletionTimestamp, new.DeletionTimestamp)
}

// remove forgets a pod: it was deleted, or bound.
func (q *schedulingQueue) remove(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.pods[key]; p != nil {
		q.take(p)
		delete(q.pods, key)
	}
}

// pop waits for the next pod to try; ok is false once the queue is
// closed. The returned cycle numbers the attempt.
func (q *schedulingQueue) pop() (p *queuedPod, pod *corev1.Pod, cycle int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, nil, 0, false
	}
	p = heap.Pop(&q.active).(*queuedPod)
	p.where = inFlight
	p.attempts++
	p.movedInFlight = false
	q.cycle++
	return p, p.pod, q.cycle, true
}

// done ends an attempt that placed the pod (or found it gone).
func (q *schedulingQueue) done(p *queuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[p.key] == p && p.where == inFlight {
		delete(q.pods, p.key)
	}
}

// failed ends an attempt that did not place the pod. A pod rejected by
// filters goes to the unschedulable pool, unless a cluster event came
// during the attempt; after an error, or such an event, it backs off.
func (q *schedulingQueue) failed(p *queuedPod, cycle int64, rejectedBy uint16, isErr bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pods[p.key] != p || p.where != inFlight {
		return // deleted (or bound) meanwhile
	}
	now := q.clock.Now()
	p.timestamp = now
	p.rejectedBy = rejectedBy
	if isErr || rejectedBy == 0 || p.movedInFlight || q.moveCycle >= cycle {
		q.toBackoff(p)
		return
	}
	p.where = inUnschedulable
	p.unschedulableSince = now
	q.unschedulable++
}

// retry puts a pod whose binding failed back, to back off.
func (q *schedulingQueue) retry(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(pod)
	p := q.pods[key]
	if p == nil {
		q.seq++
		p = &queuedPod{pod: pod, key: key, priority: corev1helpers.PodPriority(pod), created: pod.CreationTimestamp.Time, seq: q.seq, attempts: 1}
		q.pods[key] = p
	}
	if p.where == inFlight {
		return
	}
	p.timestamp = q.clock.Now()
	q.toBackoff(p)
}

// move sends the unschedulable pods that plugins in mask rejected back
// to the active queue (or to back off), after a cluster event.
func (q *schedulingQueue) move(mask uint16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	for _, p := range q.pods {
		switch {
		case p.where == inUnschedulable && p.rejectedBy&mask != 0:
			q.toActiveOrBackoff(p)
		case p.where == inFlight:
			p.movedInFlight = true
		}
	}
}

// activate sends one unschedulable pod back to be tried (after its
// backoff).
func (q *schedulingQueue) activate(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.pods[key]; p != nil && p.where == inUnschedulable {
		q.toActiveOrBackoff(p)
	}
}

// flushBackoff moves the pods whose backoff has ended to the active queue.
func (q *schedulingQueue) flushBackoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for q.backoff.Len() > 0 {
		p := q.backoff.pods[0]
		if now.Before(q.backoff.expiry[p]) {
			return
		}
		q.toActive(p)
	}
}

// flushUnschedulable moves the pods that have been unschedulable for
// longer than maxInUnschedulable.
func (q *schedulingQueue) flushUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for _, p := range q.pods {
		if p.where == inUnschedulable && now.Sub(p.unschedulableSince) > maxInUnschedulable {
			q.toActiveOrBackoff(p)
		}
	}
}

func (q *schedulingQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// counts returns how many pods are active, backing off and unschedulable.
func (q *schedulingQueue) counts() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), q.unschedulable
}

// nominator keeps the pods nominated to nodes by preemption
// (status.nominatedNodeName), whose room other pods of no higher
// priority must leave free.
type nominator struct {
	mu     sync.RWMutex
	byNode map[string][]*podInfo
	nodeOf map[string]string
}

func newNominator() *nominator {
	return &nominator{byNode: map[string][]*podInfo{}, nodeOf: map[string]string{}}
}

// set records pod's nomination to node ("" removes it).
func (n *nominator) set(pi *podInfo, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removeLocked(pi.key)
	if node == "" {
		return
	}
	n.nodeOf[pi.key] = node
	n.byNode[node] = append(n.byNode[node], pi)
}

func (n *nominator) remove(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removeLocked(key)
}

func (n *nominator) removeLocked(key string) {
	node, ok := n.nodeOf[key]
	if !ok {
		return
	}
	delete(n.nodeOf, key)
	list := n.byNode[node]
	for i, p := range list {
		if p.key == key {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.byNode, node)
	} else {
		n.byNode[node] = list
	}
}

// weighing returns the pods nominated to node that weigh on pi: of equal
// or higher priority, other than pi.
func (n *nominator) weighing(pi *podInfo) func(node string) []*podInfo {
	return func(node string) []*podInfo {
		n.mu.RLock()
		defer n.mu.RUnlock()
		var out []*podInfo
		for _, p := range n.byNode[node] {
			if p.key != pi.key && p.priority >= pi.priority {
				out = append(out, p)
			}
		}
		return out
	}
}

// lower returns the pods nominated to node with a priority below prio.
func (n *nominator) lower(node string, prio int32) []*podInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*podInfo
	for _, p := range n.byNode[node] {
		if p.priority < prio {
			out = append(out, p)
		}
	}
	return out
}
