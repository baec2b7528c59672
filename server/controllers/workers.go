package controllers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// conflictRetry is how soon an item whose write met a conflict is
// synced again.
const conflictRetry = 100 * time.Millisecond

// runWorkers is every controller's loop: wait for the informers' caches,
// then let workers goroutines take items off the queue and process them,
// retrying failures with the queue's rate-limited backoff, until ctx ends.
func runWorkers[T comparable](ctx context.Context, queue workqueue.TypedRateLimitingInterface[T], synced []cache.InformerSynced,
	workers int, log *slog.Logger, process func(context.Context, T) error) {
	defer queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				item, quit := queue.Get()
				if quit {
					return
				}
				switch err := process(ctx, item); {
				case err == nil:
					queue.Forget(item)
				case apierrors.IsConflict(err):
					// A conflict only means the cache was behind: routine,
					// and no reason to back off further and further (under
					// load a run of them would otherwise park the item for
					// many seconds). Try again shortly.
					log.Debug("sync met a conflict; retrying", "item", item, "err", err)
					queue.Forget(item)
					queue.AddAfter(item, conflictRetry)
				default:
					log.Warn("sync failed; retrying", "item", item, "err", err)
					queue.AddRateLimited(item)
				}
				queue.Done(item)
			}
		}()
	}
	wg.Wait()
}

// onAll is an informer event handler that calls fn with the object of
// every add, update (the new object) and delete.
func onAll(fn func(obj any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: fn, UpdateFunc: func(_, obj any) { fn(obj) }, DeleteFunc: fn}
}

// deletedObject is an event handler's object as a T, out of the
// tombstone (cache.DeletedFinalStateUnknown) an informer hands to delete
// handlers when it missed the deletion itself; ok is false for anything
// else.
func deletedObject[T any](obj any) (T, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	t, ok := obj.(T)
	return t, ok
}

// enqueueController returns an event handler that queues the key
// (namespace/name) of the object's controller when it is of kind: how a
// workload controller hears of what it owns changing.
func enqueueController(queue workqueue.TypedInterface[string], kind string) func(obj any) {
	return func(obj any) {
		m, ok := deletedObject[metav1.Object](obj)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.Kind == kind {
			queue.Add(m.GetNamespace() + "/" + ref.Name)
		}
	}
}
