package kubelet

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestObjectCache: pods starting together share one GET; a change is
// read again once the TTL has passed; a missing object is remembered
// for the TTL too.
func TestObjectCache(t *testing.T) {
	cs := fake.NewSimpleClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"k": "v1"}})
	var gets atomic.Int32
	cs.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets.Add(1)
		return false, nil, nil
	})
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	a := newAPIObjects(cs).(*apiObjects)
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if cm, err := a.ConfigMap(ctx, "ns", "cm"); err != nil || cm.Data["k"] != "v1" {
				t.Errorf("ConfigMap: %v %v", cm, err)
			}
		})
	}
	wg.Wait()
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GETs for 20 readers at once, want 1", n)
	}

	cm, _ := cs.CoreV1().ConfigMaps("ns").Get(ctx, "cm", metav1.GetOptions{})
	cm.Data["k"] = "v2"
	cs.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{})
	if got, _ := a.ConfigMap(ctx, "ns", "cm"); got.Data["k"] != "v1" {
		t.Errorf("within the TTL: %q, want the cached v1", got.Data["k"])
	}
	mu.Lock()
	now = now.Add(objectTTL)
	mu.Unlock()
	if got, _ := a.ConfigMap(ctx, "ns", "cm"); got.Data["k"] != "v2" {
		t.Errorf("after the TTL: %q, want v2", got.Data["k"])
	}

	before := gets.Load()
	for range 3 {
		if _, err := a.ConfigMap(ctx, "ns", "missing"); !apierrors.IsNotFound(err) || err.Error() != `configmap "missing" not found` {
			t.Errorf("missing: %v", err)
		}
	}
	if n := gets.Load() - before; n != 1 {
		t.Errorf("%d GETs of a missing object within the TTL, want 1", n)
	}
}
