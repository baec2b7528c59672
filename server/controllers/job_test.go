package controllers_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"labctl/server/controllers"
)

// runBatchControllers runs the manager as runControllers does, with the
// Job controller's backoff cut to 100 ms (doubling up to 1 s) and, unless
// clk is nil, the batch controllers on clk.
func runBatchControllers(t *testing.T, cfg *rest.Config, clk clock.WithTickerAndDelayedExecution) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := controllers.Run(ctx, controllers.Config{REST: cfg, Identity: "server-a",
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond,
			Clock: clk, JobBackoff: 100 * time.Millisecond, JobMaxBackoff: time.Second})
		if err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func newJob(name string, edit func(*batchv1.JobSpec)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
	if edit != nil {
		edit(&j.Spec)
	}
	return j
}

func createJob(t *testing.T, cs kubernetes.Interface, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	created, err := cs.BatchV1().Jobs("default").Create(context.Background(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// jobPods lists the pods of a Job: all of them, and those running (not
// finished, not being deleted).
func jobPods(cs kubernetes.Interface, job string) (all, running []corev1.Pod, err error) {
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			running = append(running, p)
		}
	}
	return list.Items, running, nil
}

// waitJobRunning waits for n running pods of job and returns them.
func waitJobRunning(t *testing.T, cs kubernetes.Interface, job string, n int) []corev1.Pod {
	t.Helper()
	var running []corev1.Pod
	eventually(t, fmt.Sprintf("%d running pods of %s", n, job), func() error {
		var err error
		if _, running, err = jobPods(cs, job); err != nil {
			return err
		}
		if len(running) != n {
			return fmt.Errorf("%d running pods", len(running))
		}
		return nil
	})
	return running
}

// setJobPodStatus edits a pod's status as a kubelet would, retrying on
// conflicts with the controllers' writes.
func setJobPodStatus(t *testing.T, cs kubernetes.Interface, name string, edit func(*corev1.PodStatus)) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "update the status of pod "+name, func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(&p.Status)
		_, err = cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

func succeedJobPod(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	setJobPodStatus(t, cs, name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "busybox",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: metav1.Now()}}}}
	})
}

// failJobPod ends a pod's container with exitCode and adds conditions.
func failJobPod(t *testing.T, cs kubernetes.Interface, name string, exitCode int32, conds ...corev1.PodCondition) {
	t.Helper()
	setJobPodStatus(t, cs, name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.Conditions = append(s.Conditions, conds...)
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "busybox",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: "Error", FinishedAt: metav1.Now()}}}}
	})
}

func getJob(cs kubernetes.Interface, name string) (*batchv1.Job, error) {
	return cs.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
}

// jobConditions lists a Job's true conditions as "Type/Reason".
func jobConditions(j *batchv1.Job) string {
	var out []string
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			out = append(out, string(c.Type)+"/"+c.Reason)
		}
	}
	return strings.Join(out, ",")
}

func jobCond(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// waitBatchEvent waits for an event about object name with reason whose
// message starts with prefix.
func waitBatchEvent(t *testing.T, cs kubernetes.Interface, name, reason, prefix string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a %s event about %s", reason, name), func() error {
		evs, err := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil {
			return err
		}
		var msgs []string
		for _, e := range evs.Items {
			if strings.HasPrefix(e.Message, prefix) {
				return nil
			}
			msgs = append(msgs, e.Message)
		}
		return fmt.Errorf("events %q", msgs)
	})
}

