package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"labctl/internal/apitest"
)

// startAPI serves the API over an in-memory store for the test.
func startAPI(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(apitest.Start(t))
}

func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = fn(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func TestNodeRegistrationAndHeartbeat(t *testing.T) {
	cs := startAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := record.NewBroadcaster(record.WithContext(ctx))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	t.Cleanup(events.Shutdown)
	var notReady atomic.Pointer[error]
	a, err := NewNodeAgent(cs, NodeConfig{
		Name: "lab1", IP: netip.MustParseAddr("192.0.2.10"), ControlPlane: true, DataDir: t.TempDir(),
		Labels: map[string]string{"lab": "yes"}, RuntimeVersion: "containerd://1.6.20",
		Ready: func() error {
			if e := notReady.Load(); e != nil {
				return *e
			}
			return nil
		},
		Recorder:      events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: "lab1"}),
		LeaseInterval: 100 * time.Millisecond, StatusInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var node *corev1.Node
	eventually(t, "the node registered and Ready", func() error {
		node, err = cs.CoreV1().Nodes().Get(ctx, "lab1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && c.Reason == "KubeletReady" {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", node.Status.Conditions)
	})
	for k, v := range map[string]string{"kubernetes.io/hostname": "lab1", "kubernetes.io/os": "linux",
		"node-role.kubernetes.io/control-plane": "true", "lab": "yes"} {
		if node.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, node.Labels[k], v)
		}
	}
	st := node.Status
	if st.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" || st.NodeInfo.KernelVersion == "" || st.NodeInfo.OSImage == "" {
		t.Errorf("node info %+v", st.NodeInfo)
	}
	if len(st.Addresses) != 2 || st.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}) {
		t.Errorf("addresses %v", st.Addresses)
	}
	capMem, allocMem := st.Capacity[corev1.ResourceMemory], st.Allocatable[corev1.ResourceMemory]
	capMem.Sub(resource.MustParse("100Mi"))
	if capMem.Cmp(allocMem) != 0 || st.Capacity.Cpu().IsZero() || st.Capacity.Pods().Value() != 110 {
		t.Errorf("capacity %v, allocatable %v", st.Capacity, st.Allocatable)
	}

	// The heartbeat: a Lease owned by the node, renewed.
	lease, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, "lab1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID || *lease.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease %+v", lease)
	}
	first := lease.Spec.RenewTime.Time
	eventually(t, "the lease renewed", func() error {
		l, err := cs.CoordinationV1().Leases("kube-node-lease").Get(ctx, "lab1", metav1.GetOptions{})
		if err == nil && !l.Spec.RenewTime.After(first) {
			return fmt.Errorf("renewed at %v", l.Spec.RenewTime)
		}
		return err
	})

	// Not ready: the condition says why, and an event says so.
	why := errors.New("container runtime network not ready: cni0 is missing")
	notReady.Store(&why)
	eventually(t, "the node NotReady", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, "lab1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionFalse && c.Reason == "KubeletNotReady" && c.Message == why.Error() {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.Status.Conditions)
	})
	eventually(t, "the node's events", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=lab1"})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range evs.Items {
			seen[e.Reason] = true
		}
		for _, r := range []string{"Starting", "NodeHasSufficientMemory", "NodeAllocatableEnforced", "NodeReady", "NodeNotReady"} {
			if !seen[r] {
				return fmt.Errorf("no %s event in %v", r, seen)
			}
		}
		return nil
	})
}
