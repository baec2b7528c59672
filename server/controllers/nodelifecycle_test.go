package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"labctl/server/controllers"
)

// runTunedControllers runs the manager with short lifecycle timings until
// the test ends.
func runTunedControllers(t *testing.T, cfg *rest.Config, tune controllers.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tune.REST, tune.Identity = cfg, "server-a"
	tune.LeaseDuration, tune.RenewDeadline, tune.RetryPeriod = 2*time.Second, time.Second, 200*time.Millisecond
	go func() {
		defer close(done)
		if err := controllers.Run(ctx, tune); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// kubelet stands in for the kubelets of some nodes: it renews their
// Leases in kube-node-lease while they beat.
type kubelet struct {
	cs   kubernetes.Interface
	mu   sync.Mutex
	beat map[string]bool
	stop chan struct{}
	wg   sync.WaitGroup
}

func startKubelet(t *testing.T, cs kubernetes.Interface) *kubelet {
	k := &kubelet{cs: cs, beat: map[string]bool{}, stop: make(chan struct{})}
	k.wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-k.stop:
				return
			case <-tick.C:
			}
			k.mu.Lock()
			var names []string
			for n, on := range k.beat {
				if on {
					names = append(names, n)
				}
			}
			k.mu.Unlock()
			for _, n := range names {
				k.renew(n)
			}
		}
	})
	t.Cleanup(func() { close(k.stop); k.wg.Wait() })
	return k
}

func (k *kubelet) renew(name string) {
	ctx := context.Background()
	lease, err := k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &now
	_, _ = k.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, lease, metav1.UpdateOptions{})
}

func (k *kubelet) set(name string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.beat[name] = on
}

