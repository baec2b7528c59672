package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// The garbage collector deletes objects whose owners are all gone (the
// dependents of an owner deleted in the background, the default of
// kubectl delete), and drops owner references to owners that are gone
// when others remain, as upstream's does. An owner missing from the cache
// is looked up in the API before anything is deleted, since a new
// owner's dependents can reach the cache first, and the decision is made
// again on the dependent as the API has it (its cached copy may lack an
// owner added a moment ago), deleting only that version of it. Orphan and foreground
// deletions are finished by the API server (server/apiserver).
//
// It watches the workload kinds that own or are owned in practice, listed
// in gcKinds, with full-object informers; ConfigMaps, Secrets and the like
// are left out, since caching every one of them costs memory a cluster of
// this size notices. Metadata-only informers (as upstream's) will let it
// watch every kind, custom resources too.

type gcKind struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

var gcKinds = []gcKind{
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod", true},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "Service", true},
	{schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, "PersistentVolumeClaim", true},
	{schema.GroupVersionResource{Version: "v1", Resource: "replicationcontrollers"}, "ReplicationController", true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment", true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, "ReplicaSet", true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet", true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, "DaemonSet", true},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "controllerrevisions"}, "ControllerRevision", true},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job", true},
	{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}, "CronJob", true},
	{schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}, "EndpointSlice", true},
}

const ownerUIDIndex = "ownerUID"

type garbageCollector struct {
	dyn       dynamic.Interface
	informers map[schema.GroupVersionResource]cache.SharedIndexInformer
	byKind    map[schema.GroupKind]gcKind
	queue     workqueue.TypedRateLimitingInterface[gcItem]
	log       *slog.Logger
}

// gcItem is an object to look at: its resource and key.
type gcItem struct {
	gvr schema.GroupVersionResource
	key string
}

func newGarbageCollector(dyn dynamic.Interface, f informerSet, log *slog.Logger) (controller, error) {
	gc := &garbageCollector{
		dyn:       dyn,
		informers: map[schema.GroupVersionResource]cache.SharedIndexInformer{},
		byKind:    map[schema.GroupKind]gcKind{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[gcItem](),
			workqueue.TypedRateLimitingQueueConfig[gcItem]{Name: "garbagecollector"}),
		log: log.With("controller", "garbagecollector"),
	}
	for _, k := range gcKinds {
		gi, err := f.ForResource(k.gvr)
		if err != nil {
			return nil, fmt.Errorf("garbage collector: %w", err)
		}
		inf := gi.Informer()
		if err := inf.AddIndexers(cache.Indexers{ownerUIDIndex: ownerUIDs}); err != nil {
			return nil, fmt.Errorf("garbage collector: %w", err)
		}
		gvr := k.gvr
		f.addEventHandler(inf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { gc.enqueueIfOwned(gvr, obj) },
			UpdateFunc: func(_, obj any) { gc.enqueueIfOwned(gvr, obj) },
			DeleteFunc: gc.enqueueDependents,
		})
		gc.informers[k.gvr] = inf
		gc.byKind[schema.GroupKind{Group: k.gvr.Group, Kind: k.kind}] = k
	}
	return gc, nil
}

func ownerUIDs(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	var out []string
	for _, ref := range m.GetOwnerReferences() {
		out = append(out, string(ref.UID))
	}
	return out, nil
}

func (gc *garbageCollector) name() string { return "garbagecollector" }

func (gc *garbageCollector) enqueueIfOwned(gvr schema.GroupVersionResource, obj any) {
	if m, err := meta.Accessor(obj); err == nil && len(m.GetOwnerReferences()) > 0 {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			gc.queue.Add(gcItem{gvr, key})
		}
	}
}

// enqueueDependents: an object went; look at everything that named it.
func (gc *garbageCollector) enqueueDependents(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	for gvr, inf := range gc.informers {
		deps, _ := inf.GetIndexer().ByIndex(ownerUIDIndex, string(m.GetUID()))
		for _, dep := range deps {
			if key, err := cache.MetaNamespaceKeyFunc(dep); err == nil {
				gc.queue.Add(gcItem{gvr, key})
			}
		}
	}
}

func (gc *garbageCollector) run(ctx context.Context) {
	var synced []cache.InformerSynced
	for _, inf := range gc.informers {
		synced = append(synced, inf.HasSynced)
	}
	runWorkers(ctx, gc.queue, synced, 2, gc.log, gc.process)
}

func (gc *garbageCollector) process(ctx context.Context, item gcItem) error {
	obj, exists, err := gc.informers[item.gvr].GetIndexer().GetByKey(item.key)
	if err != nil || !exists {
		return err
	}
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() != nil {
		return err
	}
	res := gc.dyn.Resource(item.gvr).Namespace(m.GetNamespace())
	gone, err := gc.goneOwners(ctx, m)
	if err != nil || len(gone) == 0 {
		return err
	}
	// The cache may be behind (an owner added a moment ago): decide on
	// the object as the API has it now, as upstream's collector does, and
	// delete only that version of it.
	live, err := res.Get(ctx, m.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if live.GetUID() != m.GetUID() || live.GetDeletionTimestamp() != nil {
		return nil
	}
	if gone, err = gc.goneOwners(ctx, live); err != nil || len(gone) == 0 {
		return err
	}
	if len(gone) == len(live.GetOwnerReferences()) {
		bg := metav1.DeletePropagationBackground
		uid, rv := live.GetUID(), live.GetResourceVersion()
		err := res.Delete(ctx, m.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err == nil {
			gc.log.Debug("deleted an object whose owners are gone", "resource", item.gvr.Resource, "object", item.key)
		}
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or changed: its update event brings it back
		}
		return err
	}
	var dels []string
	for _, uid := range gone {
		dels = append(dels, fmt.Sprintf(`{"$patch":"delete","uid":%q}`, uid))
	}
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"uid":%q}}`, strings.Join(dels, ","), m.GetUID())
	_, err = res.Patch(ctx, m.GetName(), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// goneOwners lists the UIDs of m's owners that no longer exist.
func (gc *garbageCollector) goneOwners(ctx context.Context, m metav1.Object) ([]types.UID, error) {
	var gone []types.UID
	for _, ref := range m.GetOwnerReferences() {
		present, err := gc.ownerPresent(ctx, ref, m.GetNamespace())
		if err != nil {
			return nil, err
		}
		if !present {
			gone = append(gone, ref.UID)
		}
	}
	return gone, nil
}

// ownerPresent tells whether the owner ref names still exists with its
// uid: from the cache when it is there, else from the API. Owners of kinds
// it does not know are taken as present.
func (gc *garbageCollector) ownerPresent(ctx context.Context, ref metav1.OwnerReference, namespace string) (bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return true, nil
	}
	k, ok := gc.byKind[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	if !ok {
		return true, nil
	}
	key := ref.Name
	ns := ""
	if k.namespaced {
		key, ns = namespace+"/"+ref.Name, namespace
	}
	if obj, exists, _ := gc.informers[k.gvr].GetIndexer().GetByKey(key); exists {
		if m, err := meta.Accessor(obj); err == nil && m.GetUID() == ref.UID {
			return true, nil
		}
	}
	live, err := gc.dyn.Resource(k.gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return live.GetUID() == ref.UID, nil
}
