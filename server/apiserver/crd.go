package apiserver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"labctl/server/customresource"
	"labctl/server/openapi"
	"labctl/server/storage"
)

// CustomResourceDefinitions are served as upstream's apiextensions server
// serves them, inside this server: the crds controller watches the
// customresourcedefinitions resource and, for each CRD,
//
//   - accepts its names unless another CRD of the group uses them
//     (status.acceptedNames, conditions NamesAccepted and Established);
//   - registers a Resource per served version (customResource), which the
//     handlers serve like any other: discovery, OpenAPI, CRUD, watch,
//     patches, Tables from additionalPrinterColumns, status and scale;
//   - when the CRD is deleted (deleteOne adds the cleanup finalizer and
//     the Terminating condition), deletes every object of it, then
//     removes the finalizer, the CRD and its Resources.
//
// The Resources of the CRDs already stored are registered before New
// returns, so a restarted server serves them from its first request.

var crdGVK = apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// crdRetry is how soon a CRD whose objects are still being deleted (their
// finalizers pending) is looked at again.
const crdRetry = time.Second

type crdController struct {
	s   *Server
	res *Resource // customresourcedefinitions

	mu sync.Mutex
	// served is what is registered per CRD name.
	served map[string]*servedCRD
	retry  chan string
}

type servedCRD struct {
	// key changes when what is served must: a new uid, generation or
	// accepted names.
	key   string
	group string
	names apiextensionsv1.CustomResourceDefinitionNames
	gvrs  []schema.GroupVersionResource
}

