package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"labctl/server/quota"
)

// The resource-quota controller keeps every ResourceQuota's status: hard
// copied from the spec, used counted from what the namespace holds
// (server/quota says what each object costs, the same rules the API
// server's admission charges by). Admission adds to used as objects are
// created; this controller gives back what deletions and finished pods
// free, at once on their events, and recounts everything every five
// minutes as upstream does.
//
// Pods and Services are watched through the shared informers. Other
// kinds a quota counts (count/configmaps, count/deployments.apps, claims,
// ...) get an informer of their own when a quota first names them, so a
// cluster without such quotas caches none of them.

const quotaResync = 5 * time.Minute

type resourceQuotas struct {
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	quotas   corelisters.ResourceQuotaLister
	pods     corelisters.PodLister
	services corelisters.ServiceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger

	mu       sync.Mutex
	ctx      context.Context
	counters map[schema.GroupResource]cache.SharedIndexInformer
}

func newResourceQuotas(cs kubernetes.Interface, dyn dynamic.Interface, f informerSet, log *slog.Logger) controller {
	qInf, podInf, svcInf := f.Core().V1().ResourceQuotas(), f.Core().V1().Pods(), f.Core().V1().Services()
	c := &resourceQuotas{
		cs: cs, dyn: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClient(cs.CoreV1().RESTClient()))),
		quotas: qInf.Lister(), pods: podInf.Lister(), services: svcInf.Lister(),
		synced: []cache.InformerSynced{qInf.Informer().HasSynced, podInf.Informer().HasSynced, svcInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "resourcequota"}),
		log:      log.With("controller", "resourcequota"),
		counters: map[schema.GroupResource]cache.SharedIndexInformer{},
	}
	f.addEventHandler(qInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*corev1.ResourceQuota), cur.(*corev1.ResourceQuota)
			if !apiequality.Semantic.DeepEqual(o.Spec, n.Spec) || !apiequality.Semantic.DeepEqual(n.Spec.Hard, n.Status.Hard) {
				c.enqueue(cur)
			}
		},
	})
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			if o, n := old.(*corev1.Pod), cur.(*corev1.Pod); !quota.Terminal(o) && quota.Terminal(n) {
				c.replenish(n.Namespace)
			}
		},
		DeleteFunc: func(obj any) { c.replenish(namespaceOf(obj)) },
	})
	f.addEventHandler(svcInf.Informer(), cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, cur any) {
			if o, n := old.(*corev1.Service), cur.(*corev1.Service); o.Spec.Type != n.Spec.Type {
				c.replenish(n.Namespace)
			}
		},
		DeleteFunc: func(obj any) { c.replenish(namespaceOf(obj)) },
	})
	return c
}

func (c *resourceQuotas) name() string { return "resourcequota" }

func (c *resourceQuotas) run(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	go func() {
		t := time.NewTicker(quotaResync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				qs, _ := c.quotas.List(labels.Everything())
				for _, q := range qs {
					c.enqueue(q)
				}
			}
		}
	}()
	runWorkers(ctx, c.queue, c.synced, 1, c.log, c.sync)
}

func (c *resourceQuotas) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// replenish recounts the quotas of namespace ns.
func (c *resourceQuotas) replenish(ns string) {
	qs, _ := c.quotas.ResourceQuotas(ns).List(labels.Everything())
	for _, q := range qs {
		c.enqueue(q)
	}
}

func namespaceOf(obj any) string {
	if m, ok := deletedObject[metav1.Object](obj); ok {
		return m.GetNamespace()
	}
	return ""
}

