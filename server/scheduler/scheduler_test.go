package scheduler

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// The whole scheduler over a fake clientset: a binding the API refuses
// is taken back from the cache, reported as upstream does, and tried
// again after its backoff.
func TestSchedulerRetriesFailedBinding(t *testing.T) {
	pod := testPod("p", "100m")
	pod.UID = "p-uid"
	cs := fake.NewClientset(testNode("a", "4"), pod)
	var calls atomic.Int32
	cs.PrependReactor("create", "pods", func(action clienttesting.Action) (bool, runtime.Object, error) {
		create, ok := action.(clienttesting.CreateAction)
		if !ok || action.GetSubresource() != "binding" {
			return false, nil, nil
		}
		if calls.Add(1) == 1 {
			return true, nil, apierrors.NewInternalError(errString("the store is down"))
		}
		b := create.GetObject().(*corev1.Binding)
		obj, err := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		p.Spec.NodeName = b.Target.Name
		return true, nil, cs.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), p, b.Namespace)
	})
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := record.NewFakeRecorder(100)
	s := New(cs, f, nil, rec, nil)
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() { cancel(); <-done; f.Shutdown() }()

	var events []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-rec.Events:
			events = append(events, e)
		case <-deadline:
			t.Fatalf("events %q", events)
		}
		if strings.HasPrefix(events[len(events)-1], "Normal Scheduled") {
			break
		}
	}
	want := []string{
		`Warning FailedScheduling running Bind plugin "DefaultBinder": Internal error occurred: the store is down`,
		"Normal Scheduled Successfully assigned default/p to a",
	}
	if len(events) != 2 || events[0] != want[0] || events[1] != want[1] {
		t.Fatalf("events %q\nwant %q", events, want)
	}
	got, err := cs.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil || got.Spec.NodeName != "a" {
		t.Fatalf("pod %v %v", got.Spec.NodeName, err)
	}
	var cond *corev1.PodCondition
	for i := range got.Status.Conditions {
		if got.Status.Conditions[i].Type == corev1.PodScheduled {
			cond = &got.Status.Conditions[i]
		}
	}
	if cond == nil || cond.Reason != corev1.PodReasonSchedulerError || cond.Status != corev1.ConditionFalse {
		t.Fatalf("PodScheduled %+v", cond)
	}
	// The cache has the pod once, on a.
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	if st := s.cache.pods["default/p"]; st == nil || st.node != "a" || len(s.cache.nodes["a"].pods) != 1 {
		t.Fatalf("cache %+v", st)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
