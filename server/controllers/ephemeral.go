package controllers

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// The ephemeral volume controller makes the claim of each generic
// ephemeral volume of a pod, as upstream's does: <pod>-<volume>, from the
// volume's volumeClaimTemplate, owned by the pod (so that the garbage
// collector deletes it with the pod). The scheduler then binds it as any
// claim, and the kubelet mounts it; a claim of that name that the pod
// does not own is left alone (the pod cannot start, as upstream's).

type ephemeralVolumes struct {
	cs       kubernetes.Interface
	pods     corelisters.PodLister
	claims   corelisters.PersistentVolumeClaimLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
}

func newEphemeralVolumes(cs kubernetes.Interface, f informerSet, recorder record.EventRecorder, log *slog.Logger) controller {
	podInf, pvcInf := f.Core().V1().Pods(), f.Core().V1().PersistentVolumeClaims()
	c := &ephemeralVolumes{
		cs: cs, pods: podInf.Lister(), claims: pvcInf.Lister(), recorder: recorder,
		synced: []cache.InformerSynced{podInf.Informer().HasSynced, pvcInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ephemeral_volume"}),
		log: log.With("controller", "ephemeral-volume"),
	}
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && pod.DeletionTimestamp == nil && hasEphemeralVolumes(pod) {
			c.queue.Add(pod.Namespace + "/" + pod.Name)
		}
	}
	f.addEventHandler(podInf.Informer(), cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

func hasEphemeralVolumes(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Ephemeral != nil {
			return true
		}
	}
	return false
}

func (c *ephemeralVolumes) name() string { return "ephemeral-volume" }

func (c *ephemeralVolumes) run(ctx context.Context) {
	runWorkers(ctx, c.queue, c.synced, 1, c.log, c.sync)
}

func (c *ephemeralVolumes) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || err == nil && pod.DeletionTimestamp != nil {
		return nil
	}
	if err != nil {
		return err
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate == nil {
			continue
		}
		if err := c.ensureClaim(ctx, pod, v); err != nil {
			return err
		}
	}
	return nil
}

// ensureClaim creates the claim of one ephemeral volume unless it exists.
func (c *ephemeralVolumes) ensureClaim(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) error {
	claimName := pod.Name + "-" + v.Name
	if existing, err := c.claims.PersistentVolumeClaims(pod.Namespace).Get(claimName); err == nil {
		if !metav1.IsControlledBy(existing, pod) {
			c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedBinding",
				"PVC %s/%s was not created for the pod", pod.Namespace, claimName)
		}
		return nil
	}
	tmpl := v.Ephemeral.VolumeClaimTemplate
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: claimName, Namespace: pod.Namespace,
			Labels: tmpl.Labels, Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	_, err := c.cs.CoreV1().PersistentVolumeClaims(pod.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	switch {
	case err == nil || apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsInvalid(err) || apierrors.IsForbidden(err):
		// Nothing a retry mends: say so on the pod.
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreate", "create PVC %s: %v", claimName, err)
		return nil
	}
	return fmt.Errorf("create PVC %s/%s: %w", pod.Namespace, claimName, err)
}
