package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// pvTest is a fixture: an API server with the controllers running.
type pvTest struct {
	t   *testing.T
	cs  kubernetes.Interface
	ctx context.Context
}

func startPVTest(t *testing.T) *pvTest {
	cfg := startAPI(t)
	runControllers(t, cfg, "server-a")
	tc := rest.CopyConfig(cfg)
	tc.QPS = -1 // the test polls often
	return &pvTest{t: t, cs: kubernetes.NewForConfigOrDie(tc), ctx: context.Background()}
}

func (f *pvTest) volume(name, class, size string, policy corev1.PersistentVolumeReclaimPolicy, edit ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	f.t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              class,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/" + name}},
		},
	}
	for _, e := range edit {
		e(pv)
	}
	out, err := f.cs.CoreV1().PersistentVolumes().Create(f.ctx, pv, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *pvTest) claim(name string, class *string, size string) *corev1.PersistentVolumeClaim {
	f.t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
	out, err := f.cs.CoreV1().PersistentVolumeClaims("default").Create(f.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *pvTest) class(name, provisioner string, mode storagev1.VolumeBindingMode) {
	f.t.Helper()
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
	if _, err := f.cs.StorageV1().StorageClasses().Create(f.ctx, sc, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// bound waits until claim and volume are bound to each other, and checks
// what the binding wrote.
func (f *pvTest) bound(claim, volume string) {
	f.t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	var pv *corev1.PersistentVolume
	eventually(f.t, claim+" bound to "+volume, func() error {
		var err error
		if pvc, err = f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, claim, metav1.GetOptions{}); err != nil {
			return err
		}
		if pv, err = f.cs.CoreV1().PersistentVolumes().Get(f.ctx, volume, metav1.GetOptions{}); err != nil {
			return err
		}
		if pvc.Spec.VolumeName != volume || pvc.Status.Phase != corev1.ClaimBound || pv.Status.Phase != corev1.VolumeBound {
			return fmt.Errorf("claim volumeName %q phase %s, volume phase %s", pvc.Spec.VolumeName, pvc.Status.Phase, pv.Status.Phase)
		}
		return nil
	})
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.APIVersion != "v1" || ref.Namespace != "default" || ref.Name != claim ||
		ref.UID != pvc.UID {
		f.t.Errorf("volume %s claimRef %+v, want claim %s (uid %s)", volume, ref, claim, pvc.UID)
	}
	if pvc.Annotations["pv.kubernetes.io/bind-completed"] != "yes" {
		f.t.Errorf("claim %s annotations %v: want pv.kubernetes.io/bind-completed", claim, pvc.Annotations)
	}
	capacity := pvc.Status.Capacity[corev1.ResourceStorage]
	if want := pv.Spec.Capacity[corev1.ResourceStorage]; capacity.Cmp(want) != 0 || !slices.Equal(pvc.Status.AccessModes, pv.Spec.AccessModes) {
		f.t.Errorf("claim %s status %+v, want the volume's capacity %s and access modes %v", claim, pvc.Status, want.String(), pv.Spec.AccessModes)
	}
}

// pending checks that a claim stays unbound for a while.
func (f *pvTest) pending(claim string, d time.Duration) {
	f.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pvc, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, claim, metav1.GetOptions{})
		if err != nil {
			f.t.Fatal(err)
		}
		if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending {
			f.t.Fatalf("claim %s: volumeName %q, phase %s; want it Pending", claim, pvc.Spec.VolumeName, pvc.Status.Phase)
		}
	}
}

func (f *pvTest) volumePhase(name string, phase corev1.PersistentVolumePhase) *corev1.PersistentVolume {
	f.t.Helper()
	var pv *corev1.PersistentVolume
	eventually(f.t, name+" "+string(phase), func() error {
		var err error
		pv, err = f.cs.CoreV1().PersistentVolumes().Get(f.ctx, name, metav1.GetOptions{})
		if err == nil && pv.Status.Phase != phase {
			return fmt.Errorf("phase %s, message %q", pv.Status.Phase, pv.Status.Message)
		}
		return err
	})
	return pv
}

