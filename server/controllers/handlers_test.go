package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// calls records the event handlers' calls in the order they come.
type calls struct {
	mu  sync.Mutex
	got []string
}

func (c *calls) handler(name string) cache.ResourceEventHandler {
	record := func(op string, obj any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.got = append(c.got, fmt.Sprintf("%s %s %s", name, op, obj.(*corev1.Pod).Name))
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			op := "add"
			if isInInitialList {
				op = "add(initial)"
			}
			record(op, obj)
		},
		UpdateFunc: func(_, obj any) { record("update", obj) },
		DeleteFunc: func(obj any) { record("delete", obj) },
	}
}

// wait returns the calls once there are n, failing the test after 10 s.
func (c *calls) wait(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		got := slices.Clone(c.got)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("%d calls, want %d: %q", len(c.got), n, c.got)
	return nil
}

func (c *calls) reset() {
	c.mu.Lock()
	c.got = nil
	c.mu.Unlock()
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
}

func TestEventHandlers(t *testing.T) {
	cs := fake.NewClientset(testPod("old"))
	// The fake client's watch has no resourceVersion: what is written
	// between the informer's list and its watch is lost, so the test
	// writes only once the watch is there.
	watching := make(chan struct{})
	cs.PrependWatchReactor("pods", func(action clienttesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(action.GetResource(), action.GetNamespace(), action.(clienttesting.WatchActionImpl).ListOptions)
		if err == nil {
			close(watching)
		}
		return true, w, err
	})
	f := informerSet{informers.NewSharedInformerFactory(cs, 0), &eventHandlers{}}
	// Each Informer() call gives another value for the one informer, as
	// in the controllers, which call it each for itself.
	pods := func() cache.SharedIndexInformer { return f.Core().V1().Pods().Informer() }
	nodes := f.Core().V1().Nodes().Informer()
	var c calls
	f.addEventHandler(pods(), c.handler("a"))
	f.addEventHandler(nodes, cache.ResourceEventHandlerFuncs{}) // a second informer, with one handler
	f.addEventHandler(pods(), c.handler("b"))
	f.addEventHandler(pods(), c.handler("c"))
	if n := len(f.handlers.informers); n != 2 {
		t.Fatalf("handlers kept for %d informers, want 2", n)
	}
	if err := f.handlers.register(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	defer func() { cancel(); f.Shutdown() }()
	if !cache.WaitForCacheSync(ctx.Done(), pods().HasSynced, nodes.HasSynced) {
		t.Fatal("not synced")
	}
	<-watching

	// One event, every handler in the order added, before the next event.
	pc := cs.CoreV1().Pods("default")
	p, err := pc.Create(ctx, testPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"app": "web"}
	if _, err := pc.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a add(initial) old", "b add(initial) old", "c add(initial) old",
		"a add web", "b add web", "c add web",
		"a update web", "b update web", "c update web",
		"a delete web", "b delete web", "c delete web",
	}
	if got := c.wait(t, len(want)); !slices.Equal(got, want) {
		t.Errorf("calls\n%q\nwant\n%q", got, want)
	}

	// Added after register, a handler gets the informer's replay of what
	// it has, and the events after.
	c.reset()
	f.addEventHandler(pods(), c.handler("late"))
	if got, want := c.wait(t, 1), []string{"late add(initial) old"}; !slices.Equal(got, want) {
		t.Errorf("late handler's calls %q, want %q", got, want)
	}
	c.reset()
	if err := pc.Delete(ctx, "old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := c.wait(t, 4)
	// The late handler has a listener of its own: its call may come
	// anywhere among the others'.
	shared := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s == "late delete old" })
	if want := []string{"a delete old", "b delete old", "c delete old"}; len(got) != 4 || !slices.Equal(shared, want) {
		t.Errorf("calls %q, want %q and the late handler's", got, want)
	}
}
