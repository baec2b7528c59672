package apiserver

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"labctl/server/request"
	"labctl/server/storage"
)

// The namespaces every cluster starts with.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

func (s *Server) namespaces() *Resource {
	r, _ := s.reg.get(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	return r
}

// bootstrapNamespaces creates the system namespaces that are missing and
// resumes emptying namespaces a previous run left terminating.
func (s *Server) bootstrapNamespaces(ctx context.Context) error {
	nsr := s.namespaces()
	for _, name := range systemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			UID:               types.UID(uuid.NewUUID()),
			CreationTimestamp: metav1.NewTime(s.cfg.Now().Truncate(time.Second)),
			Labels:            map[string]string{corev1.LabelMetadataName: name},
		}}
		nsr.strategy.Default(ns)
		nsr.strategy.PrepareForCreate(ns)
		s.prepareKind(nsr, ns)
		if _, err := nsr.store.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apiserver: create namespace %q: %w", name, err)
		}
	}
	list, err := nsr.store.List(ctx, storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("apiserver: list namespaces: %w", err)
	}
	for _, ns := range list.(*corev1.NamespaceList).Items {
		if ns.DeletionTimestamp != nil {
			s.namespaceTerminating(ns.Name)
		}
	}
	return nil
}

// prepareKind applies the create-time rules labctl keeps outside the
// strategies because they span kinds.
func (s *Server) prepareKind(r *Resource, obj runtime.Object) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status.Phase = corev1.NamespaceActive
		if len(ns.Spec.Finalizers) == 0 {
			ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
}

// checkNamespace refuses new objects in a namespace that does not exist or
// is being deleted, with upstream's errors.
func (s *Server) checkNamespace(ctx context.Context, name string) error {
	obj, err := s.namespaces().store.Get(ctx, "", name, "")
	if err != nil {
		return err
	}
	ns := obj.(*corev1.Namespace)
	if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		err := apierrors.NewForbidden(corev1.Resource("namespaces"), name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", name))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", name),
			Field:   "metadata.namespace",
		})
		return err
	}
	return nil
}

// namespaceTerminating empties a namespace being deleted, then removes its
// kubernetes finalizer so that it goes too: the namespace controller's
// work, kept beside the API until the controllers arrive. It runs in the
// background until done or the server stops.
func (s *Server) namespaceTerminating(name string) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		for {
			left, err := s.emptyNamespace(s.ctx, name)
			if err == nil && left == 0 {
				err = s.finalizeNamespace(s.ctx, name)
				if err == nil || apierrors.IsNotFound(err) {
					return
				}
			}
			if err != nil {
				s.cfg.Logger.Warn("emptying namespace", "namespace", name, "err", err)
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// emptyNamespace deletes what it can in the namespace and returns how many
// objects are left.
func (s *Server) emptyNamespace(ctx context.Context, ns string) (int, error) {
	left := 0
	for _, r := range s.reg.all() {
		if !r.Namespaced || r.store == nil || r.hub != nil {
			continue
		}
		list, err := r.store.List(ctx, storage.ListOptions{Namespace: ns})
		if err != nil {
			return 0, err
		}
		items, _ := meta.ExtractList(list)
		for _, item := range items {
			m, _ := meta.Accessor(item)
			left++
			c := &call{s: s, ctx: ctx, res: r, info: &request.Info{Namespace: ns, Resource: r.Plural}}
			if _, _, err := c.deleteOne(m.GetName(), metav1.DeleteOptions{}, false); err != nil && !apierrors.IsNotFound(err) {
				return 0, err
			}
		}
	}
	return left, nil
}

func (s *Server) finalizeNamespace(ctx context.Context, name string) error {
	nsr := s.namespaces()
	out, err := nsr.store.Update(ctx, "", name, func(obj runtime.Object) (runtime.Object, error) {
		ns := obj.(*corev1.Namespace)
		var keep []corev1.FinalizerName
		for _, f := range ns.Spec.Finalizers {
			if f != corev1.FinalizerKubernetes {
				keep = append(keep, f)
			}
		}
		ns.Spec.Finalizers = keep
		return ns, nil
	})
	if err != nil {
		return err
	}
	ns := out.(*corev1.Namespace)
	if len(ns.Spec.Finalizers) == 0 && len(ns.Finalizers) == 0 {
		_, err = nsr.store.Delete(ctx, "", name, ns.ResourceVersion)
	}
	return err
}
