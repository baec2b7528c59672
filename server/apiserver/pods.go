package apiserver

import (
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/storage"
)

// bind is POST pods/<name>/binding: the scheduler's choice of a node. It
// sets spec.nodeName and the PodScheduled condition, once.
func (c *call) bind(name string) error {
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	var b corev1.Binding
	gvk := corev1.SchemeGroupVersion.WithKind("Binding")
	if _, _, err := c.s.codecs.UniversalDeserializer().Decode(data, &gvk, &b); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as a Binding: %v", err))
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return apierrors.NewBadRequest(fmt.Sprintf("binding target kind %q is not Node", b.Target.Kind))
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(gvk.GroupKind(), name, fieldErrors("target.name", "must name the node"))
	}
	_, err = c.res.store.Update(c.ctx, c.info.Namespace, name, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, fmt.Errorf("pod %s is already assigned to node %q", name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(c.s.cfg.Now())})
		return pod, nil
	})
	if err != nil {
		return err
	}
	c.respond(http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess})
	return nil
}

func setPodCondition(pod *corev1.Pod, cond corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == cond.Type {
			if pod.Status.Conditions[i].Status == cond.Status {
				cond.LastTransitionTime = pod.Status.Conditions[i].LastTransitionTime
			}
			pod.Status.Conditions[i] = cond
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
}

// evict is POST pods/<name>/eviction (kubectl drain): the pod is deleted
// unless a PodDisruptionBudget that selects it allows no disruption now,
// which is a 429 as upstream answers it. An allowed eviction takes one
// from the budget's disruptionsAllowed, and marks the pod with the
// DisruptionTarget condition (EvictionByEvictionAPI) before it deletes it.
func (c *call) evict(name string) error {
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	var ev policyv1.Eviction
	gvk := policyv1.SchemeGroupVersion.WithKind("Eviction")
	if _, _, err := c.s.codecs.UniversalDeserializer().Decode(data, &gvk, &ev); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as an Eviction: %v", err))
	}
	if ev.Name != "" && ev.Name != name {
		return apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object"))
	}
	obj, err := c.res.store.Get(c.ctx, c.info.Namespace, name, "")
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	// Pods that have finished, are not running yet or are going already
	// need no budget.
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodPending && pod.DeletionTimestamp == nil {
		if err := c.s.takeDisruption(c, pod); err != nil {
			return err
		}
	}
	if pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		_, err := c.res.store.Update(c.ctx, pod.Namespace, pod.Name, func(cur runtime.Object) (runtime.Object, error) {
			p := cur.(*corev1.Pod)
			setPodCondition(p, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(c.s.cfg.Now())})
			return p, nil
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	opts := metav1.DeleteOptions{}
	if ev.DeleteOptions != nil {
		opts = *ev.DeleteOptions
	}
	if _, _, err := c.deleteOne(name, opts, false); err != nil {
		return err
	}
	c.respond(http.StatusCreated, &metav1.Status{Status: metav1.StatusSuccess})
	return nil
}

// takeDisruption finds the budget covering pod and takes one disruption
// from it, or refuses.
func (s *Server) takeDisruption(c *call, pod *corev1.Pod) error {
	pdbs, _ := s.reg.get(schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"})
	list, err := pdbs.store.List(c.ctx, storage.ListOptions{Namespace: pod.Namespace})
	if err != nil {
		return err
	}
	var match []policyv1.PodDisruptionBudget
	for _, pdb := range list.(*policyv1.PodDisruptionBudgetList).Items {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		match = append(match, pdb)
	}
	switch {
	case len(match) == 0:
		return nil
	case len(match) > 1:
		return apierrors.NewInternalError(fmt.Errorf("this pod has more than one PodDisruptionBudget, which the eviction subresource does not support"))
	}
	pdb := match[0]
	tooMany := func(msg string) error {
		err := apierrors.NewTooManyRequests(msg, 10)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy)})
		return err
	}
	// A pod that is not Ready counts for nothing: it may go without
	// taking a disruption when the budget says always, or (the default)
	// while the budget is healthy without it.
	if !podIsReady(pod) {
		if p := pdb.Spec.UnhealthyPodEvictionPolicy; p != nil && *p == policyv1.AlwaysAllow {
			return nil
		}
		if pdb.Status.DesiredHealthy > 0 && pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy {
			return nil
		}
	}
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return tooMany("Cannot evict pod as it would violate the pod's disruption budget.")
	}
	_, err = pdbs.store.Update(c.ctx, pdb.Namespace, pdb.Name, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*policyv1.PodDisruptionBudget)
		if p.Status.DisruptionsAllowed <= 0 {
			return nil, tooMany("Cannot evict pod as it would violate the pod's disruption budget.")
		}
		p.Status.DisruptionsAllowed--
		if p.Status.DisruptedPods == nil {
			p.Status.DisruptedPods = map[string]metav1.Time{}
		}
		p.Status.DisruptedPods[pod.Name] = metav1.NewTime(s.cfg.Now())
		return p, nil
	})
	return err
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