// counted is the kind of object a quota's resource name is paid by.
func counted(name corev1.ResourceName) schema.GroupResource {
	s := string(name)
	switch {
	case s == "services" || strings.HasPrefix(s, "services."):
		return schema.GroupResource{Resource: "services"}
	case s == "persistentvolumeclaims" || s == "requests.storage" || strings.Contains(s, ".storageclass.storage.k8s.io/"):
		return schema.GroupResource{Resource: "persistentvolumeclaims"}
	case s == "configmaps" || s == "secrets" || s == "replicationcontrollers" || s == "resourcequotas":
		return schema.GroupResource{Resource: s}
	case strings.HasPrefix(s, "count/"):
		return schema.ParseGroupResource(strings.TrimPrefix(s, "count/"))
	}
	return schema.GroupResource{Resource: "pods"} // pods, cpu, memory, requests.*, limits.*, hugepages
}

// objects lists what namespace ns holds of resource gr.
func (c *resourceQuotas) objects(gr schema.GroupResource, ns string) ([]runtime.Object, error) {
	var out []runtime.Object
	switch gr {
	case schema.GroupResource{Resource: "pods"}:
		pods, err := c.pods.Pods(ns).List(labels.Everything())
		for _, p := range pods {
			out = append(out, p)
		}
		return out, err
	case schema.GroupResource{Resource: "services"}:
		svcs, err := c.services.Services(ns).List(labels.Everything())
		for _, s := range svcs {
			out = append(out, s)
		}
		return out, err
	}
	inf, err := c.counter(gr)
	if err != nil {
		return nil, err
	}
	items, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
	for _, it := range items {
		u := it.(*unstructured.Unstructured)
		if gr == (schema.GroupResource{Resource: "persistentvolumeclaims"}) {
			var pvc corev1.PersistentVolumeClaim
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pvc); err == nil {
				out = append(out, &pvc)
				continue
			}
		}
		out = append(out, u)
	}
	return out, err
}

// counter is the informer for gr, started the first time it is asked for
// and waited on until it has synced.
func (c *resourceQuotas) counter(gr schema.GroupResource) (cache.SharedIndexInformer, error) {
	c.mu.Lock()
	inf, ok := c.counters[gr]
	ctx := c.ctx
	c.mu.Unlock()
	if !ok {
		gvr, err := c.mapper.ResourceFor(gr.WithVersion(""))
		if err != nil {
			c.mapper.Reset()
			return nil, fmt.Errorf("resource %q counted by a quota: %w", gr, err)
		}
		inf = dynamicinformer.NewFilteredDynamicInformer(c.dyn, gvr, metav1.NamespaceAll, 0,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil).Informer()
		// Adds too: admission charged them already, unless they came
		// before the quota had a status. Its own handler, not through
		// the manager's eventHandlers: this informer is made while the
		// controllers run, after those are registered, and has this one
		// handler only.
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.replenish(namespaceOf(obj)) },
			DeleteFunc: func(obj any) { c.replenish(namespaceOf(obj)) },
		})
		c.mu.Lock()
		if have, ok := c.counters[gr]; ok {
			inf = have
		} else {
			c.counters[gr] = inf
			go inf.Run(ctx.Done())
		}
		c.mu.Unlock()
	}
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, ctx.Err()
	}
	return inf, nil
}

func (c *resourceQuotas) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	q, err := c.quotas.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	used := corev1.ResourceList{}
	seen := map[schema.GroupResource]bool{}
	for rname := range q.Spec.Hard {
		gr := counted(rname)
		if seen[gr] {
			continue
		}
		seen[gr] = true
		objs, err := c.objects(gr, ns)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if quota.Matches(q, obj) {
				used = quota.Add(used, quota.Usage(gr, obj))
			}
		}
	}
	// Every limited name shows, zero when nothing uses it.
	status := corev1.ResourceQuotaStatus{Hard: q.Spec.Hard.DeepCopy(), Used: corev1.ResourceList{}}
	for rname := range q.Spec.Hard {
		u := used[rname]
		status.Used[rname] = u
	}
	if apiequality.Semantic.DeepEqual(q.Status, status) {
		return nil
	}
	next := q.DeepCopy()
	next.Status = status
	_, err = c.cs.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
