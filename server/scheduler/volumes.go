package scheduler

// VolumeBinding: upstream's plugin for pods with PersistentVolumeClaims,
// in three steps.
//
//   - Pre-filter (preFilterVolumes): every claim must exist and not be
//     going; a claim not yet bound must be of a class that binds
//     WaitForFirstConsumer (an Immediate claim is the binder's to bind
//     first).
//   - Filter (volumeFit): a node must satisfy the node affinity of the
//     volumes already bound, and each waiting claim must either find an
//     available volume there or be provisionable by its class.
//   - Pre-bind (bindVolumes): on the chosen node, a waiting claim is
//     pre-bound to the volume found (the volume's claimRef) or handed to
//     its provisioner (the claim's volume.kubernetes.io/selected-node
//     annotation); the pod is bound only once every claim is Bound, so a
//     pod's containers never wait for their volumes.
//
// The PersistentVolume controller (server/controllers) completes
// bindings and sets the provisioner's annotation; the provisioner (for
// local-path, addons/localpath on the selected node) makes the volume.

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// Upstream's reasons (volumebinding's ErrReason constants).
const (
	reasonVolumeNodeConflict = "node(s) had volume node affinity conflict"
	reasonVolumeBindConflict = "node(s) didn't find available persistent volumes to bind"
	reasonVolumeNotExist     = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	msgUnboundImmediate      = "pod has unbound immediate PersistentVolumeClaims"
)

var (
	stVolumeNodeConflict = &status{codeUnresolvable, []string{reasonVolumeNodeConflict}, plVolumeBinding}
	stVolumeBindConflict = &status{codeUnresolvable, []string{reasonVolumeBindConflict}, plVolumeBinding}
	stVolumeNotExist     = &status{codeUnresolvable, []string{reasonVolumeNotExist}, plVolumeBinding}
)

// bindTimeout is how long the pre-bind step waits for the claims of a
// pod to be bound (upstream's --bind-timeout-seconds default).
const bindTimeout = 10 * time.Minute

// volumeObjects is what VolumeBinding reads: claims, volumes and classes.
type volumeObjects interface {
	claim(ns, name string) (*corev1.PersistentVolumeClaim, error)
	persistentVolume(name string) *corev1.PersistentVolume
	persistentVolumes() []*corev1.PersistentVolume
	storageClass(name string) *storagev1.StorageClass
}

// volumeState is what the pre-filter found of a pod's claims.
type volumeState struct {
	bound   []*corev1.PersistentVolume      // the volumes of its bound claims
	waiting []*corev1.PersistentVolumeClaim // its claims waiting for a node
	pvs     []*corev1.PersistentVolume      // with waiting claims: every volume, read once a cycle
}

// podClaim is a claim a pod's volume uses.
type podClaim struct {
	name      string
	ephemeral bool // the claim of an ephemeral volume, which the pod must own
}

// podClaims lists the claims the pod's volumes use: its
// persistentVolumeClaim volumes and the claims of its ephemeral volumes
// (named <pod>-<volume>).
func podClaims(pod *corev1.Pod) []podClaim {
	var out []podClaim
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			out = append(out, podClaim{name: v.PersistentVolumeClaim.ClaimName})
		case v.Ephemeral != nil:
			out = append(out, podClaim{name: pod.Name + "-" + v.Name, ephemeral: true})
		}
	}
	return out
}

// preFilterVolumes reads the pod's claims; a message when the pod cannot
// be scheduled anywhere now. A pod without claims gets nil, nil.
func (a *algorithm) preFilterVolumes(pod *corev1.Pod) (*volumeState, string) {
	claims := podClaims(pod)
	if len(claims) == 0 {
		return nil, ""
	}
	vo, ok := a.objs.(volumeObjects)
	if !ok {
		return nil, ""
	}
	st := &volumeState{}
	immediate := false
	for _, pc := range claims {
		name := pc.name
		pvc, err := vo.claim(pod.Namespace, name)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("persistentvolumeclaim %q not found", name)
		}
		if err != nil {
			return nil, err.Error()
		}
		if pc.ephemeral && !metav1.IsControlledBy(pvc, pod) {
			return nil, fmt.Sprintf("PVC %s/%s was not created for pod %s/%s (pod is not owner)", pod.Namespace, name, pod.Namespace, pod.Name)
		}
		if pvc.DeletionTimestamp != nil {
			return nil, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
		}
		if pvc.Spec.VolumeName != "" {
			pv := vo.persistentVolume(pvc.Spec.VolumeName)
			if pv == nil {
				st.bound = append(st.bound, &corev1.PersistentVolume{}) // filtered out on every node
				continue
			}
			st.bound = append(st.bound, pv)
			continue
		}
		class := storagehelpers.GetPersistentVolumeClaimClass(pvc)
		if class == "" {
			immediate = true
			continue
		}
		// A class that does not exist names static volumes (the "manual"
		// of upstream's tutorial): they bind at once, as Immediate.
		sc := vo.storageClass(class)
		if sc == nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			immediate = true
			continue
		}
		st.waiting = append(st.waiting, pvc)
	}
	if immediate {
		return nil, msgUnboundImmediate
	}
	if len(st.waiting) > 0 {
		st.pvs = vo.persistentVolumes()
	}
	return st, ""
}

