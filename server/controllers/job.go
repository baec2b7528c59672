package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// The Job controller runs each Job's pods to completion as upstream's
// batch/v1 controller does. It creates pods from the template, owned by the
// Job and named <job>-<random> (<job>-<index>-<random> for an Indexed Job,
// whose pods also carry their completion index as an annotation, a label,
// their hostname and the JOB_COMPLETION_INDEX variable), at most
// parallelism at a time and no more than the completions left. A failed pod
// is replaced after a delay that doubles with each failure in a row (10 s,
// 20 s... up to 10 min); one failure more than backoffLimit fails the Job
// (BackoffLimitExceeded), and so does running longer than
// activeDeadlineSeconds (DeadlineExceeded, its running pods deleted) or a
// podFailurePolicy FailJob rule; Ignore rules do not count a failure.
// suspend deletes the running pods and resume starts them again.
//
// Every pod carries the batch.kubernetes.io/job-tracking finalizer until
// the Job has counted it: a finished pod's UID goes first into
// status.uncountedTerminatedPods, then the finalizer comes off, then the
// UID moves into succeeded or failed, so that a pod is counted once even
// when it is deleted right after it ends. Pods whose Job is gone (deleted,
// or they were orphaned) lose the finalizer too.
//
// A Job that has met its completions first gets the SuccessCriteriaMet
// condition, and one that must fail gets FailureTarget (with the reason);
// Complete or Failed follow once no pod of it is still terminating, with
// completionTime for a success, as upstream since 1.31, and the Completed
// event or a warning with the failure's reason. The status also reports
// active, ready, terminating, succeeded, failed, startTime and, for Indexed
// Jobs, completedIndexes. Not done yet: backoffLimitPerIndex,
// maxFailedIndexes and successPolicy.

const (
	// jobSyncBatch delays the sync that pod events and status-only changes
	// cause, so that a burst of them makes one sync (upstream's
	// syncJobBatchPeriod).
	jobSyncBatch = time.Second
	// maxUncountedPods bounds status.uncountedTerminatedPods, about 20 KB
	// of UIDs, as upstream's.
	maxUncountedPods = 500
	// The delay before replacing a failed pod doubles from the first to
	// the second.
	defaultJobBackoff    = 10 * time.Second
	defaultJobMaxBackoff = 10 * time.Minute // upstream MaxJobPodFailureBackOff; its docs say 6 min
)

var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

type jobs struct {
	cs        kubernetes.Interface
	jobLister batchlisters.JobLister
	pods      corelisters.PodLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	// orphans are the keys of pods whose tracking finalizer no Job sync
	// will remove: their Job is gone or finished, or they have none.
	orphans    workqueue.TypedRateLimitingInterface[string]
	recorder   record.EventRecorder
	log        *slog.Logger
	clock      clock.WithTickerAndDelayedExecution
	wake       *wakeups
	expect     *expectations
	finalizers *uidExpectations
	backoff    *backoffStore
	// backoffBase and backoffMax bound the delay before a failed pod is
	// replaced.
	backoffBase, backoffMax time.Duration
	batch                   time.Duration
}

func newJobs(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger,
	clk clock.WithTickerAndDelayedExecution, backoff, maxBackoff time.Duration) controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if backoff <= 0 {
		backoff = defaultJobBackoff
	}
	if maxBackoff <= 0 {
		maxBackoff = defaultJobMaxBackoff
	}
	jobInf, podInf := f.Batch().V1().Jobs(), f.Core().V1().Pods()
	c := &jobs{
		cs: cs, jobLister: jobInf.Lister(), pods: podInf.Lister(),
		synced: []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job"}),
		orphans: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job_orphan_pod"}),
		recorder: recorder, log: log.With("controller", "job"), clock: clk,
		expect: newExpectations(), finalizers: newUIDExpectations(), backoff: newBackoffStore(),
		backoffBase: backoff, backoffMax: maxBackoff, batch: jobSyncBatch,
	}
	c.wake = newWakeups(clk, c.queue.Add)
	f.addEventHandler(jobInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.enqueue(obj, 0) },
		UpdateFunc: func(old, obj any) {
			o, n := old.(*batchv1.Job), obj.(*batchv1.Job)
			// A spec change is synced at once, status changes in a batch.
			delay := c.batch
			if n.Generation != o.Generation {
				delay = 0
			}
			c.enqueue(n, delay)
			if done, _ := jobFinished(n); done {
				c.releaseFinalizers(n)
			}
		},
		DeleteFunc: func(obj any) {
			c.enqueue(obj, 0)
			if j, ok := deletedObject[*batchv1.Job](obj); ok {
				c.releaseFinalizers(j)
			}
		},
	})
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: func(obj any) {
			if pod, ok := deletedObject[*corev1.Pod](obj); ok {
				c.podGone(pod, true)
			}
		},
	})
	return c
}

func (c *jobs) name() string { return "job" }

func (c *jobs) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runWorkers(ctx, c.orphans, c.synced, 1, c.log, c.syncOrphan)
	}()
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
	wg.Wait()
}

func (c *jobs) enqueue(obj any, delay time.Duration) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	if delay > 0 {
		c.queue.AddAfter(key, delay)
	} else {
		c.queue.Add(key)
	}
}

func (c *jobs) enqueueOrphan(pod *corev1.Pod) {
	c.orphans.Add(pod.Namespace + "/" + pod.Name)
}

