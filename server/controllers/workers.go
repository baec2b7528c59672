package controllers

import (
	"context"
	"log/slog"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

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
				if err := process(ctx, item); err != nil {
					// A conflict only means the cache was behind: routine.
					level := slog.LevelWarn
					if apierrors.IsConflict(err) {
						level = slog.LevelDebug
					}
					log.Log(ctx, level, "sync failed; retrying", "item", item, "err", err)
					queue.AddRateLimited(item)
				} else {
					queue.Forget(item)
				}
				queue.Done(item)
			}
		}()
	}
	wg.Wait()
}
