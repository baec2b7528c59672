package printers

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

var jobPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Status", Type: "string", Description: "Status of the job."},
	{Name: "Completions", Type: "string", Description: batchv1.JobStatus{}.SwaggerDoc()["succeeded"]},
	{Name: "Duration", Type: "string", Description: "Time required to complete the job."},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
}, func(obj *batchv1.Job, opts Options) ([]interface{}, error) {
	var completions string
	if obj.Spec.Completions != nil {
		completions = fmt.Sprintf("%d/%d", obj.Status.Succeeded, *obj.Spec.Completions)
	} else {
		parallelism := int32(0)
		if obj.Spec.Parallelism != nil {
			parallelism = *obj.Spec.Parallelism
		}
		if parallelism > 1 {
			completions = fmt.Sprintf("%d/1 of %d", obj.Status.Succeeded, parallelism)
		} else {
			completions = fmt.Sprintf("%d/1", obj.Status.Succeeded)
		}
	}

	var jobDuration string
	switch {
	case obj.Status.StartTime == nil:
	case obj.Status.CompletionTime == nil:
		jobDuration = duration.HumanDuration(opts.Now.Sub(obj.Status.StartTime.Time))
	default:
		jobDuration = duration.HumanDuration(obj.Status.CompletionTime.Sub(obj.Status.StartTime.Time))
	}

	var status string
	switch {
	case jobCondition(obj, batchv1.JobComplete):
		status = "Complete"
	case jobCondition(obj, batchv1.JobFailed):
		status = "Failed"
	case obj.DeletionTimestamp != nil:
		status = "Terminating"
	case jobCondition(obj, batchv1.JobSuspended):
		status = "Suspended"
	case jobCondition(obj, batchv1.JobFailureTarget):
		status = "FailureTarget"
	case jobCondition(obj, batchv1.JobSuccessCriteriaMet):
		status = "SuccessCriteriaMet"
	default:
		status = "Running"
	}

	names, images := containerCells(obj.Spec.Template.Spec.Containers)
	return []interface{}{
		obj.Name, status, completions, jobDuration, age(obj.CreationTimestamp, opts.Now),
		names, images, metav1.FormatLabelSelector(obj.Spec.Selector),
	}, nil
})

// jobCondition is the status of the job's first condition of type t.
func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

var cronJobPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Schedule", Type: "string", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["schedule"]},
	{Name: "Timezone", Type: "string", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["timeZone"]},
	{Name: "Suspend", Type: "boolean", Description: batchv1beta1.CronJobSpec{}.SwaggerDoc()["suspend"]},
	{Name: "Active", Type: "integer", Description: batchv1beta1.CronJobStatus{}.SwaggerDoc()["active"]},
	{Name: "Last Schedule", Type: "string", Description: batchv1beta1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
}, func(obj *batchv1.CronJob, opts Options) ([]interface{}, error) {
	lastSchedule := none
	if obj.Status.LastScheduleTime != nil {
		lastSchedule = age(*obj.Status.LastScheduleTime, opts.Now)
	}
	timeZone := none
	if obj.Spec.TimeZone != nil {
		timeZone = *obj.Spec.TimeZone
	}
	names, images := containerCells(obj.Spec.JobTemplate.Spec.Template.Spec.Containers)
	// SUSPEND is a "boolean" column but upstream prints it as text.
	return []interface{}{
		obj.Name, obj.Spec.Schedule, timeZone, boolPtr(obj.Spec.Suspend), int64(len(obj.Status.Active)),
		lastSchedule, age(obj.CreationTimestamp, opts.Now),
		names, images, metav1.FormatLabelSelector(obj.Spec.JobTemplate.Spec.Selector),
	}, nil
})