// resolve is the Job ref names, from the cache, if it is still that Job.
func (c *jobs) resolve(namespace string, ref *metav1.OwnerReference) *batchv1.Job {
	if !isJobRef(ref) {
		return nil
	}
	job, err := c.jobLister.Jobs(namespace).Get(ref.Name)
	if err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

func isJobRef(ref *metav1.OwnerReference) bool {
	return ref != nil && ref.Kind == jobKind.Kind && ref.APIVersion == jobKind.GroupVersion().String()
}

// selecting lists the Jobs whose selector matches pod: one may adopt it.
func (c *jobs) selecting(pod *corev1.Pod) []*batchv1.Job {
	all, err := c.jobLister.Jobs(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*batchv1.Job
	for _, j := range all {
		if sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, j)
		}
	}
	return out
}

func (c *jobs) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Already being deleted when first seen (a restart): not a creation.
		c.podGone(pod, false)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		job := c.resolve(pod.Namespace, ref)
		if job == nil {
			if isJobRef(ref) && hasTrackingFinalizer(pod) {
				c.enqueueOrphan(pod) // syncOrphan looks the Job up again
			}
			return
		}
		c.expect.observed(jobKey(job), 1, 0)
		c.enqueue(job, c.batch)
		return
	}
	if hasTrackingFinalizer(pod) {
		c.enqueueOrphan(pod)
	}
	for _, j := range c.selecting(pod) {
		c.enqueue(j, c.batch)
	}
}

func (c *jobs) updatePod(old, obj any) {
	o, n := old.(*corev1.Pod), obj.(*corev1.Pod)
	if o.ResourceVersion == n.ResourceVersion {
		return
	}
	if n.DeletionTimestamp != nil {
		// A graceful deletion shows as an update: count it then, and
		// replace the pod without waiting for the kubelet.
		c.podGone(n, false)
		return
	}
	finalizerRemoved := !hasTrackingFinalizer(n)
	nref, oref := metav1.GetControllerOf(n), metav1.GetControllerOf(o)
	refChanged := !equality.Semantic.DeepEqual(nref, oref)
	if refChanged && oref != nil {
		if job := c.resolve(o.Namespace, oref); job != nil {
			if finalizerRemoved {
				c.finalizers.observed(jobKey(job), n.UID)
			}
			c.enqueue(job, c.batch)
		}
	}
	if nref != nil {
		job := c.resolve(n.Namespace, nref)
		if job == nil {
			if isJobRef(nref) && hasTrackingFinalizer(n) {
				c.enqueueOrphan(n)
			}
			return
		}
		if finalizerRemoved {
			c.finalizers.observed(jobKey(job), n.UID)
		}
		c.enqueue(job, c.batch)
		return
	}
	if hasTrackingFinalizer(n) {
		c.enqueueOrphan(n)
	}
	if refChanged || !equality.Semantic.DeepEqual(o.Labels, n.Labels) {
		for _, j := range c.selecting(n) {
			c.enqueue(j, c.batch)
		}
	}
}

// podGone handles a pod being deleted (final: it is gone from the store).
func (c *jobs) podGone(pod *corev1.Pod, final bool) {
	ref := metav1.GetControllerOf(pod)
	has := hasTrackingFinalizer(pod)
	if ref == nil {
		if has {
			c.enqueueOrphan(pod)
		}
		return
	}
	job := c.resolve(pod.Namespace, ref)
	if done, _ := jobFinished(job); job == nil || done {
		if has && isJobRef(ref) {
			c.enqueueOrphan(pod) // no sync of its Job will remove the finalizer
		}
		return
	}
	key := jobKey(job)
	c.expect.observed(key, 0, 1)
	if final || !has {
		c.finalizers.observed(key, pod.UID)
	}
	c.enqueue(job, c.batch)
}

// releaseFinalizers queues the pods of a Job that is gone or finished
// that still carry the tracking finalizer.
func (c *jobs) releaseFinalizers(job *batchv1.Job) {
	pods, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if metav1.IsControlledBy(p, job) && hasTrackingFinalizer(p) {
			c.enqueueOrphan(p)
		}
	}
}

// syncOrphan removes the tracking finalizer from a pod no Job will count:
// one without a controller, or whose Job is gone or finished.
func (c *jobs) syncOrphan(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !hasTrackingFinalizer(pod) {
		return err
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if !isJobRef(ref) {
			return nil // another kind's pod: its finalizers are not ours
		}
		job := c.resolve(ns, ref)
		if job == nil {
			// Not in the cache: ask the API, since a new Job's pods can
			// reach this cache before the Job does.
			live, err := c.cs.BatchV1().Jobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			switch {
			case err == nil && live.UID == ref.UID:
				job = live
			case err != nil && !apierrors.IsNotFound(err):
				return err
			}
		}
		if job != nil {
			if managedElsewhere(job) {
				return nil
			}
			if done, _ := jobFinished(job); !done {
				return nil // the Job's own sync counts the pod
			}
		}
	}
	_, err = c.cs.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, removeFinalizerPatch(), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove the job tracking finalizer from pod %s: %w", key, err)
	}
	return nil
}

// jobState is what one sync learns and decides about a Job.
type jobState struct {
	key  string
	job  *batchv1.Job
	pods []*corev1.Pod
	// active pods: neither finished nor being deleted.
	active             []*corev1.Pod
	ready, terminating int32
	// succeeded and failed count the pods already counted, those in
	// uncountedTerminatedPods and those that finished since.
	succeeded, failed int32
	// finished is the condition the Job is to get: SuccessCriteriaMet or
	// FailureTarget first, then Complete or Failed.
	finished *batchv1.JobCondition
	// prevSucceeded and succeededIdx are an Indexed Job's succeeded
	// indexes, before this sync and with it.
	prevSucceeded, succeededIdx         sets.Set[int]
	uncountedSucceeded, uncountedFailed sets.Set[types.UID]
	// expectedRm are pods whose finalizer removal this cache has not seen.
	expectedRm sets.Set[types.UID]
	backoff    jobBackoff
}