func (f *pvTest) gone(what string, get func() error) {
	f.t.Helper()
	eventually(f.t, what+" gone", func() error {
		if err := get(); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}

func (f *pvTest) deleteClaim(name string) {
	f.t.Helper()
	if err := f.cs.CoreV1().PersistentVolumeClaims("default").Delete(f.ctx, name, metav1.DeleteOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *pvTest) claimGone(name string) {
	f.t.Helper()
	f.gone("claim "+name, func() error {
		_, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, name, metav1.GetOptions{})
		return err
	})
}

func TestPersistentVolumeStaticBinding(t *testing.T) {
	f := startPVTest(t)
	noClass := ptr.To("")

	// Volume first: the smallest that fits.
	f.volume("big", "", "5Gi", corev1.PersistentVolumeReclaimRetain)
	f.volume("small", "", "1Gi", corev1.PersistentVolumeReclaimRetain)
	f.volume("tiny", "", "100Mi", corev1.PersistentVolumeReclaimRetain)
	f.volumePhase("small", corev1.VolumeAvailable)
	f.claim("first", noClass, "500Mi")
	f.bound("first", "small")
	if pv, _ := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, "small", metav1.GetOptions{}); pv.Spec.ClaimRef.ResourceVersion == "" {
		t.Errorf("claimRef %+v: want the claim's resourceVersion", pv.Spec.ClaimRef)
	}
	if pv, _ := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, "small", metav1.GetOptions{}); pv.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("volume annotations %v, want pv.kubernetes.io/bound-by-controller", pv.Annotations)
	}
	if pvc, _ := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "first", metav1.GetOptions{}); pvc.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("claim annotations %v, want pv.kubernetes.io/bound-by-controller", pvc.Annotations)
	}

	// Claim first: it waits, saying why, until a volume comes.
	f.claim("second", noClass, "10Gi")
	hasEvent(t, f.cs, "default", "second", "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
	f.pending("second", 300*time.Millisecond)
	f.volume("huge", "", "10Gi", corev1.PersistentVolumeReclaimRetain)
	f.bound("second", "huge")

	// A class matches only volumes of that class, and a claim without one
	// only volumes without one.
	f.claim("classy", ptr.To("manual"), "1Gi")
	hasEvent(t, f.cs, "default", "classy", "ProvisioningFailed", `storageclass.storage.k8s.io "manual" not found`)
	f.pending("classy", 300*time.Millisecond) // "big" (no class) stays free
	f.volume("manual-1", "manual", "2Gi", corev1.PersistentVolumeReclaimRetain)
	f.bound("classy", "manual-1")
	f.claim("classless", noClass, "1Gi")
	f.bound("classless", "big")

	// A volume pre-bound to a claim goes to that claim only, even when
	// another fits better.
	f.volume("reserved", "", "3Gi", corev1.PersistentVolumeReclaimRetain, func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "wants-reserved"}
	})
	f.volume("spare", "", "3Gi", corev1.PersistentVolumeReclaimRetain)
	f.volumePhase("reserved", corev1.VolumeAvailable)
	f.claim("wants-reserved", noClass, "1Gi")
	f.bound("wants-reserved", "reserved")
	if pv, _ := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, "reserved", metav1.GetOptions{}); pv.Annotations["pv.kubernetes.io/bound-by-controller"] != "" {
		t.Errorf("pre-bound volume annotations %v, want no pv.kubernetes.io/bound-by-controller", pv.Annotations)
	}
	// A claim naming its volume gets it.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "named"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: noClass, VolumeName: "spare",
		},
	}
	if _, err := f.cs.CoreV1().PersistentVolumeClaims("default").Create(f.ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.bound("named", "spare")
	if pvc, _ := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "named", metav1.GetOptions{}); pvc.Annotations["pv.kubernetes.io/bound-by-controller"] != "" {
		t.Errorf("claim that named its volume: annotations %v, want no pv.kubernetes.io/bound-by-controller", pvc.Annotations)
	}
	f.volumePhase("tiny", corev1.VolumeAvailable)
}

