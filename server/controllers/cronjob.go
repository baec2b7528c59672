package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"labctl/server/strategy"
)

// The CronJob controller creates a CronJob's Jobs on its schedule, as
// upstream's (the second version, since 1.21): standard five-field cron
// lines and the @hourly-style descriptors (parsed by server/strategy, which
// validates them the same way), in spec.timeZone or else the server's
// local time. At each scheduled time it creates <cronjob>-<the time in
// minutes since the epoch> from the job template, owned by the CronJob and
// annotated with batch.kubernetes.io/cronjob-scheduled-timestamp, and lists
// it in status.active with status.lastScheduleTime; the name makes a
// second creation for the same time fail. concurrencyPolicy Forbid skips a
// time while a Job is active (JobAlreadyActive) and Replace deletes the
// active ones first. A start more than startingDeadlineSeconds late is
// missed (MissSchedule); after downtime only the most recent missed time
// runs, with a TooManyMissedTimes warning past 100 of them. Finished Jobs
// leave status.active (SawCompletedJob), set lastSuccessfulTime, and are
// deleted beyond successfulJobsHistoryLimit and failedJobsHistoryLimit,
// oldest first. The controller wakes itself for the next time on its
// clock, which tests step.

var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// nextScheduleDelta pads the wakeup for the next schedule, as upstream's,
// so that it comes after the scheduled time even on a skewed clock.
const nextScheduleDelta = 100 * time.Millisecond

type cronJobs struct {
	cs        kubernetes.Interface
	cjLister  batchlisters.CronJobLister
	jobLister batchlisters.JobLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	log       *slog.Logger
	clock     clock.WithDelayedExecution
	wake      *wakeups
}

func newCronJobs(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger,
	clk clock.WithTickerAndDelayedExecution) controller {
	if clk == nil {
		clk = clock.RealClock{}
	}
	cjInf, jobInf := f.Batch().V1().CronJobs(), f.Batch().V1().Jobs()
	c := &cronJobs{
		cs: cs, cjLister: cjInf.Lister(), jobLister: jobInf.Lister(),
		synced: []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob"}),
		recorder: recorder, log: log.With("controller", "cronjob"), clock: clk,
	}
	c.wake = newWakeups(clk, c.queue.Add)
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(cjInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*batchv1.CronJob), obj.(*batchv1.CronJob)
			if o.Spec.Schedule == n.Spec.Schedule && ptr.Equal(o.Spec.TimeZone, n.Spec.TimeZone) {
				enqueue(n)
				return
			}
			// A new schedule is looked at when its next time comes, as
			// upstream does, not at once.
			sched, err := strategy.ParseCronSchedule(formatSchedule(n))
			if err != nil {
				c.recorder.Eventf(n, corev1.EventTypeWarning, "UnParseableCronJobSchedule", "unparseable schedule for cronjob: %s", n.Spec.Schedule)
				return
			}
			c.wake.after(n.Namespace+"/"+n.Name, nextScheduleIn(n, c.clock.Now(), sched))
		},
		DeleteFunc: enqueue,
	})
	owner := func(obj any) {
		j, ok := deletedObject[*batchv1.Job](obj)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == cronJobKind.Kind && ref.APIVersion == cronJobKind.GroupVersion().String() {
			if cj, err := c.cjLister.CronJobs(j.Namespace).Get(ref.Name); err == nil && cj.UID == ref.UID {
				c.queue.Add(j.Namespace + "/" + ref.Name)
			}
		}
	}
	f.addEventHandler(jobInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: owner,
		UpdateFunc: func(old, obj any) {
			if old.(*batchv1.Job).ResourceVersion == obj.(*batchv1.Job).ResourceVersion {
				return
			}
			owner(old) // the owner it had, if it changed
			owner(obj)
		},
		DeleteFunc: owner,
	})
	return c
}

func (c *cronJobs) name() string { return "cronjob" }

func (c *cronJobs) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

func (c *cronJobs) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	shared, err := c.cjLister.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.wake.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	all, err := c.jobLister.Jobs(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	var jobs []*batchv1.Job
	for _, j := range all {
		if metav1.IsControlledBy(j, shared) {
			jobs = append(jobs, j)
		}
	}
	cj := shared.DeepCopy()
	changed := c.cleanupFinished(ctx, cj, jobs)
	synced, syncErr := c.syncCronJob(ctx, cj, jobs)
	if changed || synced {
		if _, err := c.cs.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update the status of cronjob %s: %w", key, err)
		}
	}
	return syncErr
}