// startCRDs serves the stored CRDs, then follows changes until ctx ends.
func (s *Server) startCRDs(ctx context.Context) error {
	res, ok := s.reg.get(apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions"))
	if !ok {
		return fmt.Errorf("apiserver: customresourcedefinitions are not served")
	}
	c := &crdController{s: s, res: res, served: map[string]*servedCRD{}, retry: make(chan string, 16)}
	rv, err := c.syncAll(ctx)
	if err != nil {
		return fmt.Errorf("apiserver: serving the stored custom resources: %w", err)
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		c.run(ctx, rv)
	}()
	return nil
}

// syncAll syncs every stored CRD, stops serving the ones gone, and
// returns the resourceVersion it read at.
func (c *crdController) syncAll(ctx context.Context) (string, error) {
	list, err := c.res.store.List(ctx, storage.ListOptions{})
	if err != nil {
		return "", err
	}
	crds := list.(*apiextensionsv1.CustomResourceDefinitionList)
	seen := map[string]bool{}
	for i := range crds.Items {
		seen[crds.Items[i].Name] = true
		c.sync(ctx, &crds.Items[i])
	}
	c.mu.Lock()
	var gone []string
	for name := range c.served {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	c.mu.Unlock()
	for _, name := range gone {
		c.unserve(name)
	}
	return crds.ResourceVersion, nil
}

func (c *crdController) run(ctx context.Context, rv string) {
	for ctx.Err() == nil {
		w, err := c.res.store.Watch(ctx, storage.WatchOptions{ResourceVersion: rv})
		if err == nil {
			rv = c.follow(ctx, w)
			w.Stop()
		} else {
			c.s.cfg.Logger.Warn("watching customresourcedefinitions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		// The watch ended (compacted, or the store restarted): start over
		// from a fresh list, which also catches what happened meanwhile.
		if rv, err = c.syncAll(ctx); err != nil {
			c.s.cfg.Logger.Warn("listing customresourcedefinitions", "err", err)
			rv = ""
		}
	}
}

// follow handles the watch's events and the retries until the watch ends;
// it returns the last resourceVersion seen.
func (c *crdController) follow(ctx context.Context, w watch.Interface) string {
	rv := ""
	for {
		select {
		case <-ctx.Done():
			return rv
		case name := <-c.retry:
			obj, err := c.res.store.Get(ctx, "", name, "")
			if apierrors.IsNotFound(err) {
				c.unserve(name)
			} else if err == nil {
				c.sync(ctx, obj.(*apiextensionsv1.CustomResourceDefinition))
			}
		case ev, ok := <-w.ResultChan():
			if !ok || ev.Type == watch.Error {
				return rv
			}
			crd, isCRD := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
			if !isCRD {
				continue
			}
			rv = crd.ResourceVersion
			if ev.Type == watch.Deleted {
				c.unserve(crd.Name)
				continue
			}
			c.sync(ctx, crd)
		}
	}
}

// requeue looks at the CRD name again after d.
func (c *crdController) requeue(ctx context.Context, name string, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case c.retry <- name:
		case <-ctx.Done():
		}
	})
}

// sync brings what is served for crd, and its status, up to date.
func (c *crdController) sync(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) {
	if crd.DeletionTimestamp != nil {
		c.cleanup(ctx, crd)
		return
	}
	reason, conflict := c.nameConflict(crd)
	accepted := crd.Status.AcceptedNames
	if conflict == "" {
		accepted = crd.Spec.Names
	}
	// Served first: Established tells clients they can use it.
	if accepted.Kind == "" {
		c.unserve(crd.Name)
	} else {
		withNames := crd.DeepCopy()
		withNames.Status.AcceptedNames = accepted
		c.serve(withNames)
	}
	if err := c.setStatus(ctx, crd.Name, func(st *apiextensionsv1.CustomResourceDefinitionStatus) {
		if conflict != "" {
			setCondition(st, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionFalse, reason, conflict)
			if st.AcceptedNames.Kind == "" {
				setCondition(st, apiextensionsv1.Established, apiextensionsv1.ConditionFalse, "NotAccepted", "not all names are accepted")
			}
			return
		}
		st.AcceptedNames = crd.Spec.Names
		setCondition(st, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionTrue, "NoConflicts", "no conflicts found")
		setCondition(st, apiextensionsv1.Established, apiextensionsv1.ConditionTrue, "InitialNamesAccepted", "the initial names have been accepted")
	}); err != nil && !apierrors.IsNotFound(err) {
		c.s.cfg.Logger.Warn("updating a CRD's status", "crd", crd.Name, "err", err)
	}
}

// nameConflict says which of crd's names another served CRD of its group
// has accepted already, with upstream's reason; "" when none.
func (c *crdController) nameConflict(crd *apiextensionsv1.CustomResourceDefinition) (reason, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := crd.Spec.Names
	inUse := func(name string) string { return fmt.Sprintf("%q is already in use", name) }
	for name, other := range c.served {
		if name == crd.Name || other.group != crd.Spec.Group {
			continue
		}
		o := other.names
		switch {
		case n.Kind == o.Kind || n.Kind == o.ListKind:
			return "KindConflict", inUse(n.Kind)
		case n.ListKind == o.Kind || n.ListKind == o.ListKind:
			return "ListKindConflict", inUse(n.ListKind)
		case n.Singular == o.Plural || n.Singular == o.Singular:
			return "SingularConflict", inUse(n.Singular)
		}
		for _, s := range n.ShortNames {
			if hasString(o.ShortNames, s) || s == o.Plural || s == o.Singular {
				return "ShortNamesConflict", inUse(s)
			}
		}
	}
	return "", ""
}

// serve registers the Resources of crd's served versions, replacing what
// was served for an older generation.
func (c *crdController) serve(crd *apiextensionsv1.CustomResourceDefinition) {
	key := fmt.Sprintf("%s/%d/%v", crd.UID, crd.Generation, crd.Status.AcceptedNames)
	c.mu.Lock()
	if cur := c.served[crd.Name]; cur != nil && cur.key == key {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.unregister(crd.Name) // the documents are updated once, below
	served := &servedCRD{key: key, group: crd.Spec.Group, names: crd.Status.AcceptedNames}
	var versions []*customresource.Version
	schemas := map[schema.GroupVersionKind]*spec.Schema{}
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		ver, err := customresource.NewVersion(crd, v.Name)
		if err != nil {
			c.s.cfg.Logger.Warn("serving a CRD version", "crd", crd.Name, "version", v.Name, "err", err)
			continue
		}
		versions = append(versions, ver)
		schemas[ver.GVK] = nil
		if ver.Schema != nil {
			schemas[ver.GVK] = ver.Schema.OpenAPI
		}
	}
	// Server-side apply types the objects with every served version's
	// schema: a manager's entries may name any of them.
	tc, err := openapi.NewCustomTypeConverter(schemas, false)
	if err != nil {
		c.s.cfg.Logger.Warn("typing a CRD's objects for server-side apply", "crd", crd.Name, "err", err)
		tc = managedfields.NewDeducedTypeConverter()
	}
	for _, ver := range versions {
		r := c.s.customResource(ver)
		r.typeConverter = tc
		if err := c.s.reg.add(r); err != nil {
			c.s.cfg.Logger.Warn("serving a CRD version", "crd", crd.Name, "version", ver.GVK.Version, "err", err)
			continue
		}
		served.gvrs = append(served.gvrs, r.GVR())
	}
	c.mu.Lock()
	c.served[crd.Name] = served
	c.mu.Unlock()
	c.s.updateOpenAPI()
}

// unserve stops serving the CRD name's resources.
func (c *crdController) unserve(name string) {
	if c.unregister(name) {
		c.s.updateOpenAPI()
	}
}

// unregister removes the CRD name's resources from the registry and
// reports whether it had any; the caller updates the OpenAPI documents.
func (c *crdController) unregister(name string) bool {
	c.mu.Lock()
	cur := c.served[name]
	delete(c.served, name)
	c.mu.Unlock()
	if cur == nil {
		return false
	}
	for _, gvr := range cur.gvrs {
		c.s.reg.remove(gvr)
	}
	return true
}

// cleanup deletes the objects of a CRD being deleted, then the CRD.
func (c *crdController) cleanup(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) {
	if !hasString(crd.Finalizers, customresource.CleanupFinalizer) {
		return // other finalizers: their owners' business
	}
	left, err := c.deleteObjects(ctx, crd)
	if err != nil || left > 0 {
		msg := fmt.Sprintf("could not delete the objects: %v", err)
		if err == nil {
			msg = fmt.Sprintf("%d objects waiting for their finalizers", left)
		}
		_ = c.setStatus(ctx, crd.Name, func(st *apiextensionsv1.CustomResourceDefinitionStatus) {
			setCondition(st, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionInProgress", "CustomResource deletion is in progress: "+msg)
		})
		c.requeue(ctx, crd.Name, crdRetry)
		return
	}
	c.unserve(crd.Name)
	out, err := c.res.store.Update(ctx, "", crd.Name, func(cur runtime.Object) (runtime.Object, error) {
		cd := cur.(*apiextensionsv1.CustomResourceDefinition)
		cd.Finalizers = slices.DeleteFunc(cd.Finalizers, func(f string) bool { return f == customresource.CleanupFinalizer })
		return cd, nil
	})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			c.requeue(ctx, crd.Name, crdRetry)
		}
		return
	}
	if m, _ := meta.Accessor(out); len(m.GetFinalizers()) == 0 {
		if _, err := c.res.store.Delete(ctx, "", crd.Name, m.GetResourceVersion()); err != nil && !apierrors.IsNotFound(err) {
			c.requeue(ctx, crd.Name, crdRetry)
		}
	}
}

