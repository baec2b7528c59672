package localpath

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"labctl/server/volume"
)

// The StorageClass the server keeps, as k3s's local-storage manifest.
const (
	// StorageClassName names the class, the cluster's default.
	StorageClassName = "local-path"
	// ProvisionerName is the class's provisioner, which Run is.
	ProvisionerName = "rancher.io/local-path"

	// addonAnnotation marks the class EnsureStorageClass made, so that
	// RemoveStorageClass leaves a local-path class the user made alone
	// (the annotation of the coredns add-on's objects).
	addonAnnotation = "labctl.io/addon"
	addonName       = "local-storage"
)

// storageClass is k3s's local-path class, without k3s's
// defaultVolumeType: "local" annotation: the volumes are hostPath ones,
// local-path-provisioner's default.
func storageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        StorageClassName,
			Annotations: map[string]string{volume.DefaultClassAnnotation: "true", addonAnnotation: addonName},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// EnsureStorageClass creates the local-path StorageClass when there is
// none. One that exists stays as it is, whoever made it: the user may
// have changed its annotations (another default class, say), and most of
// a class cannot change anyway.
func EnsureStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	classes := cs.StorageV1().StorageClasses()
	_, err := classes.Get(ctx, StorageClassName, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read storageclass %q: %w", StorageClassName, err)
	}
	if _, err := classes.Create(ctx, storageClass(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create storageclass %q: %w", StorageClassName, err)
	}
	return nil
}

// RemoveStorageClass deletes the local-path StorageClass that
// EnsureStorageClass made, for a server started with --disable
// local-storage; a class of that name the user made stays. Volumes
// provisioned from it stay too.
func RemoveStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	classes := cs.StorageV1().StorageClasses()
	sc, err := classes.Get(ctx, StorageClassName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read storageclass %q: %w", StorageClassName, err)
	}
	if sc.Annotations[addonAnnotation] != addonName {
		return nil
	}
	err = classes.Delete(ctx, StorageClassName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &sc.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete storageclass %q: %w", StorageClassName, err)
	}
	return nil
}