// syncCronJob brings status.active up to date with the Jobs and starts
// the Job for the most recent scheduled time if it is due; it reports
// whether the status changed.
func (c *cronJobs) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (bool, error) {
	now := c.clock.Now()
	changed := false
	children := map[types.UID]bool{}
	for _, j := range jobs {
		children[j.UID] = true
		found := inActiveList(cj, j.UID)
		done, cond := jobFinished(j)
		switch {
		case !found && !done:
			// Not listed: maybe this cache is behind the status; the API
			// says.
			fresh, err := c.cs.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
			if err != nil {
				return changed, err
			}
			if inActiveList(fresh, j.UID) {
				*cj = *fresh
				continue
			}
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
		case found && done:
			deleteFromActiveList(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, cond)
			changed = true
		}
		if cond == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if last := cj.Status.LastSuccessfulTime; last == nil || j.Status.CompletionTime.After(last.Time) {
				cj.Status.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
				changed = true
			}
		}
	}
	// An active Job that is gone (and not just missing from this cache)
	// leaves the list, or the CronJob would look busy forever.
	for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
		if children[ref.UID] {
			continue
		}
		_, err := c.cs.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			deleteFromActiveList(cj, ref.UID)
			changed = true
		case err != nil:
			return changed, err
		}
	}
	if cj.DeletionTimestamp != nil {
		return changed, nil
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return changed, nil
		}
	}
	if ptr.Deref(cj.Spec.Suspend, false) {
		return changed, nil
	}
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnsupportedSchedule",
			"CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
	}
	sched, err := strategy.ParseCronSchedule(formatSchedule(cj))
	if err != nil {
		// A user's mistake: nothing to do until the spec changes.
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return changed, nil
	}
	key := cj.Namespace + "/" + cj.Name
	scheduled, missed, err := mostRecentScheduleTime(cj, now, sched, true)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return changed, nil
	}
	defer func() { c.wake.after(key, nextScheduleIn(cj, now, sched)) }()
	if scheduled == nil {
		return changed, nil
	}
	if missed > 100 {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return changed, nil
	}
	jobName := cronJobName(cj, *scheduled)
	if inActiveListByName(cj, jobName) || (cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(*scheduled)) {
		return changed, nil // this time is done
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ForbidConcurrent && len(cj.Status.Active) > 0 {
		// The active list can lag behind a Job just created; runs a
		// schedule apart do not meet that in practice (upstream's caveat).
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
		return changed, nil
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ReplaceConcurrent {
		for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
			j, err := c.cs.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedGet", "Get job: %v", err)
				return changed, err
			}
			if !c.deleteJob(ctx, cj, j) {
				return changed, fmt.Errorf("could not replace job %s/%s", j.Namespace, j.Name)
			}
			changed = true
		}
	}
	want, err := jobFromTemplate(cj, *scheduled)
	if err != nil {
		return changed, err
	}
	created, err := c.cs.BatchV1().Jobs(cj.Namespace).Create(ctx, want, metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return changed, err
	case apierrors.IsAlreadyExists(err):
		// Made before, by this controller whose status update did not
		// land, or by someone else, who then keeps the status.
		existing, err := c.cs.BatchV1().Jobs(cj.Namespace).Get(ctx, jobName, metav1.GetOptions{})
		if err != nil {
			return changed, err
		}
		if !metav1.IsControlledBy(existing, cj) || inActiveList(cj, existing.UID) {
			return changed, nil
		}
		created = existing
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return changed, err
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", created.Name)
	}
	ref, err := reference.GetReference(scheme.Scheme, created)
	if err != nil {
		return changed, fmt.Errorf("a reference to job %s: %w", created.Name, err)
	}
	cj.Status.Active = append(cj.Status.Active, *ref)
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduled}
	return true, nil
}

// cleanupFinished deletes the oldest finished Jobs beyond the history
// limits, and reports whether the status changed.
func (c *cronJobs) cleanupFinished(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) bool {
	if cj.Spec.SuccessfulJobsHistoryLimit == nil && cj.Spec.FailedJobsHistoryLimit == nil {
		return false
	}
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch _, cond := jobFinished(j); cond {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	changed := false
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		sort.Slice(h.jobs, func(i, j int) bool { return jobStartedBefore(h.jobs[i], h.jobs[j]) })
		for _, j := range h.jobs[:len(h.jobs)-int(*h.limit)] {
			if c.deleteJob(ctx, cj, j) {
				changed = true
			}
		}
	}
	return changed
}

// jobStartedBefore orders Jobs by startTime, the unstarted last, then by
// name.
func jobStartedBefore(a, b *batchv1.Job) bool {
	switch {
	case a.Status.StartTime == nil && b.Status.StartTime != nil:
		return false
	case a.Status.StartTime != nil && b.Status.StartTime == nil:
		return true
	case a.Status.StartTime.Equal(b.Status.StartTime):
		return a.Name < b.Name
	}
	return a.Status.StartTime.Before(b.Status.StartTime)
}