func TestJobCompletionsAndParallelism(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runBatchControllers(t, cfg, nil)
	job := createJob(t, cs, newJob("pi", func(s *batchv1.JobSpec) {
		s.Completions, s.Parallelism = ptr.To[int32](3), ptr.To[int32](2)
	}))

	// Two at a time, with upstream's labels, owner and finalizer.
	pods := waitJobRunning(t, cs, "pi", 2)
	name := regexp.MustCompile(`^pi-[a-z0-9]{5}$`)
	for _, p := range pods {
		if !name.MatchString(p.Name) {
			t.Errorf("pod name %q, want pi-<5 random>", p.Name)
		}
		for k, v := range map[string]string{batchv1.JobNameLabel: "pi", "job-name": "pi", batchv1.ControllerUidLabel: string(job.UID), "controller-uid": string(job.UID)} {
			if p.Labels[k] != v {
				t.Errorf("pod %s label %s = %q, want %q", p.Name, k, p.Labels[k], v)
			}
		}
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "Job" || ref.Name != "pi" || ref.UID != job.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s controller %+v", p.Name, ref)
		}
		if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s finalizers %v, want the tracking finalizer", p.Name, p.Finalizers)
		}
	}
	// A ready pod counts in status.ready.
	setJobPodStatus(t, cs, pods[0].Name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.Conditions = append(s.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	})
	eventually(t, "active 2, ready 1, a start time", func() error {
		j, err := getJob(cs, "pi")
		if err == nil && (j.Status.Active != 2 || ptr.Deref(j.Status.Ready, -1) != 1 || j.Status.StartTime == nil || ptr.Deref(j.Status.Terminating, -1) != 0) {
			return fmt.Errorf("status %+v", j.Status)
		}
		return err
	})

	// Two succeed: one more pod for the last completion, and they are counted.
	succeedJobPod(t, cs, pods[0].Name)
	succeedJobPod(t, cs, pods[1].Name)
	last := waitJobRunning(t, cs, "pi", 1)
	eventually(t, "2 succeeded, counted", func() error {
		j, err := getJob(cs, "pi")
		if err != nil {
			return err
		}
		if j.Status.Succeeded != 2 || j.Status.Active != 1 || len(j.Status.UncountedTerminatedPods.Succeeded) != 0 {
			return fmt.Errorf("status %+v", j.Status)
		}
		for _, p := range pods {
			got, err := cs.CoreV1().Pods("default").Get(context.Background(), p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if slices.Contains(got.Finalizers, batchv1.JobTrackingFinalizer) {
				return fmt.Errorf("pod %s still has the tracking finalizer", p.Name)
			}
		}
		return nil
	})

	succeedJobPod(t, cs, last[0].Name)
	eventually(t, "complete", func() error {
		j, err := getJob(cs, "pi")
		if err != nil {
			return err
		}
		if got := jobConditions(j); got != "SuccessCriteriaMet/CompletionsReached,Complete/CompletionsReached" {
			return fmt.Errorf("conditions %s", got)
		}
		if j.Status.Succeeded != 3 || j.Status.Active != 0 || j.Status.CompletionTime == nil || j.Status.CompletionTime.Before(j.Status.StartTime) {
			return fmt.Errorf("status %+v", j.Status)
		}
		if c := jobCond(j, batchv1.JobComplete); c.Message != "Reached expected number of succeeded pods" {
			return fmt.Errorf("message %q", c.Message)
		}
		return nil
	})
	waitBatchEvent(t, cs, "pi", "SuccessfulCreate", "Created pod: pi-")
	waitBatchEvent(t, cs, "pi", "Completed", "Job completed")
	all, _, _ := jobPods(cs, "pi")
	if len(all) != 3 {
		t.Errorf("%d pods, want 3", len(all))
	}
}

