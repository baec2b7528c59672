package scheduler

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
)

// objects is what the scheduler reads of the cluster besides nodes and
// pods: namespace labels (for namespaceSelector), the Services and
// controllers that select a pod (for default spreading), and the
// PodDisruptionBudgets (for preemption). Informer listers implement it;
// tests use fakeObjects.
type objects interface {
	namespaceLabels(ns string) labels.Set
	// services returns the Services of namespace ns.
	services(ns string) []*corev1.Service
	// controller returns the selector of the ReplicationController,
	// ReplicaSet or StatefulSet named by ref in ns, or nil.
	controller(ns string, ref *metav1.OwnerReference) labels.Selector
	pdbs() []*policyv1.PodDisruptionBudget
}

var (
	rcKind = corev1.SchemeGroupVersion.WithKind("ReplicationController")
	rsKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	ssKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
)

// defaultSelector is the selector upstream's default spreading uses for
// pod: the union of the selectors of the Services that select it and of
// the ReplicationController, ReplicaSet or StatefulSet that controls it
// (helper.DefaultSelector).
func defaultSelector(o objects, pod *corev1.Pod) labels.Selector {
	set := labels.Set{}
	for _, svc := range o.services(pod.Namespace) {
		if svc.Spec.Selector == nil {
			continue // a Service without a selector selects nothing
		}
		if labels.Set(svc.Spec.Selector).AsSelectorPreValidated().Matches(labels.Set(pod.Labels)) {
			set = labels.Merge(set, svc.Spec.Selector)
		}
	}
	selector := set.AsSelector()
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return selector
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return selector
	}
	switch gv.WithKind(ref.Kind) {
	case rcKind, rsKind, ssKind:
		if other := o.controller(pod.Namespace, ref); other != nil {
			if reqs, ok := other.Requirements(); ok {
				selector = selector.Add(reqs...)
			}
		}
	}
	return selector
}

// listerObjects reads objects through informer listers.
type listerObjects struct {
	namespaces  corelisters.NamespaceLister
	svcs        corelisters.ServiceLister
	rcs         corelisters.ReplicationControllerLister
	rss         appslisters.ReplicaSetLister
	sss         appslisters.StatefulSetLister
	disruptions policylisters.PodDisruptionBudgetLister
	claims      corelisters.PersistentVolumeClaimLister
	volumes     corelisters.PersistentVolumeLister
	classes     storagelisters.StorageClassLister
}

func (l *listerObjects) namespaceLabels(ns string) labels.Set {
	n, err := l.namespaces.Get(ns)
	if err != nil {
		return nil
	}
	return n.Labels
}

func (l *listerObjects) services(ns string) []*corev1.Service {
	out, _ := l.svcs.Services(ns).List(labels.Everything())
	return out
}

func (l *listerObjects) controller(ns string, ref *metav1.OwnerReference) labels.Selector {
	switch ref.Kind {
	case "ReplicationController":
		if rc, err := l.rcs.ReplicationControllers(ns).Get(ref.Name); err == nil && rc.UID == ref.UID {
			return labels.Set(rc.Spec.Selector).AsSelector()
		}
	case "ReplicaSet":
		if rs, err := l.rss.ReplicaSets(ns).Get(ref.Name); err == nil && rs.UID == ref.UID {
			if sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector); err == nil {
				return sel
			}
		}
	case "StatefulSet":
		if ss, err := l.sss.StatefulSets(ns).Get(ref.Name); err == nil && ss.UID == ref.UID {
			if sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector); err == nil {
				return sel
			}
		}
	}
	return nil
}

func (l *listerObjects) pdbs() []*policyv1.PodDisruptionBudget {
	out, _ := l.disruptions.List(labels.Everything())
	return out
}

func (l *listerObjects) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return l.claims.PersistentVolumeClaims(ns).Get(name)
}

func (l *listerObjects) persistentVolume(name string) *corev1.PersistentVolume {
	pv, _ := l.volumes.Get(name)
	return pv
}

func (l *listerObjects) persistentVolumes() []*corev1.PersistentVolume {
	out, _ := l.volumes.List(labels.Everything())
	return out
}

func (l *listerObjects) storageClass(name string) *storagev1.StorageClass {
	sc, _ := l.classes.Get(name)
	return sc
}
