package controllers_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func ephemeralPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
				VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"kind": "scratch"}},
					Spec: corev1.PersistentVolumeClaimSpec{
						StorageClassName: ptr.To("local-path"),
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					}}}}}},
		},
	}
}

func claimOf(cs kubernetes.Interface, name string) func() error {
	return func() error {
		pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ref := metav1.GetControllerOf(pvc)
		if ref == nil || ref.Kind != "Pod" || ref.Name != "scratchy" || pvc.Labels["kind"] != "scratch" ||
			pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
			return fmt.Errorf("claim %s: owner %v, labels %v, class %v", name, ref, pvc.Labels, pvc.Spec.StorageClassName)
		}
		return nil
	}
}

func TestEphemeralVolumeClaims(t *testing.T) {
	cfg := startAPI(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	runControllers(t, cfg, "server-a")

	pod, err := cs.CoreV1().Pods("default").Create(ctx, ephemeralPod("scratchy"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ephemeral volume's claim", claimOf(cs, "scratchy-scratch"))

	// A claim of that name the pod does not own is left alone, and said so.
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "squatter-scratch"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, ephemeralPod("squatter"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the event on the pod", func() error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=squatter,reason=FailedBinding"})
		if err == nil && len(evs.Items) == 0 {
			return fmt.Errorf("no FailedBinding event")
		}
		return err
	})
	squat, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "squatter-scratch", metav1.GetOptions{})
	if err != nil || len(squat.OwnerReferences) != 0 {
		t.Errorf("the squatter's claim: %v, owners %v", err, squat.OwnerReferences)
	}

	// The pod goes: the garbage collector takes its claim.
	if err := cs.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the claim collected with its pod", func() error {
		_, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "scratchy-scratch", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return fmt.Errorf("still there")
		}
		return err
	})
}
