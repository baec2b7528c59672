package apiserver_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"labctl/server/apiserver"
)

// startWithClock is start with a clock the test moves forward by
// *offset, so that objects get the creation times it wants.
func startWithClock(t *testing.T, offset *atomic.Int64) *rest.Config {
	t.Helper()
	_, srv := serve(t, apiserver.Config{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	return restConfig(srv)
}

func storageClaim(name string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: class,
		},
	}
}

func TestStorageAdmission(t *testing.T) {
	var offset atomic.Int64
	cs := kubernetes.NewForConfigOrDie(startWithClock(t, &offset))
	ctx := context.Background()
	createClaim := func(pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		t.Helper()
		got, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got.Finalizers, "kubernetes.io/pvc-protection") {
			t.Errorf("claim %s: finalizers %v, want kubernetes.io/pvc-protection", got.Name, got.Finalizers)
		}
		return got
	}
	className := func(pvc *corev1.PersistentVolumeClaim) string {
		if pvc.Spec.StorageClassName == nil {
			return "<nil>"
		}
		return *pvc.Spec.StorageClassName
	}
	createClass := func(name string, annotations map[string]string) {
		t.Helper()
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Provisioner: "example.com/" + name}
		if _, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// No default class: the claim keeps none.
	createClass("plain", nil)
	if got := createClaim(storageClaim("none", nil)); got.Spec.StorageClassName != nil {
		t.Errorf("without a default class: storageClassName %q, want nil", className(got))
	}

	// One default (the beta annotation counts too).
	createClass("standard", map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"})
	if got := createClaim(storageClaim("defaulted", nil)); className(got) != "standard" {
		t.Errorf("storageClassName %s, want standard", className(got))
	}
	// An explicit class, and an explicit "" (no class), are kept; so is
	// the beta annotation.
	if got := createClaim(storageClaim("explicit", ptr.To("plain"))); className(got) != "plain" {
		t.Errorf("explicit class: storageClassName %s, want plain", className(got))
	}
	if got := createClaim(storageClaim("empty", ptr.To(""))); className(got) != "" {
		t.Errorf(`explicit "": storageClassName %s, want ""`, className(got))
	}
	beta := storageClaim("beta", nil)
	beta.Annotations = map[string]string{"volume.beta.kubernetes.io/storage-class": "plain"}
	if got := createClaim(beta); got.Spec.StorageClassName != nil && *got.Spec.StorageClassName != "plain" {
		t.Errorf("beta annotation: storageClassName %s, want nil or plain", className(got))
	}

	// Several defaults: the newest wins, then the first by name.
	offset.Store(int64(time.Hour))
	createClass("zz-newer", map[string]string{"storageclass.kubernetes.io/is-default-class": "true"})
	createClass("yy-newer", map[string]string{"storageclass.kubernetes.io/is-default-class": "true"})
	createClass("not-default", map[string]string{"storageclass.kubernetes.io/is-default-class": "false"})
	zz, _ := cs.StorageV1().StorageClasses().Get(ctx, "zz-newer", metav1.GetOptions{})
	yy, _ := cs.StorageV1().StorageClasses().Get(ctx, "yy-newer", metav1.GetOptions{})
	want := "zz-newer"
	if zz.CreationTimestamp.Equal(&yy.CreationTimestamp) {
		want = "yy-newer"
	}
	if got := createClaim(storageClaim("newest", nil)); className(got) != want {
		t.Errorf("several defaults: storageClassName %s, want %s", className(got), want)
	}

	// A finalizer given already is not doubled.
	pvc := storageClaim("own-finalizer", ptr.To(""))
	pvc.Finalizers = []string{"kubernetes.io/pvc-protection"}
	if got := createClaim(pvc); len(got.Finalizers) != 1 {
		t.Errorf("finalizers %v, want one", got.Finalizers)
	}

	// Volumes get theirs.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/pv1"}},
		},
	}
	got, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Finalizers, []string{"kubernetes.io/pv-protection"}) {
		t.Errorf("volume finalizers %v, want [kubernetes.io/pv-protection]", got.Finalizers)
	}
	// A dry run shows the same, and the finalizers hold a deleted volume.
	dry, err := cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv2"}, Spec: pv.Spec},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || !slices.Contains(dry.Finalizers, "kubernetes.io/pv-protection") {
		t.Errorf("dry run: %v, finalizers %v", err, dry)
	}
	if err := cs.CoreV1().PersistentVolumes().Delete(ctx, "pv1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := cs.CoreV1().PersistentVolumes().Get(ctx, "pv1", metav1.GetOptions{}); err != nil || got.DeletionTimestamp == nil {
		t.Errorf("deleted volume: %v, %v; want it kept, terminating", got, err)
	}
}