func (c *jobs) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.jobLister.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expect.forget(key)
		c.finalizers.forget(key)
		c.backoff.forget(key)
		c.wake.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if managedElsewhere(shared) {
		return nil
	}
	if done, _ := jobFinished(shared); done {
		c.backoff.forget(key)
		c.wake.forget(key)
		return nil
	}
	if m := shared.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		c.recorder.Event(shared, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return nil
	}
	job := shared.DeepCopy()
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	// Expectations first: a pod created after this check is only missed
	// until the next sync.
	satisfied := c.expect.satisfied(key)
	pods, err := c.claim(ctx, job)
	if err != nil {
		return err
	}
	s := &jobState{
		key: key, job: job, pods: pods, expectedRm: c.finalizers.get(key),
		uncountedSucceeded: sets.New(job.Status.UncountedTerminatedPods.Succeeded...),
		uncountedFailed:    sets.New(job.Status.UncountedTerminatedPods.Failed...),
	}
	for _, p := range pods {
		if isActive(p) {
			s.active = append(s.active, p)
			if podReady(p) {
				s.ready++
			}
		}
		if isTerminating(p) {
			s.terminating++
		}
	}
	active := int32(len(s.active))
	newSucceeded, newFailed := s.newlyFinished()
	s.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(s.uncountedSucceeded.Len())
	s.failed = job.Status.Failed + countedFailures(job, newFailed) + int32(s.uncountedFailed.Len())
	now := c.clock.Now()
	if job.Status.StartTime == nil && !jobSuspended(job) {
		start := metav1.NewTime(now)
		job.Status.StartTime = &start
	}
	s.backoff = c.backoff.next(key, newSucceeded, newFailed)

	// A Job that met its success criteria stays on that course; otherwise
	// a recorded failure target or a FailJob rule decides.
	if cond := jobCondition(job, batchv1.JobSuccessCriteriaMet); cond != nil && cond.Status == corev1.ConditionTrue {
		s.finished = cond
	}
	if s.finished == nil {
		if ft := jobCondition(job, batchv1.JobFailureTarget); ft != nil && ft.Status == corev1.ConditionTrue {
			s.finished = newJobCondition(batchv1.JobFailed, ft.Reason, ft.Message, now)
		} else if msg := podFailurePolicyFailure(job, pods); msg != "" {
			s.finished = newJobCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, msg, now)
		}
	}
	if s.finished == nil {
		switch {
		case s.failed > backoffLimit(job) || pastBackoffLimitOnFailure(job, pods):
			s.finished = newJobCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", now)
		case c.pastActiveDeadline(job):
			s.finished = newJobCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", now)
		case job.Spec.ActiveDeadlineSeconds != nil && !jobSuspended(job):
			c.wake.after(key, time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second-c.clock.Since(job.Status.StartTime.Time))
		}
	}
	if isIndexedJob(job) {
		s.prevSucceeded, s.succeededIdx = succeededIndexes(job, pods)
		s.succeeded = int32(s.succeededIdx.Len())
	}

	var manageErr error
	suspendChanged := false
	if s.finished != nil {
		// Failing (or done): stop what runs; the finalizers stay so that
		// the pods are counted as they go.
		deletedReady, deleted, err := c.deleteActive(ctx, job, s.active)
		if deleted != active || !satisfied {
			// Not finished while pods may remain that this cache does not
			// show yet.
			s.finished = nil
		}
		active -= deleted
		s.terminating += deleted
		s.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			active, manageErr = c.manage(ctx, s)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			// Without completions the first success ends the Job once the
			// other pods are done.
			complete = s.succeeded > 0 && active == 0
		} else {
			complete = s.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			s.finished = newJobCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", now)
		case managed && jobSuspended(job):
			if setJobCondition(job, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now) {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			if setJobCondition(job, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now) {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts from the resumption.
				start := metav1.NewTime(now)
				job.Status.StartTime = &start
			}
		}
	}
	needsFlush := suspendChanged || active != job.Status.Active || !ptr.Equal(&s.ready, job.Status.Ready) ||
		!ptr.Equal(&s.terminating, job.Status.Terminating) || !job.Status.StartTime.Equal(shared.Status.StartTime)
	job.Status.Active = active
	job.Status.Ready = ptr.To(s.ready)
	job.Status.Terminating = ptr.To(s.terminating)
	if err := c.track(ctx, s, needsFlush); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // the Job is gone: nothing left to track
		}
		return fmt.Errorf("track the status of job %s: %w", key, err)
	}
	return manageErr
}

// newlyFinished are the pods that succeeded or failed since the status
// last counted: they still carry the finalizer and are not yet in
// uncountedTerminatedPods.
func (s *jobState) newlyFinished() (succeeded, failed []*corev1.Pod) {
	indexed := isIndexedJob(s.job)
	for _, p := range s.pods {
		if !hasTrackingFinalizer(p) || s.expectedRm.Has(p.UID) {
			continue
		}
		if indexed {
			if ix := completionIndex(p); ix < 0 || ix >= int(*s.job.Spec.Completions) {
				continue
			}
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !s.uncountedSucceeded.Has(p.UID):
			succeeded = append(succeeded, p)
		case isPodFailed(p, s.job) && !s.uncountedFailed.Has(p.UID):
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// claim returns the pods job owns after adopting matching orphans (with
// the tracking finalizer) and releasing owned pods that stopped matching.
func (c *jobs) claim(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("the selector of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var owned []*corev1.Pod
	var adoptable *bool
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		matches := !sel.Empty() && sel.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == job.UID && matches:
			owned = append(owned, p)
		case ref != nil && ref.UID == job.UID && job.DeletionTimestamp == nil:
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"$deleteFromPrimitiveList/finalizers":[%q],"uid":%q}}`,
				job.UID, batchv1.JobTrackingFinalizer, p.UID)
			if _, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("release pod %s: %w", p.Name, err)
			}
		case ref == nil && matches && p.DeletionTimestamp == nil && job.DeletionTimestamp == nil:
			if adoptable == nil {
				// Adopt only into a Job that is not being deleted: ask the
				// API, the cache may not show the deletion yet.
				fresh, err := c.cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
				adoptable = ptr.To(err == nil && fresh.UID == job.UID && fresh.DeletionTimestamp == nil)
			}
			if !*adoptable {
				continue
			}
			refJSON, _ := json.Marshal(jobControllerRef(job))
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"finalizers":[%q],"uid":%q}}`, refJSON, batchv1.JobTrackingFinalizer, p.UID)
			adopted, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("adopt pod %s: %w", p.Name, err)
			}
			owned = append(owned, adopted)
		}
	}
	return owned, nil
}

