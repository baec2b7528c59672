package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Ready:        ready,
		RestartCount: restarts,
		State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}},
	}
}

func waiting(reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(reason string, exitCode, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		Reason: reason, ExitCode: exitCode, Signal: signal, FinishedAt: ago(time.Minute),
	}}}
}

func withName(cs corev1.ContainerStatus, name string) corev1.ContainerStatus {
	cs.Name = name
	return cs
}

func lastTerminated(cs corev1.ContainerStatus, finished time.Duration) corev1.ContainerStatus {
	cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		Reason: "Error", ExitCode: 1, FinishedAt: ago(finished),
	}}
	return cs
}

func containers(names ...string) []corev1.Container {
	out := make([]corev1.Container, len(names))
	for i, n := range names {
		out[i] = corev1.Container{Name: n, Image: n + ":latest"}
	}
	return out
}

func newPod(phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: ago(10 * time.Minute)},
		Spec:       corev1.PodSpec{Containers: containers("app"), NodeName: "node1"},
		Status: corev1.PodStatus{
			Phase: phase, PodIP: "10.42.0.7", PodIPs: []corev1.PodIP{{IP: "10.42.0.7"}},
		},
	}
}

func readyCondition(status corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: corev1.PodReady, Status: status}
}

func TestPodColumns(t *testing.T) {
	table, err := Table(&corev1.PodList{}, opts())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, typ string
		priority  int32
	}{
		{"Name", "string", 0}, {"Ready", "string", 0}, {"Status", "string", 0}, {"Restarts", "string", 0},
		{"Age", "string", 0}, {"IP", "string", 1}, {"Node", "string", 1}, {"Nominated Node", "string", 1},
		{"Readiness Gates", "string", 1},
	}
	if len(table.ColumnDefinitions) != len(want) {
		t.Fatalf("%d columns, want %d", len(table.ColumnDefinitions), len(want))
	}
	for i, w := range want {
		c := table.ColumnDefinitions[i]
		if c.Name != w.name || c.Type != w.typ || c.Priority != w.priority {
			t.Errorf("column %d = %s/%s/%d, want %s/%s/%d", i, c.Name, c.Type, c.Priority, w.name, w.typ, w.priority)
		}
		if c.Description == "" {
			t.Errorf("column %s has no description", c.Name)
		}
	}
	if table.ColumnDefinitions[0].Format != "name" {
		t.Errorf("Name column format = %q, want name", table.ColumnDefinitions[0].Format)
	}
	if len(table.Rows) != 0 {
		t.Errorf("empty list printed %d rows", len(table.Rows))
	}
}

