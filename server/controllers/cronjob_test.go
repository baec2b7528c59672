package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"labctl/server/strategy"
)

func TestCronScheduleNext(t *testing.T) {
	// Saturday 14 March 2026, 10:17:30.5 UTC.
	from := time.Date(2026, 3, 14, 10, 17, 30, 5e8, time.UTC)
	at := func(month time.Month, day, hour, min int) time.Time {
		return time.Date(2026, month, day, hour, min, 0, 0, time.UTC)
	}
	for _, tt := range []struct {
		spec string
		want time.Time
	}{
		{"* * * * *", at(3, 14, 10, 18)},
		{"*/15 * * * *", at(3, 14, 10, 30)},
		{"0 9-17 * * mon-fri", at(3, 16, 9, 0)},
		{"5 4 * * sun", at(3, 15, 4, 5)},
		{"0 0 13 * *", at(4, 13, 0, 0)},
		{"0 0 13 * 5", at(3, 20, 0, 0)},      // the 13th or a Friday
		{"0 12 1-7 * sun", at(3, 15, 12, 0)}, // days 1-7 or a Sunday, as cron
		{"0 0 * * */7", at(3, 15, 0, 0)},     // a step over the days of week: Sunday
		{"15,45 1 * jan,mar *", at(3, 15, 1, 15)},
		{"@hourly", at(3, 14, 11, 0)},
		{"@daily", at(3, 15, 0, 0)},
		{"@weekly", at(3, 15, 0, 0)},
		{"@monthly", at(4, 1, 0, 0)},
		{"@yearly", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@every 90s", from.Add(90*time.Second - 5e8)},
		{"TZ=Asia/Kolkata 30 9 * * *", at(3, 15, 4, 0)}, // 9:30 in India is 4:00 UTC
		{"0 0 31 2 *", time.Time{}},                     // never
	} {
		sched, err := strategy.ParseCronSchedule(tt.spec)
		if err != nil {
			t.Errorf("ParseCronSchedule(%q): %v", tt.spec, err)
			continue
		}
		if got := sched.Next(from); !got.Equal(tt.want) {
			t.Errorf("%q after %v = %v, want %v", tt.spec, from, got, tt.want)
		}
	}
	for spec, want := range map[string]string{
		"60 * * * *":   "end of range (60) above maximum (59): 60",
		"* * * *":      "expected exactly 5 fields, found 4: [* * * *]",
		"@fortnightly": "unrecognized descriptor: @fortnightly",
		"0 0 * * 1-x":  "failed to parse int from x",
	} {
		if _, err := strategy.ParseCronSchedule(spec); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseCronSchedule(%q) = %v, want %q", spec, err, want)
		}
	}
}

func newCronJob(name, schedule string, edit func(*batchv1.CronJobSpec)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{Schedule: schedule, JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyOnFailure,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}}},
		}},
	}
	if edit != nil {
		edit(&cj.Spec)
	}
	return cj
}

// cronFixture is a CronJob under the batch controllers on a fake clock.
type cronFixture struct {
	t     *testing.T
	cs    kubernetes.Interface
	clock *testingclock.FakeClock
	cj    *batchv1.CronJob
}

