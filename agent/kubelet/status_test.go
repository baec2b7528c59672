package kubelet

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func statusPod(policy corev1.RestartPolicy, inits ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "app", Image: "nginx"}, {Name: "side", Image: "busybox"}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(time.Unix(100, 0))}}},
	}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox"})
	}
	return p
}

func running(ready bool) containerState {
	return containerState{ID: "abc", Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(200, 0))}, Ready: ready, Started: true}
}

func exited(code int32) containerState {
	return containerState{ID: "abc", Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: terminatedReason(code, false)}}
}

func crashLooping() containerState {
	return containerState{ID: "abc", RestartCount: 3,
		Waiting:        &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: "back-off 40s restarting failed container=app pod=web_default(uid-1)"},
		LastTerminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: ReasonError}}
}

// conds renders the conditions as "Type=Status(Reason: Message)".
func conds(st corev1.PodStatus) string {
	var out []string
	for _, c := range st.Conditions {
		s := fmt.Sprintf("%s=%s", c.Type, c.Status)
		if c.Reason != "" || c.Message != "" {
			s += fmt.Sprintf("(%s: %s)", c.Reason, c.Message)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func waitingReasons(st corev1.PodStatus) string {
	var out []string
	for _, s := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		switch {
		case s.State.Waiting != nil:
			out = append(out, s.Name+":"+s.State.Waiting.Reason)
		case s.State.Running != nil:
			out = append(out, s.Name+":running")
		case s.State.Terminated != nil:
			out = append(out, s.Name+":"+s.State.Terminated.Reason)
		}
	}
	return strings.Join(out, " ")
}

func TestPodStatus(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name                  string
		pod                   *corev1.Pod
		st                    podState
		phase                 corev1.PodPhase
		containers, condition string
	}{{
		name:       "nothing started yet",
		pod:        statusPod(corev1.RestartPolicyAlways),
		phase:      corev1.PodPending,
		containers: "app:ContainerCreating side:ContainerCreating",
		condition: "PodReadyToStartContainers=False Initialized=True Ready=False(ContainersNotReady: containers with unready status: [app side]) " +
			"ContainersReady=False(ContainersNotReady: containers with unready status: [app side]) PodScheduled=True",
	}, {
		name:       "an init container runs",
		pod:        statusPod(corev1.RestartPolicyAlways, "setup", "migrate"),
		st:         podState{SandboxReady: true, Init: map[string]containerState{"setup": exited(0), "migrate": running(false)}},
		phase:      corev1.PodPending,
		containers: "setup:Completed migrate:running app:PodInitializing side:PodInitializing",
		condition: "PodReadyToStartContainers=True Initialized=False(ContainersNotInitialized: containers with incomplete status: [migrate]) " +
			"Ready=False(ContainersNotReady: containers with unready status: [app side]) ContainersReady=False(ContainersNotReady: containers with unready status: [app side]) PodScheduled=True",
	}, {
		name:       "running and ready",
		pod:        statusPod(corev1.RestartPolicyAlways),
		st:         podState{SandboxReady: true, Containers: map[string]containerState{"app": running(true), "side": running(true)}},
		phase:      corev1.PodRunning,
		containers: "app:running side:running",
		condition:  "PodReadyToStartContainers=True Initialized=True Ready=True ContainersReady=True PodScheduled=True",
	}, {
		name:       "one crash-looping",
		pod:        statusPod(corev1.RestartPolicyAlways),
		st:         podState{SandboxReady: true, Containers: map[string]containerState{"app": crashLooping(), "side": running(true)}},
		phase:      corev1.PodRunning,
		containers: "app:CrashLoopBackOff side:running",
		condition: "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady: containers with unready status: [app]) " +
			"ContainersReady=False(ContainersNotReady: containers with unready status: [app]) PodScheduled=True",
	}, {
		name:       "all done, Never",
		pod:        statusPod(corev1.RestartPolicyNever),
		st:         podState{SandboxReady: true, Containers: map[string]containerState{"app": exited(0), "side": exited(0)}},
		phase:      corev1.PodSucceeded,
		containers: "app:Completed side:Completed",
		condition: "PodReadyToStartContainers=False Initialized=True Ready=False(PodCompleted: ) " +
			"ContainersReady=False(PodCompleted: ) PodScheduled=True",
	}, {
		name:       "one failed, Never",
		pod:        statusPod(corev1.RestartPolicyNever),
		st:         podState{SandboxReady: true, Containers: map[string]containerState{"app": exited(2), "side": exited(0)}},
		phase:      corev1.PodFailed,
		containers: "app:Error side:Completed",
		condition: "PodReadyToStartContainers=False Initialized=True Ready=False(ContainersNotReady: containers with unready status: [app side]) " +
			"ContainersReady=False(ContainersNotReady: containers with unready status: [app side]) PodScheduled=True",
	}, {
		name:       "one failed and restarting, OnFailure",
		pod:        statusPod(corev1.RestartPolicyOnFailure),
		st:         podState{SandboxReady: true, Containers: map[string]containerState{"app": crashLooping(), "side": exited(0)}},
		phase:      corev1.PodRunning,
		containers: "app:CrashLoopBackOff side:Completed",
		condition: "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady: containers with unready status: [app side]) " +
			"ContainersReady=False(ContainersNotReady: containers with unready status: [app side]) PodScheduled=True",
	}, {
		name:       "an init container failed, Never",
		pod:        statusPod(corev1.RestartPolicyNever, "setup"),
		st:         podState{SandboxReady: true, Init: map[string]containerState{"setup": exited(1)}},
		phase:      corev1.PodFailed,
		containers: "setup:Error app:PodInitializing side:PodInitializing",
		condition: "PodReadyToStartContainers=False Initialized=False(ContainersNotInitialized: containers with incomplete status: [setup]) Ready=False(ContainersNotReady: containers with unready status: [app side]) " +
			"ContainersReady=False(ContainersNotReady: containers with unready status: [app side]) PodScheduled=True",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := podStatus(tc.pod, tc.st, now)
			if got.Phase != tc.phase {
				t.Errorf("phase %s, want %s", got.Phase, tc.phase)
			}
			if w := waitingReasons(got); w != tc.containers {
				t.Errorf("containers %s\nwant       %s", w, tc.containers)
			}
			if c := conds(got); c != tc.condition {
				t.Errorf("conditions %s\nwant       %s", c, tc.condition)
			}
			if got.QOSClass != corev1.PodQOSBestEffort {
				t.Errorf("QoS class %q", got.QOSClass)
			}
		})
	}
}