func jobControllerRef(job *batchv1.Job) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: jobKind.GroupVersion().String(), Kind: jobKind.Kind, Name: job.Name, UID: job.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
}

// manage creates or deletes pods to run what the Job wants now, and
// returns how many are active after.
func (c *jobs) manage(ctx context.Context, s *jobState) (int32, error) {
	job := s.job
	active := int32(len(s.active))
	if jobSuspended(job) {
		victims := activePodsForRemoval(job, s.active, len(s.active))
		c.expect.expect(s.key, 0, len(victims))
		ready, deleted, err := c.deletePods(ctx, job, s.key, victims)
		s.ready -= ready
		s.terminating += deleted
		return active - deleted, err
	}
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	var want int32
	switch {
	case job.Spec.Completions == nil && s.succeeded > 0:
		want = active // one succeeded: let the others finish, start none
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = max(min(*job.Spec.Completions-s.succeeded, parallelism), 0)
	}
	victims := activePodsForRemoval(job, s.active, int(max(active-want, 0)))
	if len(victims) > burstReplicas {
		victims = victims[:burstReplicas]
	}
	if len(victims) > 0 {
		// Deleting and creating in one sync could fight; deleting wins.
		c.expect.expect(s.key, 0, len(victims))
		ready, deleted, err := c.deletePods(ctx, job, s.key, victims)
		s.ready -= ready
		s.terminating += deleted
		return active - deleted, err
	}
	var terminating int32
	if onlyReplaceFailedPods(job) {
		terminating = s.terminating // replacements wait for these to end
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if wait := s.backoff.remaining(c.clock, c.backoffBase, c.backoffMax); wait > 0 {
		c.wake.after(s.key, wait)
		return active, nil
	}
	diff = min(diff, burstReplicas)
	var indexes []int
	if isIndexedJob(job) {
		indexes = firstPendingIndexes(s, int(diff), int(*job.Spec.Completions))
		diff = int32(len(indexes))
		if diff == 0 {
			return active, nil
		}
	}
	tmpl := job.Spec.Template.DeepCopy()
	if isIndexedJob(job) {
		addCompletionIndexEnv(tmpl)
	}
	if !sets.New(tmpl.Finalizers...).Has(batchv1.JobTrackingFinalizer) {
		tmpl.Finalizers = append(tmpl.Finalizers, batchv1.JobTrackingFinalizer)
	}
	c.expect.expect(s.key, int(diff), 0)
	var next, created atomic.Int32
	// Slow start, as upstream: 1, 2, 4... pods at once, stopping at the
	// first error.
	tried, err := slowStart(int(diff), func() error {
		ix := -1
		if indexes != nil {
			ix = indexes[next.Add(1)-1]
		}
		if err := c.createPod(ctx, job, tmpl, ix); err != nil {
			c.expect.observed(s.key, 1, 0)
			return err
		}
		created.Add(1)
		return nil
	})
	if skipped := int(diff) - tried; skipped > 0 {
		c.expect.observed(s.key, skipped, 0)
	}
	return active + created.Load(), err
}

func (c *jobs) createPod(ctx context.Context, job *batchv1.Job, tmpl *corev1.PodTemplateSpec, index int) error {
	t := tmpl
	generateName := job.Name + "-"
	if index >= 0 {
		t = tmpl.DeepCopy()
		ix := strconv.Itoa(index)
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		if t.Labels == nil {
			t.Labels = map[string]string{}
		}
		t.Annotations[batchv1.JobCompletionIndexAnnotation] = ix
		t.Labels[batchv1.JobCompletionIndexAnnotation] = ix
		t.Spec.Hostname = job.Name + "-" + ix
		generateName = indexedGenerateName(job.Name, index)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{jobControllerRef(job)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	created, err := c.cs.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.IsForbidden(err) || !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return fmt.Errorf("create a pod for job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.Name)
	return nil
}

// indexedGenerateName is <job>-<index>-, shortened to leave room for the
// random suffix.
func indexedGenerateName(job string, index int) string {
	const maxGenerated = 63 - 5
	suffix := "-" + strconv.Itoa(index) + "-"
	if len(job)+len(suffix) > maxGenerated {
		job = job[:maxGenerated-len(suffix)]
	}
	return job + suffix
}

// addCompletionIndexEnv gives every container JOB_COMPLETION_INDEX from
// the pod's index label, as upstream's controller does.
func addCompletionIndexEnv(t *corev1.PodTemplateSpec) {
	add := func(ctr *corev1.Container) {
		for _, e := range ctr.Env {
			if e.Name == "JOB_COMPLETION_INDEX" {
				return
			}
		}
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "JOB_COMPLETION_INDEX", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation)},
		}})
	}
	for i := range t.Spec.InitContainers {
		add(&t.Spec.InitContainers[i])
	}
	for i := range t.Spec.Containers {
		add(&t.Spec.Containers[i])
	}
}