func TestJobBackoffLimit(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runBatchControllers(t, cfg, nil)
	createJob(t, cs, newJob("flaky", func(s *batchv1.JobSpec) { s.BackoffLimit = ptr.To[int32](2) }))

	// Each failure is replaced (after the backoff) until the third, one
	// more than backoffLimit, fails the Job.
	seen := map[string]bool{}
	for i := 1; i <= 3; i++ {
		pods := waitJobRunning(t, cs, "flaky", 1)
		if seen[pods[0].Name] {
			t.Fatalf("pod %s again", pods[0].Name)
		}
		seen[pods[0].Name] = true
		failJobPod(t, cs, pods[0].Name, 1)
		eventually(t, fmt.Sprintf("%d failures counted", i), func() error {
			j, err := getJob(cs, "flaky")
			if err == nil && j.Status.Failed != int32(i) {
				return fmt.Errorf("status %+v", j.Status)
			}
			return err
		})
	}
	eventually(t, "failed: BackoffLimitExceeded", func() error {
		j, err := getJob(cs, "flaky")
		if err != nil {
			return err
		}
		if got := jobConditions(j); got != "FailureTarget/BackoffLimitExceeded,Failed/BackoffLimitExceeded" {
			return fmt.Errorf("conditions %s", got)
		}
		if c := jobCond(j, batchv1.JobFailed); c.Message != "Job has reached the specified backoff limit" {
			return fmt.Errorf("message %q", c.Message)
		}
		if j.Status.Failed != 3 || j.Status.Active != 0 || j.Status.CompletionTime != nil {
			return fmt.Errorf("status %+v", j.Status)
		}
		return nil
	})
	waitBatchEvent(t, cs, "flaky", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	all, running, err := jobPods(cs, "flaky")
	if err != nil || len(all) != 3 || len(running) != 0 {
		t.Fatalf("%d pods, %d running, %v; want 3 failed", len(all), len(running), err)
	}
	for _, p := range all {
		if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s kept the tracking finalizer", p.Name)
		}
	}
}

func TestJobIndexed(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runBatchControllers(t, cfg, nil)
	createJob(t, cs, newJob("idx", func(s *batchv1.JobSpec) {
		s.Completions, s.Parallelism = ptr.To[int32](3), ptr.To[int32](2)
		s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	}))
	// byIndex maps the running pods' indexes to their names, checking them.
	byIndex := func(pods []corev1.Pod) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, p := range pods {
			ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
			if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix ||
				!regexp.MustCompile(`^idx-`+ix+`-[a-z0-9]{5}$`).MatchString(p.Name) {
				t.Errorf("pod %s: index %q, labels %v, hostname %q", p.Name, ix, p.Labels, p.Spec.Hostname)
			}
			env := p.Spec.Containers[0].Env
			if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("pod %s env %+v", p.Name, env)
			}
			out[ix] = p.Name
		}
		return out
	}
	pods := byIndex(waitJobRunning(t, cs, "idx", 2))
	if pods["0"] == "" || pods["1"] == "" {
		t.Fatalf("indexes %v, want 0 and 1", pods)
	}
	succeedJobPod(t, cs, pods["1"])
	eventually(t, "index 2 started, index 1 completed", func() error {
		_, running, err := jobPods(cs, "idx")
		if err != nil {
			return err
		}
		j, err := getJob(cs, "idx")
		if err != nil {
			return err
		}
		if got := byIndex(running); len(got) != 2 || got["0"] == "" || got["2"] == "" || j.Status.CompletedIndexes != "1" || j.Status.Succeeded != 1 {
			return fmt.Errorf("running %v, completed %q", got, j.Status.CompletedIndexes)
		}
		return nil
	})
	// A failed index is run again.
	failJobPod(t, cs, pods["0"], 1)
	eventually(t, "index 0 replaced", func() error {
		_, running, err := jobPods(cs, "idx")
		if err != nil {
			return err
		}
		if got := byIndex(running); got["0"] == "" || got["0"] == pods["0"] {
			return fmt.Errorf("running %v", got)
		}
		return nil
	})
	_, running, _ := jobPods(cs, "idx")
	for _, name := range byIndex(running) {
		succeedJobPod(t, cs, name)
	}
	eventually(t, "complete with indexes 0-2", func() error {
		j, err := getJob(cs, "idx")
		if err == nil && (j.Status.CompletedIndexes != "0-2" || j.Status.Succeeded != 3 || j.Status.Failed != 1 || jobCond(j, batchv1.JobComplete) == nil) {
			return fmt.Errorf("status %+v", j.Status)
		}
		return err
	})
}

