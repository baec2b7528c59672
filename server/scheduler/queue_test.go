package scheduler

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestBackoffDuration(t *testing.T) {
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for attempts, w := range want {
		if got := backoffDuration(attempts); got != w {
			t.Errorf("attempts %d: %v, want %v", attempts, got, w)
		}
	}
}

// popNow pops without blocking, or fails.
func popNow(t *testing.T, q *schedulingQueue) (*queuedPod, int64) {
	t.Helper()
	if a, _, _ := q.counts(); a == 0 {
		t.Fatalf("nothing active")
	}
	p, _, cycle, ok := q.pop()
	if !ok {
		t.Fatalf("queue closed")
	}
	return p, cycle
}

func TestQueueOrder(t *testing.T) {
	q := newSchedulingQueue(testingclock.NewFakeClock(time.Now()))
	base := time.Now()
	mk := func(name string, prio int32, age time.Duration) *corev1.Pod {
		p := testPod(name, "100m")
		p.Spec.Priority = &prio
		p.CreationTimestamp = metav1.NewTime(base.Add(-age))
		return p
	}
	q.add(mk("young-low", 0, time.Second))
	q.add(mk("old-low", 0, time.Hour))
	q.add(mk("young-high", 100, time.Second))
	q.add(mk("old-high", 100, time.Minute))
	var got []string
	for range 4 {
		p, _ := popNow(t, q)
		got = append(got, p.pod.Name)
	}
	want := []string{"old-high", "young-high", "old-low", "young-low"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestQueueBackoffAndMoves(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	q := newSchedulingQueue(clk)
	q.add(testPod("p", "100m"))
	p, cycle := popNow(t, q)
	q.failed(p, cycle, plNodeResourcesFit, false)
	if a, b, u := q.counts(); a != 0 || b != 0 || u != 1 {
		t.Fatalf("after failing: %d active, %d backoff, %d unschedulable", a, b, u)
	}
	// An event that concerns another plugin leaves it there.
	q.move(plNodeAffinity)
	if _, _, u := q.counts(); u != 1 {
		t.Fatalf("moved by an unrelated event")
	}
	// One that concerns it moves it: to back off first, 1 s after its
	// failure, then to the active queue.
	q.move(plNodeResourcesFit)
	if a, b, _ := q.counts(); a != 0 || b != 1 {
		t.Fatalf("not backing off: %d active %d backoff", a, b)
	}
	clk.Step(999 * time.Millisecond)
	q.flushBackoff()
	if a, _, _ := q.counts(); a != 0 {
		t.Fatalf("out of backoff before 1 s")
	}
	clk.Step(time.Millisecond)
	q.flushBackoff()
	p, cycle = popNow(t, q)
	// Second failure: 2 s. An event during the attempt sends it to back
	// off rather than to the unschedulable pool.
	q.move(plNodeAffinity)
	q.failed(p, cycle, plNodeResourcesFit, false)
	if _, b, u := q.counts(); b != 1 || u != 0 {
		t.Fatalf("event during the attempt: %d backoff %d unschedulable", b, u)
	}
	clk.Step(1999 * time.Millisecond)
	q.flushBackoff()
	if a, _, _ := q.counts(); a != 0 {
		t.Fatalf("second backoff shorter than 2 s")
	}
	clk.Step(time.Millisecond)
	q.flushBackoff()
	p, cycle = popNow(t, q)
	// Left unschedulable for 5 minutes, it is tried again anyway.
	q.failed(p, cycle, plNodeResourcesFit, false)
	clk.Step(maxInUnschedulable + time.Second)
	q.flushUnschedulable()
	if a, _, _ := q.counts(); a != 1 {
		t.Fatalf("not flushed after 5 minutes")
	}
	p, _ = popNow(t, q)
	q.done(p)
	if len(q.pods) != 0 {
		t.Fatalf("done pod still queued")
	}
}

func TestQueueUpdatesAndDeletes(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	q := newSchedulingQueue(clk)
	pod := testPod("p", "100m")
	q.add(pod)
	p, cycle := popNow(t, q)
	q.failed(p, cycle, plNodeAffinity, false)
	// A status-only change (our own condition) does not move it.
	withStatus := pod.DeepCopy()
	withStatus.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.add(withStatus)
	if _, _, u := q.counts(); u != 1 {
		t.Fatalf("moved by a status change")
	}
	// A spec change does (to back off: it failed a moment ago).
	edited := withStatus.DeepCopy()
	edited.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	q.add(edited)
	if _, b, u := q.counts(); b != 1 || u != 0 {
		t.Fatalf("not moved by a spec change: %d backoff %d unschedulable", b, u)
	}
	q.remove(podKey(pod))
	if a, b, u := q.counts(); a+b+u != 0 || len(q.pods) != 0 {
		t.Fatalf("deleted pod still queued")
	}
	// Priority changes reorder the active queue.
	lo, hi := testPod("lo", "1"), testPod("hi", "1")
	q.add(lo)
	q.add(hi)
	hi2 := hi.DeepCopy()
	hi2.Spec.Priority = ptr.To[int32](5)
	q.add(hi2)
	if p, _ := popNow(t, q); p.pod.Name != "hi" {
		t.Fatalf("popped %s", p.pod.Name)
	}
}

func TestQueueCloseUnblocksPop(t *testing.T) {
	q := newSchedulingQueue(testingclock.NewFakeClock(time.Now()))
	done := make(chan bool)
	go func() {
		_, _, _, ok := q.pop()
		done <- ok
	}()
	time.Sleep(10 * time.Millisecond)
	q.close()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("pop returned a pod from an empty queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pop still blocked after close")
	}
}