// deletePods deletes pods the Job no longer wants (too many, or
// suspended) after removing their finalizer, so that they are not counted
// as failures. It returns how many ready pods and how many pods it
// deleted.
func (c *jobs) deletePods(ctx context.Context, job *batchv1.Job, key string, pods []*corev1.Pod) (int32, int32, error) {
	return c.parallelDelete(ctx, job, pods, func(p *corev1.Pod) error {
		if hasTrackingFinalizer(p) {
			if _, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, removeFinalizerPatch(), metav1.PatchOptions{}); err != nil {
				c.expect.observed(key, 0, 1)
				return fmt.Errorf("remove the tracking finalizer from pod %s: %w", p.Name, err)
			}
		}
		if err := c.deletePod(ctx, job, p); err != nil {
			c.expect.observed(key, 0, 1)
			return err
		}
		return nil
	})
}

// deleteActive deletes the running pods of a Job that is finishing,
// keeping their finalizers: they are counted as failed as they go.
func (c *jobs) deleteActive(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	return c.parallelDelete(ctx, job, pods, func(p *corev1.Pod) error { return c.deletePod(ctx, job, p) })
}

func (c *jobs) parallelDelete(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod, del func(*corev1.Pod) error) (int32, int32, error) {
	var ready, deleted atomic.Int32
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := del(p)
			if err != nil && !apierrors.IsNotFound(err) {
				errs <- err
				return
			}
			deleted.Add(1)
			if podReady(p) {
				ready.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return ready.Load(), deleted.Load(), <-errs
}

func (c *jobs) deletePod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	err := c.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s: %w", p.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	return nil
}

// track counts the finished pods into the status in upstream's three
// steps (their UIDs into uncountedTerminatedPods, the finalizers off, the
// UIDs into the counters), then sets Complete or Failed once nothing is
// left uncounted or terminating.
func (c *jobs) track(ctx context.Context, s *jobState, needsFlush bool) error {
	job := s.job
	indexed := isIndexedJob(job)
	if indexed {
		sort.SliceStable(s.pods, func(i, j int) bool { return completionIndex(s.pods[i]) < completionIndex(s.pods[j]) })
	}
	withFinalizer := sets.New[types.UID]()
	for _, p := range s.pods {
		if hasTrackingFinalizer(p) && !s.expectedRm.Has(p.UID) {
			withFinalizer.Insert(p.UID)
		}
	}
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	uncounted := job.Status.UncountedTerminatedPods
	var release []*corev1.Pod
	var newIdx []int
	capped := false
	for _, p := range s.pods {
		if !hasTrackingFinalizer(p) || s.expectedRm.Has(p.UID) {
			continue // counted by an earlier sync
		}
		failed := isPodFailed(p, job)
		if job.DeletionTimestamp == nil && s.finished == nil && p.Status.Phase != corev1.PodSucceeded && !failed {
			continue // still running: the finalizer stays
		}
		release = append(release, p)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !s.uncountedFailed.Has(p.UID):
			if indexed {
				if ix := completionIndex(p); ix >= 0 && ix < int(*job.Spec.Completions) && !s.prevSucceeded.Has(ix) {
					newIdx = append(newIdx, ix)
					needsFlush = true
				}
			} else if !s.uncountedSucceeded.Has(p.UID) {
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
				needsFlush = true
			}
		case failed || (s.finished != nil && s.finished.Type != batchv1.JobSuccessCriteriaMet):
			// When the Job fails, every pod that did not succeed failed.
			ix := completionIndex(p)
			if !s.uncountedFailed.Has(p.UID) && (!indexed || (ix >= 0 && ix < int(*job.Spec.Completions))) {
				if _, counts, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); counts {
					uncounted.Failed = append(uncounted.Failed, p.UID)
					needsFlush = true
				}
			}
		}
		if len(newIdx)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			// Enough for one status; the status update brings the rest.
			capped = true
			break
		}
	}
	if indexed {
		s.succeededIdx.Insert(newIdx...)
		str := formatIndexes(s.succeededIdx)
		if str != job.Status.CompletedIndexes {
			needsFlush = true
		}
		job.Status.Succeeded = int32(s.succeededIdx.Len())
		job.Status.CompletedIndexes = str
	}
	now := c.clock.Now()
	if s.finished != nil && s.finished.Type == batchv1.JobFailureTarget {
		// The failure is recorded before the finalizers come off; Failed
		// follows when the pods are gone.
		setJobCondition(job, batchv1.JobFailureTarget, corev1.ConditionTrue, s.finished.Reason, s.finished.Message, now)
		needsFlush = true
		s.finished = newJobCondition(batchv1.JobFailed, s.finished.Reason, s.finished.Message, now)
	}
	if s.finished != nil && s.finished.Type == batchv1.JobSuccessCriteriaMet {
		if setJobCondition(job, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, s.finished.Reason, s.finished.Message, now) {
			needsFlush = true
		}
		s.finished = newJobCondition(batchv1.JobComplete, s.finished.Reason, s.finished.Message, now)
	}

	var err error
	if needsFlush {
		if job, err = c.updateStatus(ctx, job); err != nil {
			return fmt.Errorf("add uncounted pods to the status: %w", err)
		}
		s.job = job
		c.backoff.set(s.backoff)
		needsFlush = false
	}
	var rmErr error
	if len(release) > 0 {
		var ok []bool
		ok, rmErr = c.removeFinalizers(ctx, s.key, release)
		for i, p := range release {
			if ok[i] {
				withFinalizer.Delete(p.UID)
			}
		}
	}
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil {
		if needsFlush {
			if _, err := c.updateStatus(ctx, job); err != nil {
				return fmt.Errorf("count the pods whose finalizer is off: %w", err)
			}
		}
		return rmErr
	}
	finished := !capped && c.enactFinished(s)
	if finished {
		needsFlush = true
	}
	if needsFlush {
		if job, err = c.updateStatus(ctx, job); err != nil {
			return fmt.Errorf("count the pods whose finalizer is off: %w", err)
		}
		s.job = job
		if finished {
			c.recordFinished(job, s.finished)
		}
	}
	return nil
}