func startCronJob(t *testing.T, cj *batchv1.CronJob) *cronFixture {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	// A little behind the API's clock, which stamps the creation: the
	// first scheduled time is after both.
	fake := testingclock.NewFakeClock(time.Now().Add(-2 * time.Second))
	runBatchControllers(t, cfg, fake)
	created, err := cs.BatchV1().CronJobs("default").Create(context.Background(), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &cronFixture{t: t, cs: cs, clock: fake, cj: created}
}

// step moves the clock to at, once the controller waits for a time.
func (f *cronFixture) step(at time.Time) {
	f.t.Helper()
	eventually(f.t, "the controller waiting for the next schedule", func() error {
		if !f.clock.HasWaiters() {
			return fmt.Errorf("no wakeup set")
		}
		return nil
	})
	f.clock.SetTime(at)
}

func (f *cronFixture) get() (*batchv1.CronJob, error) {
	return f.cs.BatchV1().CronJobs("default").Get(context.Background(), f.cj.Name, metav1.GetOptions{})
}

// jobs lists the CronJob's Jobs, and those not finished.
func (f *cronFixture) jobs() (all, unfinished []batchv1.Job, err error) {
	list, err := f.cs.BatchV1().Jobs("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	for _, j := range list.Items {
		if !metav1.IsControlledBy(&j, f.cj) || j.DeletionTimestamp != nil {
			continue
		}
		all = append(all, j)
		if jobCond(&j, batchv1.JobComplete) == nil && jobCond(&j, batchv1.JobFailed) == nil {
			unfinished = append(unfinished, j)
		}
	}
	return all, unfinished, nil
}

// waitJobs waits until the CronJob's Jobs are the ones named.
func (f *cronFixture) waitJobs(names ...string) {
	f.t.Helper()
	eventually(f.t, "jobs "+strings.Join(names, ","), func() error {
		all, _, err := f.jobs()
		if err != nil {
			return err
		}
		var got []string
		for _, j := range all {
			got = append(got, j.Name)
		}
		if strings.Join(got, ",") != strings.Join(names, ",") {
			return fmt.Errorf("jobs %v", got)
		}
		return nil
	})
}

// finish makes the Job's pod succeed and waits for the Job to complete.
func (f *cronFixture) finish(job string) {
	f.t.Helper()
	pod := waitJobRunning(f.t, f.cs, job, 1)[0]
	succeedJobPod(f.t, f.cs, pod.Name)
	eventually(f.t, job+" complete", func() error {
		j, err := getJob(f.cs, job)
		if err == nil && jobCond(j, batchv1.JobComplete) == nil {
			return fmt.Errorf("conditions %s", jobConditions(j))
		}
		return err
	})
}

// jobName is the name of the Job for a scheduled time.
func (f *cronFixture) jobName(scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", f.cj.Name, scheduled.Unix()/60)
}

func TestCronJobForbid(t *testing.T) {
	f := startCronJob(t, newCronJob("every", "* * * * *", func(s *batchv1.CronJobSpec) {
		s.ConcurrencyPolicy = batchv1.ForbidConcurrent
	}))
	t1 := f.cj.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
	// atMostOne checks that no two Jobs ever run at once.
	atMostOne := func() {
		t.Helper()
		if _, unfinished, err := f.jobs(); err != nil || len(unfinished) > 1 {
			t.Fatalf("%d jobs running at once (%v)", len(unfinished), err)
		}
	}

	f.step(t1.Add(time.Second))
	first := f.jobName(t1)
	f.waitJobs(first)
	eventually(t, "the job listed active", func() error {
		cj, err := f.get()
		if err == nil && (len(cj.Status.Active) != 1 || cj.Status.Active[0].Name != first || cj.Status.LastScheduleTime == nil || !cj.Status.LastScheduleTime.Time.Equal(t1)) {
			return fmt.Errorf("status %+v", cj.Status)
		}
		return err
	})
	j, err := getJob(f.cs, first)
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != t1.UTC().Format(time.RFC3339) {
		t.Errorf("scheduled timestamp %q, want %q", got, t1.UTC().Format(time.RFC3339))
	}
	if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.UID != f.cj.UID || j.Labels["app"] != "every" {
		t.Errorf("owner %+v, labels %v", ref, j.Labels)
	}
	waitBatchEvent(t, f.cs, "every", "SuccessfulCreate", "Created job "+first)

	// Still running at the next time: skipped.
	f.step(t1.Add(61 * time.Second))
	waitBatchEvent(t, f.cs, "every", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
	atMostOne()
	f.waitJobs(first)

	// Done: it leaves the active list, and the skipped time runs now, as
	// upstream's controller does without startingDeadlineSeconds.
	f.finish(first)
	waitBatchEvent(t, f.cs, "every", "SawCompletedJob", "Saw completed job: "+first+", condition: Complete")
	second := f.jobName(t1.Add(time.Minute))
	f.waitJobs(first, second)
	atMostOne()
	eventually(t, "the second job active, a last success", func() error {
		cj, err := f.get()
		if err == nil && (len(cj.Status.Active) != 1 || cj.Status.Active[0].Name != second || cj.Status.LastSuccessfulTime == nil) {
			return fmt.Errorf("status %+v", cj.Status)
		}
		return err
	})
	// And the time after that is skipped while it runs.
	f.step(t1.Add(121 * time.Second))
	eventually(t, "a second JobAlreadyActive", func() error {
		evs, err := f.cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=every,reason=JobAlreadyActive"})
		if err == nil && (len(evs.Items) == 0 || evs.Items[0].Count < 2) {
			return fmt.Errorf("events %v", evs.Items)
		}
		return err
	})
	f.waitJobs(first, second)
	atMostOne()
}

func TestCronJobReplaceAndHistory(t *testing.T) {
	f := startCronJob(t, newCronJob("swap", "* * * * *", func(s *batchv1.CronJobSpec) {
		s.ConcurrencyPolicy = batchv1.ReplaceConcurrent
		s.SuccessfulJobsHistoryLimit = ptr.To[int32](1)
	}))
	t1 := f.cj.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
	a, b, c := f.jobName(t1), f.jobName(t1.Add(time.Minute)), f.jobName(t1.Add(2*time.Minute))

	f.step(t1.Add(time.Second))
	f.waitJobs(a)
	// The next time replaces the Job still running.
	f.step(t1.Add(61 * time.Second))
	f.waitJobs(b)
	waitBatchEvent(t, f.cs, "swap", "SuccessfulDelete", "Deleted job "+a)
	eventually(t, "only the new job active", func() error {
		cj, err := f.get()
		if err == nil && (len(cj.Status.Active) != 1 || cj.Status.Active[0].Name != b) {
			return fmt.Errorf("active %v", cj.Status.Active)
		}
		return err
	})
	f.finish(b)
	f.step(t1.Add(121 * time.Second))
	f.waitJobs(b, c)
	// Two successes with a history of one: the older goes.
	f.finish(c)
	f.waitJobs(c)
	waitBatchEvent(t, f.cs, "swap", "SuccessfulDelete", "Deleted job "+b)
	eventually(t, "the last success recorded", func() error {
		cj, err := f.get()
		if err != nil {
			return err
		}
		j, err := getJob(f.cs, c)
		if err != nil {
			return err
		}
		if len(cj.Status.Active) != 0 || cj.Status.LastSuccessfulTime == nil || !cj.Status.LastSuccessfulTime.Equal(j.Status.CompletionTime) {
			return fmt.Errorf("status %+v", cj.Status)
		}
		return nil
	})
}

func TestCronJobTimeZone(t *testing.T) {
	// Half past every hour in India, where the hour starts at :30 UTC.
	f := startCronJob(t, newCronJob("india", "30 * * * *", func(s *batchv1.CronJobSpec) {
		s.TimeZone = ptr.To("Asia/Kolkata")
	}))
	t1 := f.cj.CreationTimestamp.Truncate(time.Hour).Add(time.Hour)
	f.step(t1.Add(time.Second))
	name := f.jobName(t1)
	f.waitJobs(name)
	j, err := getJob(f.cs, name)
	if err != nil {
		t.Fatal(err)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	want := t1.In(kolkata).Format(time.RFC3339)
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != want || !strings.HasSuffix(got, ":30:00+05:30") {
		t.Errorf("scheduled timestamp %q, want %q", got, want)
	}
}

func TestCronJobTooManyMissed(t *testing.T) {
	f := startCronJob(t, newCronJob("late", "* * * * *", func(s *batchv1.CronJobSpec) { s.Suspend = ptr.To(true) }))
	// Three hours later (the controller was down, say): 180 times were
	// missed; only the most recent runs, with a warning.
	now := f.cj.CreationTimestamp.Add(3*time.Hour + 10*time.Second)
	f.clock.SetTime(now)
	if _, err := f.cs.BatchV1().CronJobs("default").Patch(context.Background(), "late", "application/merge-patch+json",
		[]byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitJobs(f.jobName(now.Truncate(time.Minute)))
	waitBatchEvent(t, f.cs, "late", "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
}
