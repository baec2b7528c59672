package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// The node IPAM controller gives each Node a range of pod addresses, as
// upstream's range allocator (pkg/controller/nodeipam with
// --allocate-node-cidrs) does: a /24 of the cluster CIDR (--cluster-cidr,
// default 10.42.0.0/16, so 256 nodes; a /64 of an IPv6 one) in
// spec.podCIDR and spec.podCIDRs, which the node's agent gives its CNI
// bridge (networking/). A range is never given twice: at start the
// controller rebuilds the set in use from every Node, and a range goes
// back only when its Node is deleted. Ranges are handed out in turn from
// after the last one given, so a range just freed is not reused at once.
// When none is left the Node gets a CIDRAssignmentFailed event and waits
// until a Node is deleted.

const defaultClusterCIDR = "10.42.0.0/16"

type nodeIPAM struct {
	cs       kubernetes.Interface
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger

	cluster  netip.Prefix
	nodeBits int
	count    *big.Int // ranges in the cluster CIDR

	mu      sync.Mutex
	owner   map[netip.Prefix]string   // range → the node that has it
	held    map[string][]netip.Prefix // node → its ranges
	next    *big.Int                  // where the next search starts
	waiting bool                      // a node found the cluster CIDR full
}

func newNodeIPAM(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, cfg Config) controller {
	nodeInf := f.Core().V1().Nodes()
	cluster := cfg.ClusterCIDR
	if !cluster.IsValid() {
		cluster = netip.MustParsePrefix(defaultClusterCIDR)
	}
	cluster = cluster.Masked()
	nodeBits := 24
	if cluster.Addr().Is6() {
		nodeBits = 64
	}
	nodeBits = max(nodeBits, cluster.Bits())
	c := &nodeIPAM{
		cs: cs, nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "node-ipam"}),
		recorder: recorder, log: cfg.Logger.With("controller", "node-ipam"),
		cluster: cluster, nodeBits: nodeBits,
		count: new(big.Int).Lsh(big.NewInt(1), uint(nodeBits-cluster.Bits())),
		owner: map[netip.Prefix]string{}, held: map[string][]netip.Prefix{}, next: new(big.Int),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue,
		UpdateFunc: func(old, o any) {
			// A node without a range tries again on its updates, unless
			// the cluster CIDR is full: then a node's deletion wakes it.
			on, nn := old.(*corev1.Node), o.(*corev1.Node)
			if (nn.Spec.PodCIDR == "" && !c.full()) || on.Spec.PodCIDR != nn.Spec.PodCIDR ||
				fmt.Sprint(on.Spec.PodCIDRs) != fmt.Sprint(nn.Spec.PodCIDRs) {
				enqueue(o)
			}
		},
		DeleteFunc: enqueue,
	})
	return c
}

func (c *nodeIPAM) name() string { return "node-ipam" }

func (c *nodeIPAM) run(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		c.queue.ShutDown()
		return
	}
	// Every range in use, before any is handed out.
	nodes, _ := c.nodes.List(labels.Everything())
	for _, n := range nodes {
		c.occupy(n)
	}
	runWorkers(ctx, c.queue, c.synced, 1, c.log, c.sync)
}

func (c *nodeIPAM) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.release(name)
		return nil
	}
	if err != nil {
		return err
	}
	if node.Spec.PodCIDR != "" || len(node.Spec.PodCIDRs) > 0 {
		c.occupy(node)
		return nil
	}
	cidr, ok := c.allocate(name)
	if !ok {
		c.log.Warn("no pod CIDR left for the node", "node", name, "clusterCIDR", c.cluster)
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeWarning, "CIDRAssignmentFailed",
			"Failed to allocate a pod CIDR to node %s: the cluster CIDR %s has no /%d left", name, c.cluster, c.nodeBits)
		return nil // tried again when a node goes
	}
	n := node.DeepCopy()
	n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr.String(), []string{cidr.String()}
	if _, err := c.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			c.release(name)
			return nil
		}
		return err // the range stays held for the node's next try
	}
	c.log.Info("gave the node a pod CIDR", "node", name, "podCIDR", cidr)
	return nil
}

// occupy records the ranges node has as its own, replacing what the
// controller held for it.
func (c *nodeIPAM) occupy(node *corev1.Node) {
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	var mine []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Masked().Overlaps(c.cluster) {
			continue // not from the cluster CIDR: cannot collide
		}
		mine = append(mine, p.Masked())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(node.Name)
	for _, p := range mine {
		if other, ok := c.owner[p]; ok && other != node.Name {
			c.log.Warn("two nodes have the same pod CIDR", "podCIDR", p, "node", node.Name, "other", other)
			continue
		}
		c.owner[p] = node.Name
	}
	if len(mine) > 0 {
		c.held[node.Name] = mine
	}
}

func (c *nodeIPAM) release(name string) {
	c.mu.Lock()
	freed := len(c.held[name]) > 0
	c.releaseLocked(name)
	waiting := c.waiting && freed
	if waiting {
		c.waiting = false
	}
	c.mu.Unlock()
	if waiting {
		// A node waits for a range: every node without one tries again.
		nodes, _ := c.nodes.List(labels.Everything())
		for _, n := range nodes {
			if n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) == 0 {
				c.queue.Add(n.Name)
			}
		}
	}
}

func (c *nodeIPAM) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}

func (c *nodeIPAM) releaseLocked(name string) {
	for _, p := range c.held[name] {
		if c.owner[p] == name {
			delete(c.owner, p)
		}
	}
	delete(c.held, name)
}

// allocate reserves a free range for name (the one it holds already, if
// any).
func (c *nodeIPAM) allocate(name string) (netip.Prefix, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.held[name]; len(h) > 0 {
		return h[0], true
	}
	i := new(big.Int).Set(c.next)
	one := big.NewInt(1)
	for tried := new(big.Int); tried.Cmp(c.count) < 0; tried.Add(tried, one) {
		p := c.nth(i)
		i.Add(i, one)
		if i.Cmp(c.count) >= 0 {
			i.SetInt64(0)
		}
		if c.taken(p) {
			continue
		}
		c.next.Set(i)
		c.owner[p] = name
		c.held[name] = []netip.Prefix{p}
		return p, true
	}
	c.waiting = true
	return netip.Prefix{}, false
}

// taken tells whether p overlaps a range in use.
func (c *nodeIPAM) taken(p netip.Prefix) bool {
	if _, ok := c.owner[p]; ok {
		return true
	}
	for q := range c.owner {
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

// nth is the i-th range of the cluster CIDR.
func (c *nodeIPAM) nth(i *big.Int) netip.Prefix {
	base := c.cluster.Addr().AsSlice()
	total := len(base) * 8
	v := new(big.Int).SetBytes(base)
	v.Add(v, new(big.Int).Lsh(i, uint(total-c.nodeBits)))
	b := v.FillBytes(make([]byte, len(base)))
	addr, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(addr, c.nodeBits)
}