// countUncounted moves the uncounted pods that no longer carry the
// finalizer into succeeded and failed, and reports whether it moved any.
func countUncounted(st *batchv1.JobStatus, withFinalizer sets.Set[types.UID]) bool {
	u := st.UncountedTerminatedPods
	if u == nil {
		return false
	}
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(uid) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		st.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded, changed = left, true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		st.Failed += int32(len(u.Failed) - len(left))
		u.Failed, changed = left, true
	}
	return changed
}

// removeFinalizers takes the tracking finalizer off pods, and reports for
// each whether it is off (or the pod gone).
func (c *jobs) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) ([]bool, error) {
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	c.finalizers.expect(key, uids...)
	ok := make([]bool, len(pods))
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, removeFinalizerPatch(), metav1.PatchOptions{})
			if err != nil {
				// No update will show the finalizer gone.
				c.finalizers.observed(key, p.UID)
				if !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("remove the tracking finalizer from pod %s: %w", p.Name, err)
					return
				}
			}
			ok[i] = true
		}()
	}
	wg.Wait()
	close(errs)
	return ok, <-errs
}

// enactFinished sets Complete or Failed once no pod is left uncounted or
// terminating, and reports whether it did.
func (c *jobs) enactFinished(s *jobState) bool {
	if s.finished == nil {
		return false
	}
	job := s.job
	if u := job.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		return false
	}
	if s.terminating > 0 {
		return false
	}
	now := c.clock.Now()
	setJobCondition(job, s.finished.Type, corev1.ConditionTrue, s.finished.Reason, s.finished.Message, now)
	if s.finished.Type == batchv1.JobComplete {
		job.Status.CompletionTime = ptr.To(metav1.NewTime(now))
	}
	return true
}

func (c *jobs) recordFinished(job *batchv1.Job, cond *batchv1.JobCondition) {
	if cond.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		return
	}
	c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
}

func (c *jobs) updateStatus(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return c.cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
}

func (c *jobs) pastActiveDeadline(job *batchv1.Job) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || jobSuspended(job) {
		return false
	}
	return c.clock.Since(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure the kubelet
// restarts failing containers in place, and their restarts count against
// backoffLimit.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodPending {
			for _, s := range p.Status.InitContainerStatuses {
				restarts += s.RestartCount
			}
			for _, s := range p.Status.ContainerStatuses {
				restarts += s.RestartCount
			}
		}
	}
	if limit := backoffLimit(job); limit > 0 {
		return restarts >= limit
	}
	return restarts > 0
}

func backoffLimit(job *batchv1.Job) int32 { return ptr.Deref(job.Spec.BackoffLimit, 6) }

func jobSuspended(job *batchv1.Job) bool { return ptr.Deref(job.Spec.Suspend, false) }

func isIndexedJob(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion
}

// managedElsewhere: spec.managedBy hands the Job to another controller.
func managedElsewhere(job *batchv1.Job) bool {
	return job.Spec.ManagedBy != nil && *job.Spec.ManagedBy != batchv1.JobControllerName
}

func jobKey(job *batchv1.Job) string { return job.Namespace + "/" + job.Name }