// deleteObjects deletes every object of crd (in its storage version, all
// namespaces) and returns how many are left, held by finalizers.
func (c *crdController) deleteObjects(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) (int, error) {
	storageVersion := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storageVersion = v.Name
		}
	}
	if crd.Status.AcceptedNames.Kind == "" {
		return 0, nil // never served: nothing can have been stored
	}
	ver, err := customresource.NewVersion(crd, storageVersion)
	if err != nil {
		return 0, err
	}
	r := c.s.customResource(ver)
	list, err := r.store.List(ctx, storage.ListOptions{})
	if err != nil {
		return 0, err
	}
	items, _ := meta.ExtractList(list)
	left := 0
	for _, item := range items {
		m, _ := meta.Accessor(item)
		if len(m.GetFinalizers()) == 0 {
			if _, err := r.store.Delete(ctx, m.GetNamespace(), m.GetName(), ""); err != nil && !apierrors.IsNotFound(err) {
				return 0, err
			}
			continue
		}
		left++
		if m.GetDeletionTimestamp() != nil {
			continue
		}
		if _, err := r.store.Update(ctx, m.GetNamespace(), m.GetName(), func(cur runtime.Object) (runtime.Object, error) {
			cm, _ := meta.Accessor(cur)
			if cm.GetDeletionTimestamp() == nil {
				now := metav1.NewTime(c.s.cfg.Now())
				zero := int64(0)
				cm.SetDeletionTimestamp(&now)
				cm.SetDeletionGracePeriodSeconds(&zero)
			}
			return cur, nil
		}); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	return left, nil
}

