package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// fakeNodes stands in for kubelets while the controller and scheduler
// chapters are tested without containers: it registers Node objects,
// renews their Leases, reports the pods bound to them Running and Ready,
// and finishes their graceful deletions, through the API as a kubelet
// would. Nothing runs; only the API sees nodes at work.
type fakeNodes struct {
	cs    kubernetes.Interface
	names map[string]bool
}

// startFakeNodes registers the nodes (name -> labels) and serves them
// until t ends.
func startFakeNodes(t *testing.T, c *cluster, nodes map[string]map[string]string) *fakeNodes {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	f := &fakeNodes{cs: kubernetes.NewForConfigOrDie(cfg), names: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for name, labels := range nodes {
		f.names[name] = true
		l := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
		for k, v := range labels {
			l[k] = v
		}
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
			Status: corev1.NodeStatus{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
				NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0-fake", ContainerRuntimeVersion: "fake://0",
					OperatingSystem: "linux", Architecture: "amd64"},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
					Message: "kubelet is posting ready status", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
			},
		}
		created, err := f.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("register node %s: %v", name, err)
		}
		created.Status = n.Status
		if _, err := f.cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("node %s status: %v", name, err)
		}
		go f.heartbeat(ctx, name)
	}
	inf := informers.NewSharedInformerFactory(f.cs, 0)
	pods := inf.Core().V1().Pods().Informer()
	pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { f.tend(ctx, o.(*corev1.Pod)) },
		UpdateFunc: func(_, o any) { f.tend(ctx, o.(*corev1.Pod)) },
	})
	inf.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		inf.Shutdown()
	})
	return f
}

// heartbeat renews the node's Lease as a kubelet does, every 10 s.
func (f *fakeNodes) heartbeat(ctx context.Context, name string) {
	leases := f.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, _ = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now}}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.RenewTime = &now
			_, _ = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// tend does for a pod what its kubelet would: start it, or finish its
// deletion.
func (f *fakeNodes) tend(ctx context.Context, p *corev1.Pod) {
	if !f.names[p.Spec.NodeName] {
		return
	}
	if p.DeletionTimestamp != nil {
		err := f.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			fmt.Printf("fake node: finish deleting %s/%s: %v\n", p.Namespace, p.Name, err)
		}
		return
	}
	if p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return
	}
	now := metav1.Now()
	st := p.DeepCopy()
	st.Status.Phase = corev1.PodRunning
	st.Status.StartTime = &now
	st.Status.PodIP, st.Status.HostIP = "10.42.0.10", "127.0.0.1"
	st.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	st.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		st.Status.ContainerStatuses = append(st.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr.To(true),
			ContainerID: "containerd://" + string(p.UID)[:8] + c.Name,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := f.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil &&
		!apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		fmt.Printf("fake node: start %s/%s: %v\n", p.Namespace, p.Name, err)
	}
}
