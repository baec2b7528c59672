package kubelet

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pod status (status.go): what the kubelet knows of a pod's sandbox
// and containers, turned into the PodStatus upstream's kubelet writes:
// the phase by upstream's rules, the conditions PodScheduled,
// PodReadyToStartContainers, Initialized, ContainersReady and Ready with
// their reasons and messages, and one ContainerStatus per container with
// upstream's waiting and terminated reasons (ContainerCreating,
// PodInitializing, ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, Completed, Error, OOMKilled).

// Waiting and terminated reasons, as upstream's kubelet words them.
const (
	ReasonContainerCreating     = "ContainerCreating"
	ReasonPodInitializing       = "PodInitializing"
	ReasonErrImagePull          = "ErrImagePull"
	ReasonImagePullBackOff      = "ImagePullBackOff"
	ReasonErrImageNeverPull     = "ErrImageNeverPull"
	ReasonCrashLoopBackOff      = "CrashLoopBackOff"
	ReasonCreateContainerConfig = "CreateContainerConfigError"
	ReasonCompleted             = "Completed"
	ReasonError                 = "Error"
	ReasonOOMKilled             = "OOMKilled"
	ReasonStartError            = "StartError"
)

// containerState is what the kubelet knows of one container of a pod.
type containerState struct {
	// ID is the runtime's container ID; "" before it was first created.
	ID string
	// ImageID is the image the container runs, by digest.
	ImageID string
	// Exactly one of Waiting, Running and Terminated is set; none means
	// the kubelet has not got to the container yet.
	Waiting    *corev1.ContainerStateWaiting
	Running    *corev1.ContainerStateRunning
	Terminated *corev1.ContainerStateTerminated
	// LastTerminated is the previous run's end, after a restart.
	LastTerminated *corev1.ContainerStateTerminated
	// RestartCount counts the restarts.
	RestartCount int32
	// Ready is the readiness probe's verdict (true when running without
	// one); Started the startup probe's (true when running without one).
	Ready, Started bool
}

// podState is what the kubelet knows of a pod.
type podState struct {
	// SandboxReady: the pod's sandbox exists with its network.
	SandboxReady bool
	// PodIPs and HostIPs are the pod's and its node's addresses.
	PodIPs, HostIPs []string
	// StartTime is when the kubelet took the pod on.
	StartTime time.Time
	// Init and Containers hold the states of the init and regular
	// containers by name.
	Init, Containers map[string]containerState
}

// podStatus builds the status the kubelet posts for pod.
func podStatus(pod *corev1.Pod, st podState, now time.Time) corev1.PodStatus {
	// The API server computed the QoS class when the pod was created.
	out := corev1.PodStatus{QOSClass: pod.Status.QOSClass}
	if !st.StartTime.IsZero() {
		t := metav1.NewTime(st.StartTime)
		out.StartTime = &t
	}
	for _, ip := range st.PodIPs {
		out.PodIPs = append(out.PodIPs, corev1.PodIP{IP: ip})
	}
	for _, ip := range st.HostIPs {
		out.HostIPs = append(out.HostIPs, corev1.HostIP{IP: ip})
	}
	if len(out.PodIPs) > 0 {
		out.PodIP = out.PodIPs[0].IP
	}
	if len(out.HostIPs) > 0 {
		out.HostIP = out.HostIPs[0].IP
	}

	initDone := true
	for _, c := range pod.Spec.InitContainers {
		cs := st.Init[c.Name]
		if cs.Terminated == nil || cs.Terminated.ExitCode != 0 {
			initDone = false
		}
	}
	for _, c := range pod.Spec.InitContainers {
		out.InitContainerStatuses = append(out.InitContainerStatuses, containerStatus(c, st.Init[c.Name], false))
	}
	for _, c := range pod.Spec.Containers {
		s := containerStatus(c, st.Containers[c.Name], !initDone)
		out.ContainerStatuses = append(out.ContainerStatuses, s)
	}
	out.Phase = podPhase(pod, out)

	// Conditions, keeping each one's transition time while it holds.
	prev := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range pod.Status.Conditions {
		prev[c.Type] = c
	}
	set := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		if p, seen := prev[t]; seen && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		}
		c.LastProbeTime = metav1.Time{}
		out.Conditions = append(out.Conditions, c)
	}
	done := out.Phase == corev1.PodSucceeded || out.Phase == corev1.PodFailed
	set(corev1.PodReadyToStartContainers, st.SandboxReady && !done, "", "")
	if initDone {
		set(corev1.PodInitialized, true, "", "")
	} else {
		set(corev1.PodInitialized, false, "ContainersNotInitialized", "containers with incomplete status: ["+strings.Join(incompleteInit(pod, out), " ")+"]")
	}
	var unready []string
	for _, s := range out.ContainerStatuses {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	switch {
	case out.Phase == corev1.PodSucceeded:
		set(corev1.ContainersReady, false, "PodCompleted", "")
		set(corev1.PodReady, false, "PodCompleted", "")
	case len(unready) > 0:
		msg := "containers with unready status: [" + strings.Join(unready, " ") + "]"
		set(corev1.ContainersReady, false, "ContainersNotReady", msg)
		set(corev1.PodReady, false, "ContainersNotReady", msg)
	default:
		set(corev1.ContainersReady, true, "", "")
		set(corev1.PodReady, readinessGatesPass(pod), "ReadinessGatesNotReady", "the status of pod readiness gates is not \"True\"")
	}
	// PodScheduled stays as the scheduler left it.
	if p, ok := prev[corev1.PodScheduled]; ok {
		out.Conditions = append(out.Conditions, p)
	} else {
		set(corev1.PodScheduled, true, "", "")
	}
	sort.SliceStable(out.Conditions, func(i, j int) bool {
		return conditionOrder[out.Conditions[i].Type] < conditionOrder[out.Conditions[j].Type]
	})
	return out
}

