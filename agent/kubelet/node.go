// Package kubelet is labctl's node agent, the course's kubelet: it
// registers this machine as a Node, keeps its Lease and status fresh,
// and runs the pods the scheduler binds to it.
//
// The agent reaches the server only through the API, with the node's
// own credentials, so the same code serves the server's own node and a
// node on another machine (`labctl agent --join`).
//
// # The node (node.go)
//
// NodeAgent registers the Node as upstream's kubelet does: the
// kubernetes.io/hostname, os and arch labels (and their beta twins), the
// control-plane role on the server's node, the InternalIP and Hostname
// addresses, capacity from the machine (CPUs, memory, the data
// directory's filesystem, 110 pods) and allocatable less upstream's
// default eviction thresholds (100Mi of memory, 10% of the disk), and
// the system info (kernel, OS image, container runtime, kubelet
// version). It then renews the node's Lease in kube-node-lease every
// 10 s (the heartbeat the node lifecycle controller watches) and posts
// the status when something changed or every 5 minutes, with the Ready,
// MemoryPressure, DiskPressure and PIDPressure conditions and the events
// `kubectl describe node` shows (Starting, NodeHasSufficientMemory, ...,
// NodeReady).
package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// NodeConfig configures the node's registration and heartbeat.
type NodeConfig struct {
	// Name is the node's name; required.
	Name string
	// IP is the node's InternalIP; required.
	IP netip.Addr
	// Hostname is the Hostname address (default: Name).
	Hostname string
	// ControlPlane marks the server's own node with the control-plane
	// role label.
	ControlPlane bool
	// Labels are added to the node's labels (--node-label).
	Labels map[string]string
	// Taints are set when the node registers (--node-taint).
	Taints []corev1.Taint
	// DataDir's filesystem is the node's ephemeral storage; required.
	DataDir string
	// RuntimeVersion is the container runtime, as "containerd://1.6.20".
	RuntimeVersion string
	// KubeletVersion is the version the node reports (default v1.37.2).
	KubeletVersion string
	// Ready says whether the node can run pods: nil when it can, else
	// why not (the Ready condition's message). Nil means always ready.
	Ready func() error
	// Recorder receives the node's events; nil records none.
	Recorder record.EventRecorder
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// LeaseInterval is how often the Lease is renewed (default 10 s);
	// StatusInterval how often the status is checked for changes
	// (default 10 s); ReportInterval how often it is posted anyway
	// (default 5 min), as the kubelet's defaults.
	LeaseInterval, StatusInterval, ReportInterval time.Duration
	// machineRoot prefixes /proc, /sys and /etc, for tests.
	machineRoot string
}

// leaseDuration is the Lease's leaseDurationSeconds, the kubelet's.
const leaseDuration = 40

// NodeAgent keeps the Node and its Lease.
type NodeAgent struct {
	cs  kubernetes.Interface
	cfg NodeConfig
	m   machine

	lastPosted time.Time
	lastReady  *bool
	// changed asks for a status check now (Changed).
	changed chan struct{}
}

// Allocatable is what the node offers pods, as its status says.
func (a *NodeAgent) Allocatable() corev1.ResourceList { return a.m.allocatable() }

// Changed tells the agent that what its Ready func says may have changed,
// so that the node's status is checked at once rather than at the next
// StatusInterval.
func (a *NodeAgent) Changed() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// NewNodeAgent reads the machine and makes the agent; Run registers.
func NewNodeAgent(cs kubernetes.Interface, cfg NodeConfig) (*NodeAgent, error) {
	if cfg.Name == "" || !cfg.IP.IsValid() || cfg.DataDir == "" {
		return nil, fmt.Errorf("kubelet: the node needs a name, an IP and a data directory")
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Name
	}
	if cfg.KubeletVersion == "" {
		cfg.KubeletVersion = "v1.37.2"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = 10 * time.Second
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = 5 * time.Minute
	}
	m, err := readMachine(cfg.machineRoot, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m.info.ContainerRuntimeVersion = cfg.RuntimeVersion
	m.info.KubeletVersion = cfg.KubeletVersion
	return &NodeAgent{cs: cs, cfg: cfg, m: m, changed: make(chan struct{}, 1)}, nil
}

// Run registers the node, then keeps its Lease and status until ctx
// ends. Failures to reach the API are logged and retried.
func (a *NodeAgent) Run(ctx context.Context) error {
	for {
		err := a.register(ctx)
		if err == nil {
			break
		}
		a.cfg.Logger.Warn("cannot register the node; retrying", "node", a.cfg.Name, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	a.event(corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	lease := time.NewTicker(a.cfg.LeaseInterval)
	defer lease.Stop()
	status := time.NewTicker(a.cfg.StatusInterval)
	defer status.Stop()
	a.renewLease(ctx)
	a.postStatus(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lease.C:
			a.renewLease(ctx)
		case <-status.C:
			a.postStatus(ctx, false)
		case <-a.changed:
			a.postStatus(ctx, false)
		}
	}
}

func (a *NodeAgent) labels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:               a.cfg.Hostname,
		corev1.LabelOSStable:               a.m.info.OperatingSystem,
		corev1.LabelArchStable:             a.m.info.Architecture,
		"beta.kubernetes.io/os":            a.m.info.OperatingSystem,
		"beta.kubernetes.io/arch":          a.m.info.Architecture,
		"node.kubernetes.io/instance-type": "labctl",
	}
	if a.cfg.ControlPlane {
		l["node-role.kubernetes.io/control-plane"] = "true"
	}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	return l
}

// register creates the Node, or brings an existing one (this machine's
// from an earlier run) up to date with the machine.
func (a *NodeAgent) register(ctx context.Context) error {
	nodes := a.cs.CoreV1().Nodes()
	n, err := nodes.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		n = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Labels: a.labels(),
				Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
			Spec: corev1.NodeSpec{Taints: a.cfg.Taints},
		}
		if n, err = nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %q: %w", a.cfg.Name, err)
		}
		a.cfg.Logger.Info("node registered", "node", a.cfg.Name)
	case err != nil:
		return fmt.Errorf("get node %q: %w", a.cfg.Name, err)
	default:
		want := n.DeepCopy()
		for k, v := range a.labels() {
			if want.Labels == nil {
				want.Labels = map[string]string{}
			}
			want.Labels[k] = v
		}
		if !equality.Semantic.DeepEqual(want.Labels, n.Labels) {
			if _, err := nodes.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update node %q: %w", a.cfg.Name, err)
			}
		}
	}
	return nil
}