// volumePlan is how a pod's waiting claims bind on one node: to a
// volume found there, or (nil) through their class's provisioner.
type volumePlan map[*corev1.PersistentVolumeClaim]*corev1.PersistentVolume

// volumeFit is VolumeBinding's filter on node n; with the plan when the
// pod's volumes fit.
func (a *algorithm) volumeFit(st *volumeState, n *corev1.Node) (volumePlan, *status) {
	for _, pv := range st.bound {
		if pv.Name == "" {
			return nil, stVolumeNotExist
		}
		if storagehelpers.CheckNodeAffinity(pv, n.Labels) != nil {
			return nil, stVolumeNodeConflict
		}
	}
	if len(st.waiting) == 0 {
		return nil, nil
	}
	vo := a.objs.(volumeObjects)
	plan := volumePlan{}
	taken := map[string]*corev1.PersistentVolume{}
	for _, pvc := range st.waiting {
		if sel, ok := pvc.Annotations[storagehelpers.AnnSelectedNode]; ok {
			// Handed to its provisioner for that node already.
			if sel != n.Name {
				return nil, stVolumeBindConflict
			}
			plan[pvc] = nil
			continue
		}
		if pv, _ := storagehelpers.FindMatchingVolume(pvc, st.pvs, n, taken, false, true); pv != nil {
			plan[pvc] = pv
			taken[pv.Name] = pv
			continue
		}
		sc := vo.storageClass(storagehelpers.GetPersistentVolumeClaimClass(pvc))
		if sc == nil || sc.Provisioner == "" || sc.Provisioner == storagehelpers.NotSupportedProvisioner ||
			!matchTopology(sc.AllowedTopologies, n.Labels) {
			return nil, stVolumeBindConflict
		}
		plan[pvc] = nil
	}
	return plan, nil
}

// matchTopology reports whether a class's allowedTopologies admit a node
// with these labels (none admit every node).
func matchTopology(terms []corev1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		ok := true
		for _, e := range t.MatchLabelExpressions {
			if !slices.Contains(e.Values, nodeLabels[e.Key]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// bindVolumes is VolumeBinding's pre-bind: it carries out the plan for
// node and waits until every claim of the pod is Bound.
func (s *Scheduler) bindVolumes(ctx context.Context, pod *corev1.Pod, node string, plan volumePlan) error {
	ctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	for pvc, pv := range plan {
		var err error
		if pv != nil {
			err = s.preBindVolume(ctx, pv, pvc)
		} else {
			err = s.selectNode(ctx, pvc, node)
		}
		if err != nil {
			return err
		}
	}
	vo, _ := s.algo.objs.(volumeObjects)
	selected := map[*corev1.PersistentVolumeClaim]bool{} // seen with our node selected
	for {
		done := true
		for pvc, pv := range plan {
			cur, err := vo.claim(pvc.Namespace, pvc.Name)
			if err != nil {
				return err
			}
			if cur.UID != pvc.UID {
				return fmt.Errorf("persistentvolumeclaim %q was replaced", pvc.Name)
			}
			if pv == nil && cur.Spec.VolumeName == "" {
				if cur.Annotations[storagehelpers.AnnSelectedNode] == node {
					selected[pvc] = true
				} else if selected[pvc] {
					// The provisioner gave up on this node and unset it.
					return fmt.Errorf("provisioning failed for PVC %q", pvc.Name)
				}
			}
			if cur.Status.Phase != corev1.ClaimBound {
				done = false
			}
		}
		if done {
			return nil
		}
		if s.pods != nil {
			if _, err := s.pods.Pods(pod.Namespace).Get(pod.Name); apierrors.IsNotFound(err) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("binding volumes: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// selectNode hands a claim to its provisioner for node.
func (s *Scheduler) selectNode(ctx context.Context, pvc *corev1.PersistentVolumeClaim, node string) error {
	if pvc.Annotations[storagehelpers.AnnSelectedNode] == node {
		return nil
	}
	claims := s.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := claims.Get(ctx, pvc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pvc.UID {
			return fmt.Errorf("persistentvolumeclaim %q was replaced", pvc.Name)
		}
		if cur.Annotations[storagehelpers.AnnSelectedNode] == node {
			return nil
		}
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, storagehelpers.AnnSelectedNode, node)
		_, err = claims.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// preBindVolume points a volume's claimRef at the claim, for the
// PersistentVolume controller to complete the binding.
func (s *Scheduler) preBindVolume(ctx context.Context, pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) error {
	next, dirty, err := storagehelpers.GetBindVolumeToClaim(pv, pvc)
	if err != nil || !dirty {
		return err
	}
	_, err = s.cs.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	return err
}