// readyNode registers a node as a kubelet does: Ready, with its Lease.
func readyNode(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	now := metav1.Now()
	n := node(name, "4")
	n.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renew := metav1.NewMicroTime(time.Now())
	seconds := int32(40)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &seconds, RenewTime: &renew},
	}
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// setPodRunning posts a running pod's status, Ready or not, as its kubelet would.
func setPodRunning(t *testing.T, cs kubernetes.Interface, ns, name string, ready bool) {
	t.Helper()
	ctx := context.Background()
	p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = append(p.Status.Conditions,
		corev1.PodCondition{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
		corev1.PodCondition{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now})
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func findTaint(n *corev1.Node, key string, effect corev1.TaintEffect) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

func findCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// hasEvent waits for an event about name with reason and message.
func hasEvent(t *testing.T, cs kubernetes.Interface, ns, name, reason, message string) {
	t.Helper()
	eventually(t, reason+" event on "+name, func() error {
		evs, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Message == message {
				return nil
			}
		}
		return fmt.Errorf("events %v", evs.Items)
	})
}

func TestNodeLifecycle(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	k := startKubelet(t, cs)
	readyNode(t, cs, "alive")
	readyNode(t, cs, "dead")
	k.set("alive", true)
	// A node whose kubelet never posted a status: counted from its creation.
	// In a zone of its own, since each zone taints one node per 10 s.
	never := node("never", "4")
	never.Labels[corev1.LabelTopologyZone] = "b"
	if _, err := cs.CoreV1().Nodes().Create(ctx, never, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	one := int64(1)
	pods := map[string][]corev1.Toleration{
		"brief":    {{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &one}},
		"forever":  {{Operator: corev1.TolerationOpExists}},
		"defaults": nil,
	}
	for name, tolerations := range pods {
		p := pod(name, "100m", nil)
		p.Spec.NodeName, p.Spec.Tolerations = "dead", tolerations
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setPodRunning(t, cs, "default", name, true)
	}
	// The API server's DefaultTolerationSeconds: 300 s for what a pod does not tolerate.
	got, _ := cs.CoreV1().Pods("default").Get(ctx, "defaults", metav1.GetOptions{})
	if tl := got.Spec.Tolerations; len(tl) != 2 || tl[0].Key != corev1.TaintNodeNotReady || tl[1].Key != corev1.TaintNodeUnreachable ||
		tl[1].TolerationSeconds == nil || *tl[1].TolerationSeconds != 300 || tl[1].Effect != corev1.TaintEffectNoExecute {
		t.Fatalf("default tolerations %+v", tl)
	}
	if got, _ := cs.CoreV1().Pods("default").Get(ctx, "forever", metav1.GetOptions{}); len(got.Spec.Tolerations) != 1 {
		t.Fatalf("a pod tolerating everything got more: %+v", got.Spec.Tolerations)
	}

	runTunedControllers(t, cfg, controllers.Config{NodeMonitorPeriod: 200 * time.Millisecond, NodeMonitorGracePeriod: 2 * time.Second, NodeStartupGracePeriod: 2 * time.Second})

	eventually(t, "the silent node Unknown and unreachable", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, "dead", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && (c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status.") {
				return fmt.Errorf("ready %+v", c)
			}
			if c.Type == corev1.NodeMemoryPressure && c.Status != corev1.ConditionUnknown {
				return fmt.Errorf("memory pressure %+v", c)
			}
		}
		if findTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) == nil || findTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) == nil {
			return fmt.Errorf("taints %+v", n.Spec.Taints)
		}
		return nil
	})
	eventually(t, "the node never heard from Unknown and unreachable", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, "never", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var ready *corev1.NodeCondition
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeReady {
				ready = &n.Status.Conditions[i]
			}
		}
		if ready == nil || ready.Status != corev1.ConditionUnknown || ready.Reason != "NodeStatusNeverUpdated" || ready.Message != "Kubelet never posted node status." ||
			!ready.LastHeartbeatTime.Equal(&n.CreationTimestamp) || len(n.Status.Conditions) != 4 {
			return fmt.Errorf("conditions %+v", n.Status.Conditions)
		}
		if findTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) == nil {
			return fmt.Errorf("taints %+v", n.Spec.Taints)
		}
		return nil
	})
	hasEvent(t, cs, "default", "dead", "NodeNotReady", "Node dead status is now: NodeNotReady")
	hasEvent(t, cs, "default", "alive", "RegisteredNode", "Node alive event: Registered Node alive in Controller")

	eventually(t, "the pod tolerating the taint for 1 s evicted", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "brief", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := findCondition(p, corev1.DisruptionTarget)
		if p.DeletionTimestamp == nil || c == nil || c.Status != corev1.ConditionTrue || c.Reason != "DeletionByTaintManager" {
			return fmt.Errorf("deletion %v, condition %+v", p.DeletionTimestamp, c)
		}
		return nil
	})
	hasEvent(t, cs, "default", "brief", "TaintManagerEviction", "Marking for deletion Pod default/brief")
	hasEvent(t, cs, "default", "forever", "NodeNotReady", "Node is not ready")
	for _, name := range []string{"forever", "defaults"} {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp != nil {
			t.Fatalf("%s: %v, deletion %v", name, err, p.DeletionTimestamp)
		}
		if c := findCondition(p, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
			t.Fatalf("%s ready %+v", name, c)
		}
	}
	if n, _ := cs.CoreV1().Nodes().Get(ctx, "alive", metav1.GetOptions{}); len(n.Spec.Taints) != 0 {
		t.Fatalf("the beating node tainted: %+v", n.Spec.Taints)
	}

	// The kubelet is back: its node is Ready and untainted again.
	k.set("dead", true)
	n, err := cs.CoreV1().Nodes().Get(ctx, "dead", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	for i, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			n.Status.Conditions[i] = corev1.NodeCondition{Type: c.Type, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}
		case corev1.NodeMemoryPressure:
			// And short of memory: TaintNodesByCondition.
			n.Status.Conditions[i] = corev1.NodeCondition{Type: c.Type, Status: corev1.ConditionTrue, Reason: "KubeletHasInsufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now}
		}
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node untainted", func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, "dead", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(n.Spec.Taints) != 1 || findTaint(n, corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule) == nil {
			return fmt.Errorf("taints %+v", n.Spec.Taints)
		}
		return nil
	})
}