func TestPersistentVolumeWaitForFirstConsumer(t *testing.T) {
	f := startPVTest(t)
	f.class("local", "example.com/local", storagev1.VolumeBindingWaitForFirstConsumer)
	f.volume("static-local", "local", "5Gi", corev1.PersistentVolumeReclaimDelete) // not taken: the scheduler picks for this class
	pvc := f.claim("data", ptr.To("local"), "1Gi")
	hasEvent(t, f.cs, "default", "data", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
	f.pending("data", 300*time.Millisecond)
	if got, _ := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "data", metav1.GetOptions{}); got.Annotations["volume.kubernetes.io/storage-provisioner"] != "" {
		t.Fatalf("annotations %v before a node is selected", got.Annotations)
	}

	// A pod that uses it waits for the scheduler (there is no node here).
	user := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "user"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}
	if _, err := f.cs.CoreV1().Pods("default").Create(f.ctx, user, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hasEvent(t, f.cs, "default", "data", "WaitForPodScheduled", "waiting for pod user to be scheduled")

	// The scheduler picks a node: the claim goes to its provisioner.
	pvc, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, "volume.kubernetes.io/selected-node", "node1")
	if pvc, err = f.cs.CoreV1().PersistentVolumeClaims("default").Update(f.ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provisioner annotations", func() error {
		got, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "data", metav1.GetOptions{})
		if err == nil && (got.Annotations["volume.kubernetes.io/storage-provisioner"] != "example.com/local" ||
			got.Annotations["volume.beta.kubernetes.io/storage-provisioner"] != "example.com/local") {
			return fmt.Errorf("annotations %v", got.Annotations)
		}
		return err
	})
	hasEvent(t, f.cs, "default", "data", "ExternalProvisioning", "Waiting for a volume to be created either by the external provisioner "+
		"'example.com/local' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner "+
		"is running and correctly registered.")

	// The provisioner makes a volume for the claim; the binding completes.
	f.volume("pvc-"+string(pvc.UID), "local", "1Gi", corev1.PersistentVolumeReclaimDelete, func(pv *corev1.PersistentVolume) {
		pv.Annotations = map[string]string{"pv.kubernetes.io/provisioned-by": "example.com/local"}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "data", UID: pvc.UID}
	})
	f.bound("data", "pvc-"+string(pvc.UID))

	// Deleted (once its pod is gone), the claim releases its volume,
	// which its provisioner deletes (labctl's controller leaves it be).
	f.deleteClaim("data")
	if err := f.cs.CoreV1().Pods("default").Delete(f.ctx, "user", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	f.claimGone("data")
	f.volumePhase("pvc-"+string(pvc.UID), corev1.VolumeReleased)
	time.Sleep(200 * time.Millisecond)
	f.volumePhase("pvc-"+string(pvc.UID), corev1.VolumeReleased)
	f.volumePhase("static-local", corev1.VolumeAvailable)
}

func TestPersistentVolumeImmediateProvisioning(t *testing.T) {
	f := startPVTest(t)
	f.class("fast", "example.com/fast", storagev1.VolumeBindingImmediate)
	f.claim("now", ptr.To("fast"), "1Gi")
	eventually(t, "provisioner annotations", func() error {
		got, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "now", metav1.GetOptions{})
		if err == nil && (got.Annotations["volume.kubernetes.io/storage-provisioner"] != "example.com/fast" ||
			got.Annotations["volume.beta.kubernetes.io/storage-provisioner"] != "example.com/fast") {
			return fmt.Errorf("annotations %v", got.Annotations)
		}
		return err
	})
	// kubernetes.io/no-provisioner provisions nothing.
	f.class("none", "kubernetes.io/no-provisioner", storagev1.VolumeBindingImmediate)
	f.claim("never", ptr.To("none"), "1Gi")
	hasEvent(t, f.cs, "default", "never", "ProvisioningFailed", "no volume plugin matched name: kubernetes.io/no-provisioner")
	if got, _ := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "never", metav1.GetOptions{}); got.Annotations["volume.kubernetes.io/storage-provisioner"] != "" {
		t.Errorf("annotations %v", got.Annotations)
	}

	// A claim made with no class while there was no default gets the
	// default that comes later (upstream's retroactive assignment).
	f.claim("late", nil, "1Gi")
	hasEvent(t, f.cs, "default", "late", "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "std", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "example.com/std"}
	if _, err := f.cs.StorageV1().StorageClasses().Create(f.ctx, sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the default class given", func() error {
		got, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "late", metav1.GetOptions{})
		if err == nil && (ptr.Deref(got.Spec.StorageClassName, "<nil>") != "std" || got.Annotations["volume.kubernetes.io/storage-provisioner"] != "example.com/std") {
			return fmt.Errorf("class %s, annotations %v", ptr.Deref(got.Spec.StorageClassName, "<nil>"), got.Annotations)
		}
		return err
	})
}