// jobFinished tells whether job has Complete or Failed, and which.
func jobFinished(job *batchv1.Job) (bool, batchv1.JobConditionType) {
	if job == nil {
		return false, ""
	}
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == t {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func newJobCondition(t batchv1.JobConditionType, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
}

// setJobCondition sets a condition, adding it only if its status is not
// False (no condition says as much), and reports whether anything changed.
func setJobCondition(job *batchv1.Job, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) bool {
	cond := newJobCondition(t, reason, message, now)
	cond.Status = status
	if cur := jobCondition(job, t); cur != nil {
		if cur.Status == status && cur.Reason == reason && cur.Message == message {
			return false
		}
		*cur = *cond
		return true
	}
	if status == corev1.ConditionFalse {
		return false
	}
	job.Status.Conditions = append(job.Status.Conditions, *cond)
	return true
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	for _, f := range p.Finalizers {
		if f == batchv1.JobTrackingFinalizer {
			return true
		}
	}
	return false
}

func removeFinalizerPatch() []byte {
	return []byte(fmt.Sprintf(`{"metadata":{"$deleteFromPrimitiveList/finalizers":[%q]}}`, batchv1.JobTrackingFinalizer))
}

// isTerminating: being deleted and not yet finished.
func isTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// onlyReplaceFailedPods: podReplacementPolicy Failed (the default with a
// podFailurePolicy) waits for a deleted pod to end before replacing it.
func onlyReplaceFailedPods(job *batchv1.Job) bool {
	return ptr.Deref(job.Spec.PodReplacementPolicy, "") == batchv1.Failed || job.Spec.PodFailurePolicy != nil
}

// isPodFailed: the pod failed, or (unless only failed pods are replaced)
// is being deleted before it succeeded.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// countedFailures is how many of the failed pods count against
// backoffLimit: not those an Ignore rule matches.
func countedFailures(job *batchv1.Job, failed []*corev1.Pod) int32 {
	n := int32(0)
	for _, p := range failed {
		if _, counts, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); counts {
			n++
		}
	}
	return n
}

// podFailurePolicyFailure is the message of the first failed pod that a
// FailJob rule matches, or "".
func podFailurePolicyFailure(job *batchv1.Job, pods []*corev1.Pod) string {
	if job.Spec.PodFailurePolicy == nil {
		return ""
	}
	for _, p := range pods {
		if isPodFailed(p, job) {
			if msg, _, _ := matchPodFailurePolicy(job.Spec.PodFailurePolicy, p); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// matchPodFailurePolicy applies the first rule that matches a failed pod:
// it returns a failure message for FailJob, whether the failure counts
// against backoffLimit (not for Ignore), and the action. FailIndex, which
// needs backoffLimitPerIndex, counts.
func matchPodFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) (string, bool, *batchv1.PodFailurePolicyAction) {
	if policy == nil {
		return "", true, nil
	}
	for i, rule := range policy.Rules {
		var failJob string
		switch {
		case rule.OnExitCodes != nil:
			cs := matchOnExitCodes(&p.Status, rule.OnExitCodes)
			if cs == nil {
				continue
			}
			failJob = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %v matching %v rule at index %d",
				cs.Name, p.Namespace, p.Name, cs.State.Terminated.ExitCode, rule.Action, i)
		case rule.OnPodConditions != nil:
			cond := matchOnPodConditions(&p.Status, rule.OnPodConditions)
			if cond == nil {
				continue
			}
			failJob = fmt.Sprintf("Pod %s/%s has condition %v matching %v rule at index %d", p.Namespace, p.Name, cond.Type, rule.Action, i)
		default:
			continue
		}
		action := rule.Action
		switch action {
		case batchv1.PodFailurePolicyActionIgnore:
			return "", false, &action
		case batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex:
			return "", true, &action
		case batchv1.PodFailurePolicyActionFailJob:
			return failJob, true, &action
		}
	}
	return "", true, nil
}

// matchOnExitCodes is the first terminated container (then init
// container) with a non-zero exit code the requirement matches.
func matchOnExitCodes(st *corev1.PodStatus, req *batchv1.PodFailurePolicyOnExitCodesRequirement) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{st.ContainerStatuses, st.InitContainerStatuses} {
		for i := range list {
			cs := &list[i]
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode == 0 {
				continue
			}
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := false
			for _, v := range req.Values {
				if v == cs.State.Terminated.ExitCode {
					in = true
				}
			}
			if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) || (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in) {
				return cs
			}
		}
	}
	return nil
}

func matchOnPodConditions(st *corev1.PodStatus, patterns []batchv1.PodFailurePolicyOnPodConditionsPattern) *corev1.PodCondition {
	for i := range st.Conditions {
		for _, pat := range patterns {
			if st.Conditions[i].Type == pat.Type && st.Conditions[i].Status == pat.Status {
				return &st.Conditions[i]
			}
		}
	}
	return nil
}

// activePodsForRemoval picks at least n of the active pods to delete, in
// upstream's order; for an Indexed Job, first the pods with no valid
// index and the extra pods of an index that has several.
func activePodsForRemoval(job *batchv1.Job, pods []*corev1.Pod, n int) []*corev1.Pod {
	var rm, left []*corev1.Pod
	if isIndexedJob(job) {
		byIndex := map[int][]*corev1.Pod{}
		for _, p := range pods {
			if ix := completionIndex(p); ix < 0 || ix >= int(*job.Spec.Completions) {
				rm = append(rm, p)
			} else {
				byIndex[ix] = append(byIndex[ix], p)
			}
		}
		ixs := make([]int, 0, len(byIndex))
		for ix := range byIndex {
			ixs = append(ixs, ix)
		}
		sort.Ints(ixs)
		for _, ix := range ixs {
			same := rankForDeletion(byIndex[ix])
			rm = append(rm, same[:len(same)-1]...)
			left = append(left, same[len(same)-1])
		}
	} else {
		left = pods
	}
	if len(rm) < n {
		rm = append(rm, rankForDeletion(left)[:n-len(rm)]...)
	}
	return rm
}

// completionIndex is an Indexed Job pod's index, or -1.
func completionIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return -1
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 {
		return -1
	}
	return ix
}

// succeededIndexes are the indexes in status.completedIndexes and those
// with all the indexes of the succeeded pods not yet counted.
func succeededIndexes(job *batchv1.Job, pods []*corev1.Pod) (prev, all sets.Set[int]) {
	completions := int(*job.Spec.Completions)
	prev = parseIndexes(job.Status.CompletedIndexes, completions)
	all = prev.Clone()
	for _, p := range pods {
		if ix := completionIndex(p); p.Status.Phase == corev1.PodSucceeded && ix >= 0 && ix < completions && hasTrackingFinalizer(p) {
			all.Insert(ix)
		}
	}
	return prev, all
}

// firstPendingIndexes are the first count indexes below completions that
// have not succeeded and have no active (or, when only failed pods are
// replaced, terminating) pod.
func firstPendingIndexes(s *jobState, count, completions int) []int {
	taken := s.succeededIdx.Clone()
	for _, p := range s.active {
		taken.Insert(completionIndex(p))
	}
	if onlyReplaceFailedPods(s.job) {
		for _, p := range s.pods {
			if isTerminating(p) {
				taken.Insert(completionIndex(p))
			}
		}
	}
	var out []int
	for ix := 0; ix < completions && len(out) < count; ix++ {
		if !taken.Has(ix) {
			out = append(out, ix)
		}
	}
	return out
}

// parseIndexes reads "1,3-5,7" (upstream's format for completedIndexes),
// keeping the indexes below completions.
func parseIndexes(s string, completions int) sets.Set[int] {
	out := sets.New[int]()
	if s == "" {
		return out
	}
	for _, part := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(first)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(last); err != nil {
				continue
			}
		}
		for ix := lo; ix <= hi && ix < completions; ix++ {
			out.Insert(ix)
		}
	}
	return out
}