func TestPodStatus(t *testing.T) {
	tests := []struct {
		name                    string
		pod                     func() *corev1.Pod
		ready, status, restarts string
	}{
		{
			name: "one of two ready, three restarts five minutes ago",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Spec.Containers = containers("app", "sidecar")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					withName(running(true, 0), "app"),
					lastTerminated(withName(running(false, 3), "sidecar"), 5*time.Minute),
				}
				p.Status.Conditions = []corev1.PodCondition{readyCondition(corev1.ConditionFalse)}
				return p
			},
			ready: "1/2", status: "Running", restarts: "3 (5m ago)",
		},
		{
			name: "restarts without a last termination time",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{running(true, 3)}
				return p
			},
			ready: "1/1", status: "Running", restarts: "3",
		},
		{
			name: "pending, not scheduled",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.NodeName = ""
				return p
			},
			ready: "0/1", status: "Pending", restarts: "0",
		},
		{
			name: "scheduling gated",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
				return p
			},
			ready: "0/1", status: "SchedulingGated", restarts: "0",
		},
		{
			name: "image pull back-off",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("ImagePullBackOff")}
				return p
			},
			ready: "0/1", status: "ImagePullBackOff", restarts: "0",
		},
		{
			name: "crash loop back-off",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{lastTerminated(func() corev1.ContainerStatus {
					cs := waiting("CrashLoopBackOff")
					cs.RestartCount = 4
					return cs
				}(), 90*time.Second)}
				return p
			},
			ready: "0/1", status: "CrashLoopBackOff", restarts: "4 (90s ago)",
		},
		{
			name: "init container crash loop",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("init-db")
				ics := waiting("CrashLoopBackOff")
				ics.Name = "init-db"
				ics.RestartCount = 2
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{lastTerminated(ics, 20*time.Second)}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("PodInitializing")}
				return p
			},
			ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "2 (20s ago)",
		},
		{
			name: "init container failed",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("init")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{withName(terminated("Error", 1, 0), "init")}
				return p
			},
			ready: "0/1", status: "Init:Error", restarts: "0",
		},
		{
			name: "init container killed by a signal",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("init")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{withName(terminated("", 137, 9), "init")}
				return p
			},
			ready: "0/1", status: "Init:Signal:9", restarts: "0",
		},
		{
			name: "init container exit code",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("init")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{withName(terminated("", 3, 0), "init")}
				return p
			},
			ready: "0/1", status: "Init:ExitCode:3", restarts: "0",
		},
		{
			name: "second of two init containers running",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("one", "two")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					withName(terminated("Completed", 0, 0), "one"),
					withName(running(false, 0), "two"),
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("PodInitializing")}
				return p
			},
			ready: "0/1", status: "Init:1/2", restarts: "0",
		},
		{
			name: "init containers done, pod initializing",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				p.Spec.InitContainers = containers("init")
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{withName(terminated("Completed", 0, 0), "init")}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("PodInitializing")}
				return p
			},
			ready: "0/1", status: "PodInitializing", restarts: "0",
		},
		{
			name: "init container restarts stop counting once initialized",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Spec.InitContainers = containers("init")
				ics := withName(terminated("Completed", 0, 0), "init")
				ics.RestartCount = 5
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{lastTerminated(ics, time.Hour)}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{running(true, 0)}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, readyCondition(corev1.ConditionTrue)}
				return p
			},
			ready: "1/1", status: "Running", restarts: "0",
		},
		{
			name: "sidecar counted in ready and restarts",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy", RestartPolicy: &always}}
				sc := withName(running(true, 2), "proxy")
				sc.Started = ptr(true)
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{lastTerminated(sc, 10*time.Minute)}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{lastTerminated(running(true, 1), 3*time.Minute)}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, readyCondition(corev1.ConditionTrue)}
				return p
			},
			ready: "2/2", status: "Running", restarts: "3 (3m ago)",
		},
		{
			name: "sidecar not started yet",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodPending)
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "envoy", RestartPolicy: &always}}
				sc := withName(running(false, 0), "proxy")
				sc.Started = ptr(false)
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{sc}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{waiting("PodInitializing")}
				return p
			},
			ready: "0/2", status: "Init:0/1", restarts: "0",
		},
		{
			name: "completed",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodSucceeded)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0, 0)}
				return p
			},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "failed with a reason",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodFailed)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Error", 2, 0)}
				return p
			},
			ready: "0/1", status: "Error", restarts: "0",
		},
		{
			name: "killed by a signal",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodFailed)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("", 137, 9)}
				return p
			},
			ready: "0/1", status: "Signal:9", restarts: "0",
		},
		{
			name: "exit code without a reason",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodFailed)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("", 2, 0)}
				return p
			},
			ready: "0/1", status: "ExitCode:2", restarts: "0",
		},
		{
			name: "one container completed, another running and the pod ready",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Spec.Containers = containers("job", "server")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0, 0), running(true, 0)}
				p.Status.Conditions = []corev1.PodCondition{readyCondition(corev1.ConditionTrue)}
				return p
			},
			ready: "1/2", status: "Running", restarts: "0",
		},
		{
			name: "one container completed, another running, pod not ready",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Spec.Containers = containers("job", "server")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0, 0), running(true, 0)}
				p.Status.Conditions = []corev1.PodCondition{readyCondition(corev1.ConditionFalse)}
				return p
			},
			ready: "1/2", status: "NotReady", restarts: "0",
		},
		{
			name: "one container completed, another failed",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.Spec.Containers = containers("a", "b")
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0, 0), terminated("OOMKilled", 137, 0)}
				return p
			},
			ready: "0/2", status: "OOMKilled", restarts: "0",
		},
		{
			name: "evicted",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodFailed)
				p.Status.Reason = "Evicted"
				return p
			},
			ready: "0/1", status: "Evicted", restarts: "0",
		},
		{
			name: "terminating",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{running(true, 0)}
				return p
			},
			ready: "1/1", status: "Terminating", restarts: "0",
		},
		{
			name: "deleted after it completed",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodSucceeded)
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("Completed", 0, 0)}
				return p
			},
			ready: "0/1", status: "Completed", restarts: "0",
		},
		{
			name: "node lost",
			pod: func() *corev1.Pod {
				p := newPod(corev1.PodRunning)
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.Reason = "NodeLost"
				p.Status.ContainerStatuses = []corev1.ContainerStatus{running(true, 0)}
				return p
			},
			ready: "1/1", status: "Unknown", restarts: "0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rowCells(t, tt.pod())
			if c[1] != tt.ready || c[2] != tt.status || c[3] != tt.restarts {
				t.Errorf("READY, STATUS, RESTARTS = %q, %q, %q; want %q, %q, %q", c[1], c[2], c[3], tt.ready, tt.status, tt.restarts)
			}
		})
	}
}