// renewLease is the heartbeat: the node's Lease, owned by the Node so
// that it goes with it.
func (a *NodeAgent) renewLease(ctx context.Context) {
	leases := a.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		owner := []metav1.OwnerReference{}
		if n, err := a.cs.CoreV1().Nodes().Get(ctx, a.cfg.Name, metav1.GetOptions{}); err == nil {
			owner = append(owner, metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID})
		}
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, OwnerReferences: owner},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(a.cfg.Name), LeaseDurationSeconds: ptr.To[int32](leaseDuration),
				RenewTime: &now},
		}, metav1.CreateOptions{})
	case err == nil:
		l.Spec.RenewTime = &now
		l.Spec.HolderIdentity = ptr.To(a.cfg.Name)
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		a.cfg.Logger.Warn("cannot renew the node's lease", "node", a.cfg.Name, "err", err)
	}
}

// conditions are the node's conditions now, with upstream's reasons and
// messages.
func (a *NodeAgent) conditions() ([]corev1.NodeCondition, bool) {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg}
	}
	ready := cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	isReady := true
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(); err != nil {
			ready = cond(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", err.Error())
			isReady = false
		}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}, isReady
}

// postStatus writes the node's status when it changed, when forced, or
// when ReportInterval has passed since the last post.
func (a *NodeAgent) postStatus(ctx context.Context, force bool) {
	nodes := a.cs.CoreV1().Nodes()
	n, err := nodes.Get(ctx, a.cfg.Name, metav1.GetOptions{})
	if err != nil {
		if ctx.Err() == nil {
			a.cfg.Logger.Warn("cannot read the node", "node", a.cfg.Name, "err", err)
		}
		if apierrors.IsNotFound(err) {
			_ = a.register(ctx) // deleted while we ran: register again, as the kubelet does
		}
		return
	}
	now := metav1.Now()
	conds, ready := a.conditions()
	next := n.DeepCopy()
	next.Status.Capacity = a.m.capacity
	next.Status.Allocatable = a.m.allocatable()
	next.Status.NodeInfo = a.m.info
	next.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: a.cfg.IP.String()},
		{Type: corev1.NodeHostName, Address: a.cfg.Hostname},
	}
	next.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	changed := false
	for i, c := range conds {
		c.LastHeartbeatTime = now
		c.LastTransitionTime = now
		for _, old := range n.Status.Conditions {
			if old.Type == c.Type {
				if old.Status == c.Status {
					c.LastTransitionTime = old.LastTransitionTime
				}
				if old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message {
					changed = true
				}
			}
		}
		conds[i] = c
	}
	if len(n.Status.Conditions) != len(conds) {
		changed = true
	}
	next.Status.Conditions = conds
	if !changed && !force && time.Since(a.lastPosted) < a.cfg.ReportInterval &&
		equality.Semantic.DeepEqual(n.Status.Capacity, next.Status.Capacity) &&
		equality.Semantic.DeepEqual(n.Status.Addresses, next.Status.Addresses) {
		return
	}
	if _, err := nodes.UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		if ctx.Err() == nil {
			a.cfg.Logger.Warn("cannot post the node's status", "node", a.cfg.Name, "err", err)
		}
		return
	}
	a.lastPosted = time.Now()
	if a.lastReady == nil {
		for _, r := range []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"} {
			a.event(corev1.EventTypeNormal, r, fmt.Sprintf("Node %s status is now: %s", a.cfg.Name, r))
		}
		a.event(corev1.EventTypeNormal, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
	}
	if a.lastReady == nil || *a.lastReady != ready {
		reason := "NodeReady"
		if !ready {
			reason = "NodeNotReady"
		}
		a.event(corev1.EventTypeNormal, reason, fmt.Sprintf("Node %s status is now: %s", a.cfg.Name, reason))
		a.lastReady = &ready
	}
}

// event records an event on the node, as the kubelet's source.
func (a *NodeAgent) event(eventType, reason, msg string) {
	if a.cfg.Recorder == nil {
		return
	}
	// The kubelet names its node by name in the UID field too.
	ref := &corev1.ObjectReference{Kind: "Node", Name: a.cfg.Name, UID: types.UID(a.cfg.Name)}
	a.cfg.Recorder.Event(ref, eventType, reason, msg)
}