// formatIndexes writes indexes as upstream does: runs of three or more as
// first-last, shorter ones listed.
func formatIndexes(ixs sets.Set[int]) string {
	list := sets.List(ixs)
	var b strings.Builder
	for i := 0; i < len(list); {
		j := i
		for j+1 < len(list) && list[j+1] == list[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(list[i]))
		switch {
		case j == i+1:
			b.WriteString("," + strconv.Itoa(list[j]))
		case j > i+1:
			b.WriteString("-" + strconv.Itoa(list[j]))
		}
		i = j + 1
	}
	return b.String()
}

// jobBackoff is what the delay before the next replacement pod depends
// on: the failures since the last success, and when the last one was.
type jobBackoff struct {
	key         string
	failures    int32
	lastFailure *time.Time
}

// remaining is how long to wait still: base after the first failure,
// doubling with each one after, up to max.
func (b jobBackoff) remaining(clk clock.PassiveClock, base, maxDelay time.Duration) time.Duration {
	if b.failures == 0 || b.lastFailure == nil {
		return 0
	}
	d := base
	for i := int32(1); i < b.failures && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return max(d-clk.Since(*b.lastFailure), 0)
}

// backoffStore keeps each Job's backoff in memory, as upstream's: a
// restarted controller starts without delay.
type backoffStore struct {
	mu sync.Mutex
	m  map[string]jobBackoff
}

func newBackoffStore() *backoffStore { return &backoffStore{m: map[string]jobBackoff{}} }

// next is the backoff after the pods that finished since the last count:
// a success resets it, except for failures that came later.
func (s *backoffStore) next(key string, succeeded, failed []*corev1.Pod) jobBackoff {
	s.mu.Lock()
	b, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		b = jobBackoff{key: key}
	}
	byFinish := func(pods []*corev1.Pod) []*corev1.Pod {
		out := append([]*corev1.Pod(nil), pods...)
		sort.SliceStable(out, func(i, j int) bool { return podFinishedAt(out[i]).Before(podFinishedAt(out[j])) })
		return out
	}
	succeeded, failed = byFinish(succeeded), byFinish(failed)
	switch {
	case len(succeeded) == 0 && len(failed) == 0:
	case len(succeeded) == 0:
		b.failures += int32(len(failed))
		b.lastFailure = ptr.To(podFinishedAt(failed[len(failed)-1]))
	default:
		b.failures, b.lastFailure = 0, nil
		lastSuccess := podFinishedAt(succeeded[len(succeeded)-1])
		for i := len(failed) - 1; i >= 0; i-- {
			at := podFinishedAt(failed[i])
			if !at.After(lastSuccess) {
				break
			}
			if b.lastFailure == nil {
				b.lastFailure = &at
			}
			b.failures++
		}
	}
	return b
}

func (s *backoffStore) set(b jobBackoff) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[b.key] = b
}

func (s *backoffStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// podFinishedAt is when a pod ended: its last container's end, else the
// time it stopped being ready, else its deletion less the grace period,
// else its creation.
func podFinishedAt(p *corev1.Pod) time.Time {
	var last time.Time
	all := len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.FinishedAt.IsZero() {
			all = false
			break
		}
		if t := cs.State.Terminated.FinishedAt.Time; t.After(last) {
			last = t
		}
	}
	if all {
		return last
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.DeletionTimestamp != nil {
		return p.DeletionTimestamp.Add(-time.Duration(ptr.Deref(p.DeletionGracePeriodSeconds, 0)) * time.Second)
	}
	return p.CreationTimestamp.Time
}

// uidExpectations remember, per Job, the pods whose finalizer removal was
// asked for and not yet seen in the cache, so that they are not counted
// twice.
type uidExpectations struct {
	mu sync.Mutex
	m  map[string]sets.Set[types.UID]
}

func newUIDExpectations() *uidExpectations {
	return &uidExpectations{m: map[string]sets.Set[types.UID]{}}
}

func (e *uidExpectations) expect(key string, uids ...types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m[key] == nil {
		e.m[key] = sets.New[types.UID]()
	}
	e.m[key].Insert(uids...)
}

func (e *uidExpectations) observed(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.m[key]; s != nil {
		s.Delete(uid)
		if s.Len() == 0 {
			delete(e.m, key)
		}
	}
}

func (e *uidExpectations) get(key string) sets.Set[types.UID] {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[key].Clone()
}

func (e *uidExpectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// wakeups queue keys again when the controllers' clock reaches a time: a
// Job's deadline or the end of its backoff, a CronJob's next schedule, a
// finished Job's expiry. A key waits for the earliest time asked for; the
// sync it causes asks again for what it still needs. The clock is the
// one tests step (the queue's own delays stay on the real clock).
type wakeups struct {
	clock clock.WithDelayedExecution
	add   func(string)
	mu    sync.Mutex
	m     map[string]wakeup
}

type wakeup struct {
	at    time.Time
	timer clock.Timer
}

func newWakeups(clk clock.WithDelayedExecution, add func(string)) *wakeups {
	return &wakeups{clock: clk, add: add, m: map[string]wakeup{}}
}

func (w *wakeups) after(key string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	at := now.Add(d)
	if cur, ok := w.m[key]; ok {
		if cur.at.After(now) && !cur.at.After(at) {
			return // an earlier wakeup is still pending
		}
		cur.timer.Stop()
	}
	// The callback may run under the fake clock's lock: it must not take
	// w.mu, which is held around the clock's calls here.
	w.m[key] = wakeup{at: at, timer: w.clock.AfterFunc(d, func() { w.add(key) })}
}

func (w *wakeups) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, ok := w.m[key]; ok {
		cur.timer.Stop()
		delete(w.m, key)
	}
}
