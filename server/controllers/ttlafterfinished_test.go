package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestTTLAfterFinished(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	fake := testingclock.NewFakeClock(time.Now())
	runBatchControllers(t, cfg, fake)
	createJob(t, cs, newJob("brief", func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr.To[int32](100) }))
	createJob(t, cs, newJob("kept", nil))
	for _, name := range []string{"brief", "kept"} {
		succeedJobPod(t, cs, waitJobRunning(t, cs, name, 1)[0].Name)
	}
	var finished time.Time
	eventually(t, "both complete", func() error {
		for _, name := range []string{"brief", "kept"} {
			j, err := getJob(cs, name)
			if err != nil {
				return err
			}
			c := jobCond(j, batchv1.JobComplete)
			if c == nil {
				return fmt.Errorf("%s: conditions %s", name, jobConditions(j))
			}
			if name == "brief" {
				finished = c.LastTransitionTime.Time
			}
		}
		return nil
	})
	exists := func(name string) (bool, error) {
		_, err := getJob(cs, name)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}

	// Not yet: 99 s after it finished.
	eventually(t, "the TTL controller waiting", func() error {
		if !fake.HasWaiters() {
			return fmt.Errorf("no wakeup set")
		}
		return nil
	})
	fake.SetTime(finished.Add(99 * time.Second))
	time.Sleep(300 * time.Millisecond)
	if ok, err := exists("brief"); !ok || err != nil {
		t.Fatalf("the job went before its TTL (%v)", err)
	}
	// Its TTL changed meanwhile: the controller reads the Job again.
	if _, err := cs.BatchV1().Jobs("default").Patch(ctx, "brief", "application/merge-patch+json",
		[]byte(`{"spec":{"ttlSecondsAfterFinished":200}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	fake.SetTime(finished.Add(101 * time.Second))
	time.Sleep(300 * time.Millisecond)
	if ok, err := exists("brief"); !ok || err != nil {
		t.Fatalf("the job went before its new TTL (%v)", err)
	}
	fake.SetTime(finished.Add(201 * time.Second))
	eventually(t, "the job deleted after its TTL, with its pod", func() error {
		if ok, err := exists("brief"); ok || err != nil {
			return fmt.Errorf("still there (%v)", err)
		}
		all, _, err := jobPods(cs, "brief")
		if err == nil && len(all) != 0 {
			return fmt.Errorf("%d pods left", len(all))
		}
		return err
	})
	// A Job without a TTL stays.
	if ok, err := exists("kept"); !ok || err != nil {
		t.Errorf("the job without a TTL went (%v)", err)
	}
}
