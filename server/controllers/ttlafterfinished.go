package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// The TTL-after-finished controller deletes a finished Job (Complete or
// Failed) ttlSecondsAfterFinished after it finished (the time of that
// condition), as upstream's, and its pods with it: the deletion propagates
// in the foreground, as upstream's (the Job stays, deleting, until the
// garbage collector has taken its pods). Before deleting it reads the Job again from the
// API, in case its TTL changed, and deletes only that Job (by UID). A
// finish time ahead of the clock is a skew it waits out.

type ttlAfterFinished struct {
	cs        kubernetes.Interface
	jobLister batchlisters.JobLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
	clock     clock.WithDelayedExecution
	wake      *wakeups
}

func newTTLAfterFinished(cs kubernetes.Interface, f informerSet, log *slog.Logger, clk clock.WithTickerAndDelayedExecution) controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	jobInf := f.Batch().V1().Jobs()
	c := &ttlAfterFinished{
		cs: cs, jobLister: jobInf.Lister(),
		synced: []cache.InformerSynced{jobInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete"}),
		log: log.With("controller", "ttlafterfinished"), clock: clk,
	}
	c.wake = newWakeups(clk, c.queue.Add)
	enqueue := func(obj any) {
		if j, ok := obj.(*batchv1.Job); ok && j.DeletionTimestamp == nil && needsCleanup(j) {
			c.queue.Add(j.Namespace + "/" + j.Name)
		}
	}
	f.addEventHandler(jobInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.wake.forget(key)
			}
		},
	})
	return c
}

func (c *ttlAfterFinished) name() string { return "ttlafterfinished" }

func (c *ttlAfterFinished) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

// needsCleanup: a finished Job with a TTL.
func needsCleanup(j *batchv1.Job) bool {
	done, _ := jobFinished(j)
	return j.Spec.TTLSecondsAfterFinished != nil && done
}

func (c *ttlAfterFinished) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.wake.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.expired(key, job); err != nil || !expired {
		return err
	}
	// The cache may be stale: the TTL may have changed, or the Job been
	// replaced. Decide again on the Job the API has.
	fresh, err := c.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.expired(key, fresh); err != nil || !expired {
		return err
	}
	fg := metav1.DeletePropagationForeground
	err = c.cs.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &fresh.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or another Job by that name now
	}
	if err != nil {
		return fmt.Errorf("delete job %s after its TTL: %w", key, err)
	}
	c.log.Debug("deleted a finished job after its TTL", "job", key)
	return nil
}

// expired tells whether job's TTL has run out; if it has not, it
// schedules another look for when it will.
func (c *ttlAfterFinished) expired(key string, job *batchv1.Job) (bool, error) {
	if job.DeletionTimestamp != nil || !needsCleanup(job) {
		return false, nil
	}
	var finishedAt time.Time
	for _, cond := range job.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			finishedAt = cond.LastTransitionTime.Time
			break
		}
	}
	if finishedAt.IsZero() {
		return false, fmt.Errorf("unable to find the time when the Job %s finished", key)
	}
	now := c.clock.Now()
	if finishedAt.After(now) {
		c.log.Info("the job finished in the future: the clocks are skewed; the TTL counts from that time", "job", key, "finished", finishedAt)
	}
	left := finishedAt.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second).Sub(now)
	if left > 0 {
		c.wake.after(key, left)
		return false, nil
	}
	return true, nil
}