func TestPersistentVolumeReclaim(t *testing.T) {
	f := startPVTest(t)
	noClass := ptr.To("")
	f.volume("kept", "", "1Gi", corev1.PersistentVolumeReclaimRetain)
	f.claim("a", noClass, "1Gi")
	f.bound("a", "kept")
	f.deleteClaim("a")
	f.claimGone("a")
	f.volumePhase("kept", corev1.VolumeReleased)

	// Delete, with no deleter for a hostPath outside /tmp: Failed.
	f.volume("doomed", "", "2Gi", corev1.PersistentVolumeReclaimDelete)
	f.claim("b", noClass, "2Gi")
	f.bound("b", "doomed")
	f.deleteClaim("b")
	pv := f.volumePhase("doomed", corev1.VolumeFailed)
	const msg = "host_path deleter only supports /tmp/.+ but received provided /data/doomed"
	if pv.Status.Message != msg {
		t.Errorf("message %q, want %q", pv.Status.Message, msg)
	}
	hasEvent(t, f.cs, "", "doomed", "VolumeFailedDelete", msg)

	// A Released or Failed volume deleted goes at once (not Bound).
	for _, name := range []string{"kept", "doomed"} {
		if err := f.cs.CoreV1().PersistentVolumes().Delete(f.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.gone("volume "+name, func() error {
			_, err := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, name, metav1.GetOptions{})
			return err
		})
	}
}

func TestPersistentVolumeClaimProtection(t *testing.T) {
	f := startPVTest(t)
	f.volume("vol", "", "1Gi", corev1.PersistentVolumeReclaimRetain)
	f.claim("used", ptr.To(""), "1Gi")
	f.bound("used", "vol")
	pod := func(name string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
				Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "used"}}}},
			},
		}
		p, err := f.cs.CoreV1().Pods("default").Create(f.ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A pod that finished does not hold the claim; one pending does.
	pod("done")
	eventually(t, "pod done Succeeded", func() error { // the scheduler writes the pod too
		done, err := f.cs.CoreV1().Pods("default").Get(f.ctx, "done", metav1.GetOptions{})
		if err != nil {
			return err
		}
		done.Status.Phase = corev1.PodSucceeded
		_, err = f.cs.CoreV1().Pods("default").UpdateStatus(f.ctx, done, metav1.UpdateOptions{})
		return err
	})
	pod("user")

	f.deleteClaim("used")
	// The volume deleted while Bound waits too.
	if err := f.cs.CoreV1().PersistentVolumes().Delete(f.ctx, "vol", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pvc, err := f.cs.CoreV1().PersistentVolumeClaims("default").Get(f.ctx, "used", metav1.GetOptions{})
		if err != nil || pvc.DeletionTimestamp == nil || !slices.Contains(pvc.Finalizers, "kubernetes.io/pvc-protection") {
			t.Fatalf("claim in use: %v, %+v; want it kept, terminating", err, pvc)
		}
		pv, err := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, "vol", metav1.GetOptions{})
		if err != nil || pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, "kubernetes.io/pv-protection") || pv.Status.Phase != corev1.VolumeBound {
			t.Fatalf("bound volume: %v, %+v; want it kept, Bound, terminating", err, pv)
		}
	}

	// The pod goes: the claim goes, the volume is released and goes.
	if err := f.cs.CoreV1().Pods("default").Delete(f.ctx, "user", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	f.claimGone("used")
	f.gone("volume vol", func() error {
		_, err := f.cs.CoreV1().PersistentVolumes().Get(f.ctx, "vol", metav1.GetOptions{})
		return err
	})
}