func TestPodCells(t *testing.T) {
	p := newPod(corev1.PodRunning)
	p.Spec.Containers = containers("app", "sidecar")
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	p.Status.NominatedNodeName = "node2"
	p.Status.ContainerStatuses = []corev1.ContainerStatus{
		running(true, 0),
		lastTerminated(running(false, 3), 5*time.Minute),
	}
	p.Status.Conditions = []corev1.PodCondition{
		{Type: "example.com/lb", Status: corev1.ConditionTrue},
		{Type: "example.com/dns", Status: corev1.ConditionFalse},
	}
	checkCells(t, rowCells(t, p), []interface{}{
		"web", "1/2", "Running", "3 (5m ago)", "10m", "10.42.0.7", "node1", "node2", "1/2",
	})

	// Unset wide fields print <none>; the IP falls back to podIPs.
	q := newPod(corev1.PodPending)
	q.CreationTimestamp = metav1.Time{}
	q.Spec.NodeName = ""
	q.Status.PodIP = ""
	q.Status.PodIPs = nil
	checkCells(t, rowCells(t, q), []interface{}{
		"web", "0/1", "Pending", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>",
	})
	q.Status.PodIPs = []corev1.PodIP{{IP: "fd00::7"}}
	if got := rowCells(t, q)[5]; got != "fd00::7" {
		t.Errorf("IP = %v, want fd00::7", got)
	}
}

func TestPodRowConditions(t *testing.T) {
	for phase, want := range map[corev1.PodPhase]string{
		corev1.PodSucceeded: "Succeeded",
		corev1.PodFailed:    "Failed",
		corev1.PodRunning:   "",
	} {
		table, err := Table(newPod(phase), opts())
		if err != nil {
			t.Fatal(err)
		}
		conds := table.Rows[0].Conditions
		switch {
		case want == "" && len(conds) != 0:
			t.Errorf("%s: conditions %v, want none", phase, conds)
		case want != "" && (len(conds) != 1 || conds[0].Type != metav1.RowCompleted || conds[0].Status != metav1.ConditionTrue || conds[0].Reason != want):
			t.Errorf("%s: conditions %v, want Completed/%s", phase, conds, want)
		}
	}
}
