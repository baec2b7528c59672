package strategy

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var (
	jobGVK     = batchv1.SchemeGroupVersion.WithKind("Job")
	cronJobGVK = batchv1.SchemeGroupVersion.WithKind("CronJob")
)

const jobUID = types.UID("0c7e4d2e-5b0a-4e0f-9b7a-3f7d1c2b9a10")

// kubectlCreateJob is what `kubectl create job pi --image=perl` sends, with
// the uid the server gives it before PrepareForCreate.
func kubectlCreateJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: jobUID},
		Spec: batchv1.JobSpec{
			Template: v1.PodTemplateSpec{
				Spec: v1.PodSpec{
					Containers:    []v1.Container{{Name: "pi", Image: "perl"}},
					RestartPolicy: v1.RestartPolicyNever,
				},
			},
		},
	}
}

func TestJobDefaultsAndGeneratedSelector(t *testing.T) {
	j := kubectlCreateJob()
	checkErrs(t, create(t, jobGVK, j))
	s := j.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"completions", s.Completions, ptr.To[int32](1)},
		{"parallelism", s.Parallelism, ptr.To[int32](1)},
		{"backoffLimit", s.BackoffLimit, ptr.To[int32](6)},
		{"completionMode", s.CompletionMode, ptr.To(batchv1.NonIndexedCompletion)},
		{"suspend", s.Suspend, ptr.To(false)},
		{"manualSelector", s.ManualSelector, ptr.To(false)},
		{"podReplacementPolicy", s.PodReplacementPolicy, ptr.To(batchv1.TerminatingOrFailed)},
		{"selector", s.Selector, &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: string(jobUID)}}},
		{"template labels", s.Template.Labels, map[string]string{
			"job-name": "pi", "controller-uid": string(jobUID),
			batchv1.JobNameLabel: "pi", batchv1.ControllerUidLabel: string(jobUID),
		}},
		{"template pull policy", s.Template.Spec.Containers[0].ImagePullPolicy, v1.PullAlways},
		{"generation", j.Generation, int64(1)},
	}
	for _, c := range checks {
		if !apiequality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if f := mustFor(t, jobGVK).Fields(j); f["status.successful"] != "0" {
		t.Errorf("Fields() = %v", f)
	}
}

func TestJobValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []want
	}{
		{"kubectl create job", func(*batchv1.Job) {}, nil},
		{"restartPolicy OnFailure", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyOnFailure }, nil},
		{"restartPolicy Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyAlways },
			[]want{reqd("spec.template.spec.restartPolicy", `valid values: "OnFailure", "Never"`)}},
		{"restartPolicy unset", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" },
			[]want{reqd("spec.template.spec.restartPolicy", `valid values: "OnFailure", "Never"`)}},
		{"negative backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](-1) }, []want{inv("spec.backoffLimit")}},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptr.To[int32](2)
			// Completions is defaulted only when parallelism is unset too.
		}, []want{reqd("spec.completions", "when completion mode is Indexed")}},
		{"manual selector that does not match", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pi"}}
		}, []want{invd("spec.template.metadata.labels", "`selector` does not match template `labels`")}},
		{"missing uid", func(j *batchv1.Job) { j.UID = "" }, []want{req("metadata.uid")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := kubectlCreateJob()
			tt.mutate(j)
			checkErrs(t, create(t, jobGVK, j), tt.want...)
		})
	}
}

func TestJobUpdate(t *testing.T) {
	old := kubectlCreateJob()
	checkErrs(t, create(t, jobGVK, old))
	old.ResourceVersion = "2"

	j := old.DeepCopy()
	j.Spec.Parallelism = ptr.To[int32](3)
	j.Spec.Suspend = ptr.To(true)
	checkErrs(t, update(t, jobGVK, j, old))
	if j.Generation != 2 {
		t.Errorf("generation = %d, want 2", j.Generation)
	}

	j = old.DeepCopy()
	j.Spec.Template.Spec.Containers[0].Image = "perl:5"
	j.Spec.Completions = ptr.To[int32](3)
	checkErrs(t, update(t, jobGVK, j, old),
		invd("spec.template", "field is immutable"),
		invd("spec.completions", "field is immutable"))
}

