package controllers

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

func metav1ObjectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// perNamespace is the shape of the controllers that keep one object in
// every active namespace (the default ServiceAccount, the root CA
// ConfigMap): a queue of namespace names, filled when a namespace appears
// and when the kept object changes or goes, and drained by sync.
type perNamespace struct {
	ctrlName   string
	log        *slog.Logger
	namespaces cache.SharedIndexInformer
	handlers   *eventHandlers // the manager's, for watchKept
	queue      workqueue.TypedRateLimitingInterface[string]
	synced     []cache.InformerSynced
	sync       func(ctx context.Context, ns *corev1.Namespace) error
	// kept informs on the kept objects only (a field selector on their
	// name), so that the controller does not cache every ConfigMap.
	kept informers.SharedInformerFactory
}

// keptFactory is an informer factory for the objects named name only.
func keptFactory(cs kubernetes.Interface, name string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + name
	}))
}

func newPerNamespace(name string, f informerSet, log *slog.Logger) *perNamespace {
	p := &perNamespace{
		ctrlName:   name,
		log:        log.With("controller", name),
		namespaces: f.Core().V1().Namespaces().Informer(),
		handlers:   f.handlers,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
	f.addEventHandler(p.namespaces, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.enqueueNamespace(obj) },
		UpdateFunc: func(_, obj any) { p.enqueueNamespace(obj) },
	})
	p.synced = append(p.synced, p.namespaces.HasSynced)
	return p
}

func (p *perNamespace) enqueueNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating {
		p.queue.Add(ns.Name)
	}
}

// watchKept enqueues the namespace of a kept object named name when it
// changes or is deleted. inf is from p.kept, which starts in run, after
// the manager has registered the handlers.
func (p *perNamespace) watchKept(inf cache.SharedIndexInformer, name string) {
	enqueue := func(obj any) {
		if m, ok := deletedObject[metav1.Object](obj); ok && m.GetName() == name {
			p.queue.Add(m.GetNamespace())
		}
	}
	p.handlers.add(inf, cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	p.synced = append(p.synced, inf.HasSynced)
}

func (p *perNamespace) name() string { return p.ctrlName }

func (p *perNamespace) run(ctx context.Context) {
	if p.kept != nil {
		p.kept.Start(ctx.Done())
		defer p.kept.Shutdown()
	}
	runWorkers(ctx, p.queue, p.synced, 1, p.log, p.process)
}

// process keeps the object in one namespace, if it is still active.
func (p *perNamespace) process(ctx context.Context, key string) error {
	obj, exists, err := p.namespaces.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return err
	}
	ns := obj.(*corev1.Namespace)
	if ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.sync(ctx, ns)
}
