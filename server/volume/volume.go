// Package volume holds what the API server's storage admission
// (server/apiserver) and the PersistentVolume controller
// (server/controllers) share: the protection finalizers, and which
// StorageClass is the cluster's default, as upstream decides it (both fill
// a claim's missing class: admission on create, the controller
// retroactively).
package volume

import (
	"time"

	storagev1 "k8s.io/api/storage/v1"
)

// The finalizers that keep a claim in use by a pod, and a volume bound to
// a claim, from going.
const (
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// Annotations that mark a default class; either one set to "true" does.
const (
	DefaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	BetaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// IsDefaultClass reports whether the class is marked as a default.
func IsDefaultClass(sc *storagev1.StorageClass) bool {
	return sc.Annotations[DefaultClassAnnotation] == "true" || sc.Annotations[BetaDefaultClassAnnotation] == "true"
}

// DefaultClass names the default among classes ("" for none): of those marked
// as the default, the newest, then the first by name.
func DefaultClass(classes []*storagev1.StorageClass) string {
	var best *storagev1.StorageClass
	var bestTime time.Time
	for _, sc := range classes {
		if !IsDefaultClass(sc) {
			continue
		}
		t := sc.CreationTimestamp.Time
		if best == nil || t.After(bestTime) || t.Equal(bestTime) && sc.Name < best.Name {
			best, bestTime = sc, t
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}