func TestJobActiveDeadline(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runBatchControllers(t, cfg, nil)
	createJob(t, cs, newJob("slow", func(s *batchv1.JobSpec) {
		s.Parallelism, s.Completions = ptr.To[int32](2), ptr.To[int32](4)
		s.ActiveDeadlineSeconds = ptr.To[int64](1)
	}))
	waitJobRunning(t, cs, "slow", 2)
	// Past the deadline the running pods are deleted, counted as failed.
	eventually(t, "failed: DeadlineExceeded", func() error {
		j, err := getJob(cs, "slow")
		if err != nil {
			return err
		}
		if got := jobConditions(j); got != "FailureTarget/DeadlineExceeded,Failed/DeadlineExceeded" {
			return fmt.Errorf("conditions %s", got)
		}
		if c := jobCond(j, batchv1.JobFailed); c.Message != "Job was active longer than specified deadline" {
			return fmt.Errorf("message %q", c.Message)
		}
		if j.Status.Active != 0 || j.Status.Failed != 2 || ptr.Deref(j.Status.Terminating, -1) != 0 {
			return fmt.Errorf("status %+v", j.Status)
		}
		return nil
	})
	all, _, err := jobPods(cs, "slow")
	if err != nil || len(all) != 0 {
		t.Errorf("pods %d, %v; want none", len(all), err)
	}
	waitBatchEvent(t, cs, "slow", "DeadlineExceeded", "Job was active longer than specified deadline")
	waitBatchEvent(t, cs, "slow", "SuccessfulDelete", "Deleted pod: slow-")
}

func TestJobSuspend(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runBatchControllers(t, cfg, nil)
	createJob(t, cs, newJob("later", func(s *batchv1.JobSpec) {
		s.Parallelism, s.Completions = ptr.To[int32](2), ptr.To[int32](2)
		s.Suspend = ptr.To(true)
	}))
	eventually(t, "suspended", func() error {
		j, err := getJob(cs, "later")
		if err == nil && (jobConditions(j) != "Suspended/JobSuspended" || j.Status.StartTime != nil) {
			return fmt.Errorf("status %+v", j.Status)
		}
		return err
	})
	if all, _, _ := jobPods(cs, "later"); len(all) != 0 {
		t.Fatalf("%d pods of a suspended job", len(all))
	}
	suspend := func(v bool) {
		t.Helper()
		patch := fmt.Sprintf(`{"spec":{"suspend":%t}}`, v)
		if _, err := cs.BatchV1().Jobs("default").Patch(ctx, "later", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	suspend(false)
	waitJobRunning(t, cs, "later", 2)
	eventually(t, "resumed", func() error {
		j, err := getJob(cs, "later")
		if err != nil {
			return err
		}
		if c := jobCond(j, batchv1.JobSuspended); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "JobResumed" || j.Status.StartTime == nil {
			return fmt.Errorf("status %+v", j.Status)
		}
		return nil
	})
	waitBatchEvent(t, cs, "later", "Resumed", "Job resumed")
	// Suspended again: the pods go, and are not failures.
	suspend(true)
	eventually(t, "suspended again, no pods", func() error {
		j, err := getJob(cs, "later")
		if err != nil {
			return err
		}
		all, _, err := jobPods(cs, "later")
		if err != nil {
			return err
		}
		if jobConditions(j) != "Suspended/JobSuspended" || j.Status.Active != 0 || j.Status.Failed != 0 || len(all) != 0 {
			return fmt.Errorf("%d pods, status %+v", len(all), j.Status)
		}
		return nil
	})
}

func TestJobPodFailurePolicy(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	runBatchControllers(t, cfg, nil)
	createJob(t, cs, newJob("policy", func(s *batchv1.JobSpec) {
		s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: ptr.To("c"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
			{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0}}},
		}}
	}))
	// A disruption is ignored: replaced, not counted.
	first := waitJobRunning(t, cs, "policy", 1)[0].Name
	failJobPod(t, cs, first, 137, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI", LastTransitionTime: metav1.Now()})
	var second string
	eventually(t, "a replacement for the disrupted pod", func() error {
		_, running, err := jobPods(cs, "policy")
		if err != nil || len(running) != 1 || running[0].Name == first {
			return fmt.Errorf("running %d pods (%v)", len(running), err)
		}
		second = running[0].Name
		return nil
	})
	// An ordinary failure counts.
	failJobPod(t, cs, second, 1)
	var third string
	eventually(t, "one failure counted, a replacement", func() error {
		j, err := getJob(cs, "policy")
		if err != nil {
			return err
		}
		_, running, err := jobPods(cs, "policy")
		if err != nil || len(running) != 1 || running[0].Name == second || j.Status.Failed != 1 {
			return fmt.Errorf("running %d pods (%v), status %+v", len(running), err, j.Status)
		}
		third = running[0].Name
		return nil
	})
	// Exit code 42 fails the Job at once.
	failJobPod(t, cs, third, 42)
	eventually(t, "failed: PodFailurePolicy", func() error {
		j, err := getJob(cs, "policy")
		if err != nil {
			return err
		}
		if got := jobConditions(j); got != "FailureTarget/PodFailurePolicy,Failed/PodFailurePolicy" {
			return fmt.Errorf("conditions %s", got)
		}
		want := "Container c for pod default/" + third + " failed with exit code 42 matching FailJob rule at index 0"
		if c := jobCond(j, batchv1.JobFailed); c.Message != want || j.Status.Failed != 2 {
			return fmt.Errorf("message %q, failed %d", c.Message, j.Status.Failed)
		}
		return nil
	})
}