// A condition keeps its transition time while its status holds.
func TestPodStatusTransitionTimes(t *testing.T) {
	pod := statusPod(corev1.RestartPolicyAlways)
	st := podState{SandboxReady: true, Containers: map[string]containerState{"app": running(true), "side": running(true)}}
	first := podStatus(pod, st, time.Unix(1000, 0))
	pod.Status = first
	again := podStatus(pod, st, time.Unix(2000, 0))
	for i, c := range again.Conditions {
		if !c.LastTransitionTime.Equal(&first.Conditions[i].LastTransitionTime) {
			t.Errorf("%s moved from %v to %v", c.Type, first.Conditions[i].LastTransitionTime, c.LastTransitionTime)
		}
	}
	st.Containers["app"] = crashLooping()
	pod.Status = again
	later := podStatus(pod, st, time.Unix(3000, 0))
	for _, c := range later.Conditions {
		if c.Type == corev1.PodReady && c.LastTransitionTime.Unix() != 3000 {
			t.Errorf("Ready went False at %v, want 3000", c.LastTransitionTime.Unix())
		}
	}
	if got := crashLoopMessage(40*time.Second, "app", pod); got != "back-off 40s restarting failed container=app pod=web_default(uid-1)" {
		t.Errorf("crash loop message %q", got)
	}
}
