package controllers

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// The service load balancer controller gives LoadBalancer Services an
// address, as k3s's ServiceLB does where no cloud provides one: the
// InternalIPs of the Ready nodes go into status.loadBalancer.ingress
// (ipMode VIP), and every node's proxy (agent/proxy) answers on them at
// the service's port. So `kubectl get svc` shows an EXTERNAL-IP and `helm
// --wait` sees the Service ready. It follows the nodes: one that turns
// NotReady, goes, or carries node.kubernetes.io/exclude-from-external-
// load-balancers leaves the list. Services with a spec.loadBalancerClass
// belong to another controller and are left alone; a Service that stops
// being a LoadBalancer has its ingress cleared.

type serviceLB struct {
	cs       kubernetes.Interface
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
}

func newServiceLB(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	svcInf, nodeInf := f.Core().V1().Services(), f.Core().V1().Nodes()
	c := &serviceLB{
		cs: cs, services: svcInf.Lister(), nodes: nodeInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "service-lb"}),
		recorder: recorder, log: log.With("controller", "service-lb"),
	}
	f.addEventHandler(svcInf.Informer(), onAll(func(obj any) {
		if svc, ok := deletedObject[*corev1.Service](obj); ok && (svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0) {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}))
	f.addEventHandler(nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		DeleteFunc: func(any) { c.enqueueAll() },
		UpdateFunc: func(old, obj any) {
			// Heartbeats are most node updates: only what changes the
			// addresses counts.
			o, n := old.(*corev1.Node), obj.(*corev1.Node)
			if lbAddress(o) != lbAddress(n) {
				c.enqueueAll()
			}
		},
	})
	return c
}

func (c *serviceLB) name() string { return "service-lb" }

func (c *serviceLB) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 1, c.log, c.sync)
}

// enqueueAll queues every Service the controller has a say in.
func (c *serviceLB) enqueueAll() {
	svcs, _ := c.services.List(labels.Everything())
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) > 0 {
			c.queue.Add(svc.Namespace + "/" + svc.Name)
		}
	}
}

// lbAddress is the address a node gives LoadBalancer Services: its first
// InternalIP, if it is Ready and not excluded; "" otherwise.
func lbAddress(n *corev1.Node) string {
	if _, ok := n.Labels[corev1.LabelNodeExcludeBalancers]; ok {
		return ""
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return ""
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// ingress is the ingress a LoadBalancer Service should have: the nodes'
// addresses of its IP families, sorted.
func (c *serviceLB) ingress(svc *corev1.Service) ([]corev1.LoadBalancerIngress, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	var addrs []netip.Addr
	for _, n := range nodes {
		a, err := netip.ParseAddr(lbAddress(n))
		if err != nil {
			continue
		}
		family := corev1.IPv4Protocol
		if a.Is6() && !a.Is4In6() {
			family = corev1.IPv6Protocol
		}
		if slices.Contains(families, family) && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var out []corev1.LoadBalancerIngress
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)})
	}
	return out, nil
}

func (c *serviceLB) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.LoadBalancerClass != nil {
		return nil // another load balancer's
	}
	var want []corev1.LoadBalancerIngress
	isLB := svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if isLB {
		if want, err = c.ingress(svc); err != nil {
			return err
		}
	}
	have := svc.Status.LoadBalancer.Ingress
	if len(have) == 0 && len(want) == 0 || equality.Semantic.DeepEqual(have, want) {
		return nil
	}
	next := svc.DeepCopy()
	next.Status.LoadBalancer.Ingress = want
	if _, err := c.cs.CoreV1().Services(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if isLB {
		ips := make([]string, len(want))
		for i, in := range want {
			ips[i] = in.IP
		}
		c.log.Info("set the load balancer's addresses", "service", key, "ingress", ips)
		c.recorder.Eventf(svc, corev1.EventTypeNormal, "UpdatedIngressIP", "LoadBalancer Ingress IP addresses updated: %s", strings.Join(ips, ", "))
	} else {
		c.log.Info("cleared the load balancer's addresses: not a LoadBalancer any more", "service", key)
		c.recorder.Event(svc, corev1.EventTypeNormal, "DeletedLoadBalancer", "Deleted load balancer")
	}
	return nil
}
