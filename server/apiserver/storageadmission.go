package apiserver

// Storage admission: the two built-in plugins that concern
// PersistentVolumeClaims and PersistentVolumes, run on creates as
// upstream runs them (after ServiceAccount, before validation).
//
//   - DefaultStorageClass: a new claim that asks for no class (neither
//     spec.storageClassName nor the beta annotation
//     volume.beta.kubernetes.io/storage-class; an explicit "" is a
//     request for no class and is kept) gets the default StorageClass,
//     the one annotated storageclass.kubernetes.io/is-default-class
//     "true" (or the beta annotation). With several, the newest wins,
//     then the first by name; with none the claim is left without one.
//   - StorageObjectInUseProtection: new claims get the finalizer
//     kubernetes.io/pvc-protection and new volumes
//     kubernetes.io/pv-protection, which the protection controllers
//     (server/controllers/persistentvolume.go) remove once nothing uses
//     the object being deleted.

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/storage"
	"labctl/server/volume"
)

var storageClassesGVR = schema.GroupVersionResource{Group: storagev1.GroupName, Version: "v1", Resource: "storageclasses"}

// admitStorage runs DefaultStorageClass and StorageObjectInUseProtection
// on a new object; other kinds pass.
func (s *Server) admitStorage(ctx context.Context, obj runtime.Object) error {
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		if err := s.defaultStorageClass(ctx, o); err != nil {
			return err
		}
		if !slices.Contains(o.Finalizers, volume.PVCProtectionFinalizer) {
			o.Finalizers = append(o.Finalizers, volume.PVCProtectionFinalizer)
		}
	case *corev1.PersistentVolume:
		if !slices.Contains(o.Finalizers, volume.PVProtectionFinalizer) {
			o.Finalizers = append(o.Finalizers, volume.PVProtectionFinalizer)
		}
	}
	return nil
}

// defaultStorageClass is the DefaultStorageClass plugin.
func (s *Server) defaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if _, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok || pvc.Spec.StorageClassName != nil {
		return nil // the claim asked for a class, or for none
	}
	r, ok := s.reg.get(storageClassesGVR)
	if !ok {
		return nil
	}
	list, err := r.store.List(ctx, storage.ListOptions{})
	if err != nil {
		return err
	}
	items := list.(*storagev1.StorageClassList).Items
	classes := make([]*storagev1.StorageClass, len(items))
	for i := range items {
		classes[i] = &items[i]
	}
	if def := volume.DefaultClass(classes); def != "" {
		pvc.Spec.StorageClassName = &def
	}
	return nil
}
