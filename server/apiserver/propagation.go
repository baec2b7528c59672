package apiserver

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"labctl/server/request"
	"labctl/server/storage"
)

// Deletion with propagationPolicy Orphan or Foreground leaves the owner
// with the orphan or foregroundDeletion finalizer; this worker does what
// upstream's garbage collector does for those two finalizers: it orphans
// the dependents (drops their ownerReference to the owner), or deletes
// them (in the foreground too) and waits until they are gone, then removes
// the finalizer so the owner goes. Deleting the dependents of an owner
// deleted in the background is the garbage collector's, with the
// controllers.

// propagate starts the worker for an owner marked for deletion.
func (s *Server) propagate(r *Resource, namespace, name string) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for {
			done, err := s.propagateOnce(s.ctx, r, namespace, name)
			if err != nil {
				s.cfg.Logger.Warn("deletion propagation", "resource", r.Plural, "namespace", namespace, "name", name, "err", err)
			}
			if done {
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// propagateOnce makes one pass; it reports true when nothing is left to do.
func (s *Server) propagateOnce(ctx context.Context, r *Resource, namespace, name string) (bool, error) {
	obj, err := r.store.Get(ctx, namespace, name, "")
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	m, _ := meta.Accessor(obj)
	orphan := hasString(m.GetFinalizers(), metav1.FinalizerOrphanDependents)
	foreground := hasString(m.GetFinalizers(), metav1.FinalizerDeleteDependents)
	if m.GetDeletionTimestamp() == nil || (!orphan && !foreground) {
		return true, nil
	}
	left := 0
	for _, dr := range s.reg.all() {
		if dr.store == nil || dr.hub != nil || (!dr.Namespaced && namespace != "") {
			continue // a namespaced owner owns nothing cluster-scoped
		}
		// ...and only in its own namespace; a cluster-scoped owner anywhere.
		opts := storage.ListOptions{Namespace: namespace}
		list, err := dr.store.List(ctx, opts)
		if err != nil {
			return false, err
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			dm, _ := meta.Accessor(item)
			if !ownedBy(dm, m.GetUID()) {
				continue
			}
			if orphan {
				_, err := dr.store.Update(ctx, dm.GetNamespace(), dm.GetName(), func(cur runtime.Object) (runtime.Object, error) {
					cm, _ := meta.Accessor(cur)
					var keep []metav1.OwnerReference
					for _, ref := range cm.GetOwnerReferences() {
						if ref.UID != m.GetUID() {
							keep = append(keep, ref)
						}
					}
					cm.SetOwnerReferences(keep)
					return cur, nil
				})
				if err != nil && !apierrors.IsNotFound(err) {
					return false, err
				}
				continue
			}
			left++
			if dm.GetDeletionTimestamp() == nil {
				c := &call{s: s, ctx: ctx, res: dr, info: &request.Info{Namespace: dm.GetNamespace(), Resource: dr.Plural}}
				fg := metav1.DeletePropagationForeground
				if _, _, err := c.deleteOne(dm.GetName(), metav1.DeleteOptions{PropagationPolicy: &fg}, false); err != nil && !apierrors.IsNotFound(err) {
					return false, err
				}
			}
		}
	}
	if left > 0 {
		return false, nil
	}
	out, err := r.store.Update(ctx, namespace, name, func(cur runtime.Object) (runtime.Object, error) {
		cm, _ := meta.Accessor(cur)
		var keep []string
		for _, f := range cm.GetFinalizers() {
			if f != metav1.FinalizerOrphanDependents && f != metav1.FinalizerDeleteDependents {
				keep = append(keep, f)
			}
		}
		cm.SetFinalizers(keep)
		return cur, nil
	})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	c := &call{s: s, ctx: ctx, res: r, info: &request.Info{Namespace: namespace, Resource: r.Plural}}
	_, err = c.finishDeletion(out)
	return err == nil, err
}

func ownedBy(m metav1.Object, uid types.UID) bool {
	for _, ref := range m.GetOwnerReferences() {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