func TestJobTrackingFinalizerRemoval(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runBatchControllers(t, cfg, nil)

	// Deleted in the background: the garbage collector deletes the pods,
	// and their finalizer comes off, so they go.
	createJob(t, cs, newJob("gone", func(s *batchv1.JobSpec) { s.Parallelism = ptr.To[int32](2) }))
	waitJobRunning(t, cs, "gone", 2)
	bg := metav1.DeletePropagationBackground
	if err := cs.BatchV1().Jobs("default").Delete(ctx, "gone", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pods of the deleted job gone", func() error {
		all, _, err := jobPods(cs, "gone")
		if err == nil && len(all) != 0 {
			return fmt.Errorf("%d pods left", len(all))
		}
		return err
	})

	// Deleted in the foreground: the API server deletes the pods first,
	// and the Job goes when they have, once their finalizer is off.
	createJob(t, cs, newJob("fg", nil))
	waitJobRunning(t, cs, "fg", 1)
	fg := metav1.DeletePropagationForeground
	if err := cs.BatchV1().Jobs("default").Delete(ctx, "fg", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job deleted in the foreground, and its pod", func() error {
		all, _, err := jobPods(cs, "fg")
		if err != nil || len(all) != 0 {
			return fmt.Errorf("%d pods left (%v)", len(all), err)
		}
		if _, err := getJob(cs, "fg"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the job is still there (%v)", err)
		}
		return nil
	})

	// Orphaned: the pods stay, without the finalizer.
	createJob(t, cs, newJob("orphaned", nil))
	pod := waitJobRunning(t, cs, "orphaned", 1)[0].Name
	orphan := metav1.DeletePropagationOrphan
	if err := cs.BatchV1().Jobs("default").Delete(ctx, "orphaned", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the orphan's finalizer removed", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 || slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			return fmt.Errorf("owners %v, finalizers %v", p.OwnerReferences, p.Finalizers)
		}
		return nil
	})
	// And deleting it is immediate.
	if err := cs.CoreV1().Pods("default").Delete(ctx, pod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the orphan deleted", func() error {
		_, err := cs.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}