func TestCronJob(t *testing.T) {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule: "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: v1.PodTemplateSpec{Spec: v1.PodSpec{
				Containers:    []v1.Container{{Name: "backup", Image: "busybox"}},
				RestartPolicy: v1.RestartPolicyOnFailure,
			}}}},
		},
	}
	checkErrs(t, create(t, cronJobGVK, cj))
	s := cj.Spec
	if s.ConcurrencyPolicy != batchv1.AllowConcurrent || !apiequality.Semantic.DeepEqual(s.Suspend, ptr.To(false)) ||
		*s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 || cj.Generation != 1 {
		t.Errorf("defaults: %+v", s)
	}
	// The job template gets pod template defaults, not a Job's.
	if s.JobTemplate.Spec.BackoffLimit != nil || s.JobTemplate.Spec.Template.Spec.DNSPolicy != v1.DNSClusterFirst {
		t.Errorf("job template defaults: %+v", s.JobTemplate.Spec)
	}

	tests := []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []want
	}{
		{"hourly", func(c *batchv1.CronJob) { c.Spec.Schedule = "@hourly" }, nil},
		{"every", func(c *batchv1.CronJob) { c.Spec.Schedule = "@every 1h30m" }, nil},
		{"names", func(c *batchv1.CronJob) { c.Spec.Schedule = "0 3 * jan-jun mon,wed,fri" }, nil},
		{"time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Europe/Berlin") }, nil},
		{"no schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []want{req("spec.schedule")}},
		{"four fields", func(c *batchv1.CronJob) { c.Spec.Schedule = "* * * *" },
			[]want{invd("spec.schedule", "expected exactly 5 fields, found 4: [* * * *]")}},
		{"minute 60", func(c *batchv1.CronJob) { c.Spec.Schedule = "60 * * * *" },
			[]want{invd("spec.schedule", "end of range (60) above maximum (59): 60")}},
		{"TZ in schedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC 0 * * * *" },
			[]want{invd("spec.schedule", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")}},
		{"bad time zone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptr.To("Mars/Olympus") },
			[]want{inv("spec.timeZone")}},
		{"bad concurrency policy", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" },
			[]want{unsup("spec.concurrencyPolicy")}},
		{"job template restartPolicy Always", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyAlways
		}, []want{req("spec.jobTemplate.spec.template.spec.restartPolicy")}},
		{"job template selector", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}, []want{invd("spec.jobTemplate.spec.selector", "`selector` will be auto-generated")}},
		{"long name", func(c *batchv1.CronJob) { c.Name = strings.Repeat("a", 53) },
			[]want{invd("metadata.name", "must be no more than 52 characters")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cj.DeepCopy()
			tt.mutate(c)
			checkErrs(t, mustFor(t, cronJobGVK).Validate(c), tt.want...)
		})
	}
}

func TestParseCronSchedule(t *testing.T) {
	tests := []struct {
		spec string
		err  string
	}{
		{"* * * * *", ""},
		{"0 0 * * 0", ""},
		{"*/15 9-17 * * mon-fri", ""},
		{"0 0 1,15 * ?", ""},
		{"5 4 * * SUN", ""},
		{"@yearly", ""},
		{"@annually", ""},
		{"@monthly", ""},
		{"@weekly", ""},
		{"@daily", ""},
		{"@midnight", ""},
		{"@hourly", ""},
		{"@every 5m", ""},
		{"CRON_TZ=UTC 0 6 * * *", ""},
		{"", "empty spec string"},
		{"@reboot", "unrecognized descriptor: @reboot"},
		{"@every forever", "failed to parse duration @every forever"},
		{"* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"},
		{"* 24 * * *", "end of range (24) above maximum (23): 24"},
		{"* * 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"* * * 13 *", "end of range (13) above maximum (12): 13"},
		{"* * * * 7", "end of range (7) above maximum (6): 7"},
		{"5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
		{"*/2/3 * * * *", "too many slashes: */2/3"},
		{"x * * * *", "failed to parse int from x: "},
		{"* * * foo *", "failed to parse int from foo: "},
		{"TZ=Nowhere/City * * * * *", "provided bad location Nowhere/City: "},
	}
	for _, tt := range tests {
		err := parseCronSchedule(tt.spec)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseCronSchedule(%q) = %v, want no error", tt.spec, err)
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("parseCronSchedule(%q) = %v, want an error starting %q", tt.spec, err, tt.err)
		}
	}
}
