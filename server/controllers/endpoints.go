package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// The endpoints controller keeps, for every Service with a selector, the
// Endpoints object and an EndpointSlice listing the pods behind it: ready
// pods as addresses, the others as not-ready addresses (or as addresses,
// with publishNotReadyAddresses), with each service port resolved against
// the pod's named container ports. This is what the proxy and CoreDNS
// read, and what kubectl get endpoints shows.

// managedBy marks the EndpointSlices this controller owns, as upstream's.
const managedBy = "endpointslice-controller.k8s.io"

type endpoints struct {
	cs       kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	eps      corelisters.EndpointsLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
}

func newEndpoints(cs kubernetes.Interface, f informerSet, log *slog.Logger) controller {
	svcInf, podInf := f.Core().V1().Services(), f.Core().V1().Pods()
	epInf, sliceInf := f.Core().V1().Endpoints(), f.Discovery().V1().EndpointSlices()
	c := &endpoints{
		cs: cs, services: svcInf.Lister(), pods: podInf.Lister(), eps: epInf.Lister(), slices: sliceInf.Lister(),
		synced: []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoints"}),
		log: log.With("controller", "endpoints"),
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	f.addEventHandler(svcInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue})
	podChanged := func(obj any) {
		pod, ok := deletedObject[*corev1.Pod](obj)
		if !ok {
			return
		}
		svcs, _ := c.services.Services(pod.Namespace).List(labels.Everything())
		for _, svc := range svcs {
			if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				c.queue.Add(svc.Namespace + "/" + svc.Name)
			}
		}
	}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: podChanged, DeleteFunc: podChanged,
		UpdateFunc: func(old, obj any) { podChanged(old); podChanged(obj) },
	})
	return c
}

func (c *endpoints) name() string { return "endpoints" }

func (c *endpoints) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 2, c.log, c.sync)
}

func (c *endpoints) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The Endpoints go with the Service (the slices are owned by it).
		err := c.cs.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err != nil || len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return err // without a selector, the user keeps the Endpoints
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	if err := c.syncEndpoints(ctx, svc, pods); err != nil {
		return err
	}
	return c.syncSlice(ctx, svc, pods)
}

// usable reports whether a pod belongs in the endpoints at all, and
// whether it counts as ready.
func usable(svc *corev1.Service, pod *corev1.Pod) (in, ready bool) {
	if pod.Status.PodIP == "" || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, false
	}
	if pod.DeletionTimestamp != nil && !svc.Spec.PublishNotReadyAddresses {
		return false, false
	}
	return true, svc.Spec.PublishNotReadyAddresses || podReady(pod) && pod.DeletionTimestamp == nil
}

// portFor resolves a service port's targetPort against a pod.
func portFor(sp corev1.ServicePort, pod *corev1.Pod) (int32, bool) {
	if sp.TargetPort.Type == intstr.Int {
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == sp.TargetPort.StrVal && p.Protocol == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

func (c *endpoints) syncEndpoints(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod) error {
	// One subset per set of resolved ports; pods resolve them alike in
	// practice, so group by the ports each pod gets.
	type group struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	groups := map[string]*group{}
	var order []string
	for _, pod := range pods {
		in, ready := usable(svc, pod)
		if !in {
			continue
		}
		var ports []corev1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			if port, ok := portFor(sp, pod); ok {
				ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
			}
		}
		if len(ports) == 0 && len(svc.Spec.Ports) > 0 {
			continue
		}
		k := fmt.Sprint(ports)
		g, ok := groups[k]
		if !ok {
			g = &group{ports: ports}
			groups[k] = g
			order = append(order, k)
		}
		addr := corev1.EndpointAddress{IP: pod.Status.PodIP, NodeName: ptr.To(pod.Spec.NodeName),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}}
		addr.Hostname = endpointHostname(svc, pod)
		if ready {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	var subsets []corev1.EndpointSubset
	for _, k := range order {
		g := groups[k]
		subsets = append(subsets, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels},
		Subsets:    subsets,
	}
	cur, err := c.eps.Endpoints(svc.Namespace).Get(svc.Name)
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.cs.CoreV1().Endpoints(svc.Namespace).Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	case err != nil:
		return err
	case equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) && equality.Semantic.DeepEqual(cur.Labels, want.Labels):
		return nil
	}
	next := cur.DeepCopy()
	next.Subsets, next.Labels = want.Subsets, want.Labels
	_, err = c.cs.CoreV1().Endpoints(svc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // the informer brings the newer version, and a new sync
	}
	return err
}

func (c *endpoints) syncSlice(ctx context.Context, svc *corev1.Service, pods []*corev1.Pod) error {
	var ports []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		p := discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(sp.Protocol), AppProtocol: sp.AppProtocol}
		// A slice has one port list: the first usable pod decides named ports.
		for _, pod := range pods {
			if in, _ := usable(svc, pod); in {
				if n, ok := portFor(sp, pod); ok {
					p.Port = ptr.To(n)
					break
				}
			}
		}
		ports = append(ports, p)
	}
	var eps []discoveryv1.Endpoint
	for _, pod := range pods {
		in, ready := usable(svc, pod)
		if !in {
			continue
		}
		e := discoveryv1.Endpoint{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(podReady(pod)), Terminating: ptr.To(pod.DeletionTimestamp != nil)},
			NodeName:   ptr.To(pod.Spec.NodeName),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if h := endpointHostname(svc, pod); h != "" {
			e.Hostname = &h
		}
		eps = append(eps, e)
	}
	yes := true
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: svc.Name + "-",
			Namespace:    svc.Namespace,
			Labels:       map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: managedBy},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       ports,
	}
	existing, err := c.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: managedBy}))
	if err != nil {
		return err
	}
	if len(existing) == 0 {
		_, err := c.cs.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	cur := existing[0]
	for _, extra := range existing[1:] {
		if err := c.cs.DiscoveryV1().EndpointSlices(svc.Namespace).Delete(ctx, extra.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) {
		return nil
	}
	next := cur.DeepCopy()
	next.Endpoints, next.Ports = want.Endpoints, want.Ports
	_, err = c.cs.DiscoveryV1().EndpointSlices(svc.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// endpointHostname is the pod's hostname in the service's DNS records
// (<hostname>.<service>.<namespace>.svc): as upstream, a pod with a
// hostname whose subdomain is the service's name, in its namespace.
func endpointHostname(svc *corev1.Service, pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		return pod.Spec.Hostname
	}
	return ""
}
