package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// ReplicationControllers are managed by the ReplicaSet controller's code,
// each seen as the ReplicaSet it amounts to (a map selector is a
// matchLabels one), as upstream does; pods, events and status are the
// ReplicationController's own.

func rcAsReplicaSet(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: rc.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        rc.Spec.Replicas,
			MinReadySeconds: rc.Spec.MinReadySeconds,
			Selector:        &metav1.LabelSelector{MatchLabels: rc.Spec.Selector},
		},
		Status: appsv1.ReplicaSetStatus{
			Replicas: rc.Status.Replicas, FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas: rc.Status.ReadyReplicas, AvailableReplicas: rc.Status.AvailableReplicas,
			ObservedGeneration: rc.Status.ObservedGeneration,
		},
	}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

func replicationControllerSource(cs kubernetes.Interface, f informers.SharedInformerFactory) replicaSource {
	inf := f.Core().V1().ReplicationControllers()
	return replicaSource{
		kind:     corev1.SchemeGroupVersion.WithKind("ReplicationController"),
		informer: inf.Informer(),
		get: func(ns, name string) (*appsv1.ReplicaSet, error) {
			rc, err := inf.Lister().ReplicationControllers(ns).Get(name)
			if err != nil {
				return nil, err
			}
			return rcAsReplicaSet(rc), nil
		},
		list: func(ns string) ([]*appsv1.ReplicaSet, error) {
			rcs, err := inf.Lister().ReplicationControllers(ns).List(labels.Everything())
			var out []*appsv1.ReplicaSet
			for _, rc := range rcs {
				out = append(out, rcAsReplicaSet(rc))
			}
			return out, err
		},
		updateStatus: func(ctx context.Context, rs *appsv1.ReplicaSet) error {
			rc, err := inf.Lister().ReplicationControllers(rs.Namespace).Get(rs.Name)
			if err != nil {
				return err
			}
			rc = rc.DeepCopy()
			rc.Status = corev1.ReplicationControllerStatus{
				Replicas: rs.Status.Replicas, FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
				ReadyReplicas: rs.Status.ReadyReplicas, AvailableReplicas: rs.Status.AvailableReplicas,
				ObservedGeneration: rs.Status.ObservedGeneration,
			}
			for _, c := range rs.Status.Conditions {
				rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
					Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
				})
			}
			_, err = cs.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{})
			return err
		},
		object: func(rs *appsv1.ReplicaSet) runtime.Object {
			return &corev1.ReplicationController{ObjectMeta: rs.ObjectMeta}
		},
	}
}