// setStatus changes the CRD's status with fn, writing only when it changed.
func (c *crdController) setStatus(ctx context.Context, name string, fn func(*apiextensionsv1.CustomResourceDefinitionStatus)) error {
	_, err := c.res.store.Update(ctx, "", name, func(cur runtime.Object) (runtime.Object, error) {
		crd := cur.(*apiextensionsv1.CustomResourceDefinition)
		fn(&crd.Status)
		return crd, nil
	})
	return err
}

// setCondition sets a condition, keeping its transition time when its
// status does not change.
func setCondition(st *apiextensionsv1.CustomResourceDefinitionStatus, typ apiextensionsv1.CustomResourceDefinitionConditionType, status apiextensionsv1.ConditionStatus, reason, message string) {
	for i := range st.Conditions {
		cond := &st.Conditions[i]
		if cond.Type != typ {
			continue
		}
		if cond.Status != status {
			cond.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
		}
		cond.Status, cond.Reason, cond.Message = status, reason, message
		return
	}
	st.Conditions = append(st.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{Type: typ, Status: status,
		LastTransitionTime: metav1.NewTime(time.Now().Truncate(time.Second)), Reason: reason, Message: message})
}

// markCRDDeleting is what deleting a CRD adds to it (deleteOne): the
// cleanup finalizer and the Terminating condition.
func markCRDDeleting(obj runtime.Object) {
	crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return
	}
	crd.Finalizers = addString(crd.Finalizers, customresource.CleanupFinalizer)
	setCondition(&crd.Status, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionPending",
		"CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")
}

// customResource is the Resource serving one CRD version.
func (s *Server) customResource(v *customresource.Version) *Resource {
	r := &Resource{
		GVK:        v.GVK,
		Plural:     v.Plural,
		Singular:   v.Singular,
		ShortNames: v.ShortNames,
		Categories: v.Categories,
		Namespaced: v.Namespaced,
		custom:     v,
		strategy:   v,
		newObj:     v.New,
		newList:    v.NewList,
	}
	if v.Status {
		r.Subresources = append(r.Subresources, "status")
	}
	if v.Scale != nil {
		r.Subresources = append(r.Subresources, "scale")
	}
	r.store = storage.New(storage.Config{
		Store:       s.cfg.Store,
		Resource:    r.GroupResource(),
		Namespaced:  v.Namespaced,
		Codec:       v.Codec(),
		NewFunc:     v.New,
		NewListFunc: v.NewList,
		Attrs:       attrsWith(v),
	})
	return r
}