// conditionOrder is the order `kubectl describe pod` shows them in.
var conditionOrder = map[corev1.PodConditionType]int{
	corev1.PodReadyToStartContainers: 0, corev1.PodInitialized: 1, corev1.PodReady: 2,
	corev1.ContainersReady: 3, corev1.PodScheduled: 4,
}

func incompleteInit(pod *corev1.Pod, st corev1.PodStatus) []string {
	var out []string
	for _, s := range st.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			out = append(out, s.Name)
		}
	}
	return out
}

func readinessGatesPass(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// containerStatus is one container's status; initPending says the pod's
// init containers have not all finished, so a regular container not yet
// created waits with PodInitializing.
func containerStatus(c corev1.Container, s containerState, initPending bool) corev1.ContainerStatus {
	out := corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: s.ImageID, RestartCount: s.RestartCount,
	}
	if s.ID != "" {
		out.ContainerID = "containerd://" + s.ID
	}
	switch {
	case s.Running != nil:
		out.State.Running = s.Running.DeepCopy()
		out.Ready = s.Ready
		started := s.Started
		out.Started = &started
	case s.Terminated != nil:
		out.State.Terminated = s.Terminated.DeepCopy()
		if out.State.Terminated.ContainerID == "" {
			out.State.Terminated.ContainerID = out.ContainerID
		}
		out.Started = new(bool)
	case s.Waiting != nil:
		out.State.Waiting = s.Waiting.DeepCopy()
		out.Started = new(bool)
	case initPending:
		out.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonPodInitializing}
		out.Started = new(bool)
	default:
		out.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
		out.Started = new(bool)
	}
	if s.LastTerminated != nil {
		out.LastTerminationState.Terminated = s.LastTerminated.DeepCopy()
	}
	return out
}

// terminatedReason is the reason a container that exited gets: OOMKilled
// when the kernel killed it for memory, Completed for exit 0, else Error.
func terminatedReason(exitCode int32, oomKilled bool) string {
	switch {
	case oomKilled:
		return ReasonOOMKilled
	case exitCode == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}

// podPhase is upstream's getPhase over the statuses just built.
func podPhase(pod *corev1.Pod, st corev1.PodStatus) corev1.PodPhase {
	never := pod.Spec.RestartPolicy == corev1.RestartPolicyNever
	pendingInit, failedInit := 0, 0
	for _, s := range st.InitContainerStatuses {
		switch {
		case s.State.Terminated != nil && s.State.Terminated.ExitCode == 0:
		case s.State.Terminated != nil:
			pendingInit++
			failedInit++
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode != 0:
			pendingInit++
			failedInit++
		default:
			pendingInit++
		}
	}
	if failedInit > 0 && never {
		return corev1.PodFailed
	}
	if pendingInit > 0 {
		return corev1.PodPending
	}
	waiting, running, stopped, succeeded := 0, 0, 0, 0
	for _, s := range st.ContainerStatuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			// Waiting to restart counts as stopped, as upstream counts it.
			if t := s.LastTerminationState.Terminated; t != nil {
				stopped++
				if t.ExitCode == 0 {
					succeeded++
				}
			} else {
				waiting++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "":
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case never:
			return corev1.PodFailed
		default: // OnFailure: the failed ones restart
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

// crashLoopMessage is the CrashLoopBackOff waiting message upstream gives.
func crashLoopMessage(delay time.Duration, container string, pod *corev1.Pod) string {
	return fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, container, pod.Name, pod.Namespace, pod.UID)
}