// deleteJob deletes a Job with its pods (in the background) and drops it
// from the active list; it reports whether it did.
func (c *cronJobs) deleteJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) bool {
	bg := metav1.DeletePropagationBackground
	if err := c.cs.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		c.log.Warn("cannot delete a job", "cronjob", cj.Namespace+"/"+cj.Name, "job", j.Name, "err", err)
		return false
	}
	deleteFromActiveList(cj, j.UID)
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", j.Name)
	return true
}

// formatSchedule is the schedule with its time zone as a TZ= prefix.
func formatSchedule(cj *batchv1.CronJob) string {
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		return cj.Spec.Schedule
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err == nil {
			return fmt.Sprintf("TZ=%s %s", *tz, cj.Spec.Schedule)
		}
	}
	return cj.Spec.Schedule
}

// mostRecentScheduleTime is the latest scheduled time not after now and
// after the last one (or the CronJob's creation, and, with
// withStartingDeadline, no earlier than startingDeadlineSeconds ago), nil
// when none is due, and about how many such times went by. Like upstream,
// it estimates that number from the first two times instead of walking
// them all, so that a clock off by years costs nothing; a schedule that
// cannot fire twice a second apart (the 31st of February) is an error.
func mostRecentScheduleTime(cj *batchv1.CronJob, now time.Time, sched strategy.CronSchedule, withStartingDeadline bool) (*time.Time, int64, error) {
	earliest := scheduleBase(cj)
	if d := cj.Spec.StartingDeadlineSeconds; withStartingDeadline && d != nil {
		if deadline := now.Add(-time.Duration(*d) * time.Second); deadline.After(earliest) {
			earliest = deadline
		}
	}
	t1 := sched.Next(earliest)
	t2 := sched.Next(t1)
	switch {
	case t1.IsZero() || now.Before(t1):
		return nil, 0, nil
	case t2.IsZero() || now.Before(t2):
		return &t1, 0, nil
	}
	period := int64(t2.Sub(t1).Round(time.Second).Seconds())
	if period < 1 {
		return nil, 0, fmt.Errorf("time difference between two schedules is less than 1 second")
	}
	missed := int64(now.Sub(t1).Seconds())/period + 1
	// Start a period before the estimate and let the schedule find the
	// exact times (irregular ones like "30 6-16/4 * * 1-5" included).
	var recent time.Time
	for t := sched.Next(t1.Add(time.Duration((missed-2)*period) * time.Second)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		recent = t
	}
	if recent.IsZero() {
		return nil, missed, nil
	}
	return &recent, missed, nil
}

// scheduleBase is the time the next schedule counts from: the last
// scheduled time, or the CronJob's creation.
func scheduleBase(cj *batchv1.CronJob) time.Time {
	if cj.Status.LastScheduleTime != nil {
		return cj.Status.LastScheduleTime.Time
	}
	return cj.CreationTimestamp.Time
}

// nextScheduleIn is how long until the first scheduled time after the
// most recent one due (or after the last one, when none is), padded by
// nextScheduleDelta.
func nextScheduleIn(cj *batchv1.CronJob, now time.Time, sched strategy.CronSchedule) time.Duration {
	from := now
	recent, missed, err := mostRecentScheduleTime(cj, now, sched, false)
	switch {
	case err != nil:
	case recent != nil:
		from = *recent
	case missed == 0:
		from = scheduleBase(cj)
	}
	next := sched.Next(from)
	if next.IsZero() {
		return 24 * time.Hour // not within five years: look again tomorrow
	}
	return next.Add(nextScheduleDelta).Sub(now)
}

// cronJobName is <cronjob>-<scheduled time in minutes since the epoch>:
// one Job per time, whoever tries to create it.
func cronJobName(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

// jobFromTemplate makes the Job for a scheduled time.
func jobFromTemplate(cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	loc, err := time.LoadLocation(ptr.Deref(cj.Spec.TimeZone, ""))
	if err != nil {
		return nil, fmt.Errorf("the time zone of cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	lbls := map[string]string{}
	for k, v := range cj.Spec.JobTemplate.Labels {
		lbls[k] = v
	}
	annotations := map[string]string{}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	yes := true
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        cronJobName(cj, scheduled),
			Namespace:   cj.Namespace,
			Labels:      lbls,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: cronJobKind.GroupVersion().String(), Kind: cronJobKind.Kind,
				Name: cj.Name, UID: cj.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
	}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job, nil
}

func inActiveList(cj *batchv1.CronJob, uid types.UID) bool {
	for _, ref := range cj.Status.Active {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

func inActiveListByName(cj *batchv1.CronJob, name string) bool {
	for _, ref := range cj.Status.Active {
		if ref.Name == name && ref.Namespace == cj.Namespace {
			return true
		}
	}
	return false
}

func deleteFromActiveList(cj *batchv1.CronJob, uid types.UID) {
	var keep []corev1.ObjectReference
	for _, ref := range cj.Status.Active {
		if ref.UID != uid {
			keep = append(keep, ref)
		}
	}
	cj.Status.Active = keep
}
