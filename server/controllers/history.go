package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
)

// ControllerRevisions are the history of a StatefulSet's or a DaemonSet's
// pod template, kept as upstream's controller history keeps it: one
// immutable object per template, named <owner>-<hash>, owned by the set as
// its controller and carrying the template's labels, whose data is the
// strategic merge patch that puts that template back,
// {"spec":{"template":{..., "$patch":"replace"}}} (what kubectl rollout
// undo sends), and whose revision number grows: going back to an older
// template moves that template's revision to the top rather than making a
// new one. The history is trimmed to revisionHistoryLimit (10 by default),
// oldest first, never deleting a revision that pods or the status still
// use.

// revisionDataHashLabel holds the hash of a StatefulSet revision's data,
// as upstream's history package labels them. DaemonSet revisions carry
// the controller-revision-hash label their pods get instead.
const revisionDataHashLabel = "controller.kubernetes.io/hash"

// templatePatch is a revision's data for a pod template: the template's
// JSON, keys sorted, with "$patch":"replace", under spec.template. It is
// byte for byte what kubectl computes to tell whether a revision is the
// current one.
func templatePatch(t *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode the pod template: %w", err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		return nil, fmt.Errorf("decode the pod template: %w", err)
	}
	tmpl["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl}})
}

// hashRevisionData is upstream's hash of a revision: FNV-32 of the data,
// then of the collision count in decimal, made safe to read.
func hashRevisionData(data []byte, collisions *int32) string {
	h := fnv.New32()
	h.Write(data)
	if collisions != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisions), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// revisionName is <owner>-<hash>, the owner cut to leave a valid name.
func revisionName(owner, hash string) string {
	if len(owner) > 223 {
		owner = owner[:223]
	}
	return owner + "-" + hash
}

// newRevision builds (without a name: the caller's namer gives it one) a
// revision of owner with the template labels, the owner's annotations
// (kubectl rollout history reads change-cause there) and data.
func newRevision(owner metav1.Object, kind schema.GroupVersionKind, templateLabels map[string]string, data []byte, revision int64) *appsv1.ControllerRevision {
	l := make(map[string]string, len(templateLabels)+1)
	for k, v := range templateLabels {
		l[k] = v
	}
	var ann map[string]string
	if a := owner.GetAnnotations(); len(a) > 0 {
		ann = make(map[string]string, len(a))
		for k, v := range a {
			ann[k] = v
		}
	}
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: owner.GetNamespace(), Labels: l, Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

// sortRevisions orders revisions oldest first: by revision number, then
// creation, then name, as upstream.
func sortRevisions(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// nextRevision is one more than the highest revision number.
func nextRevision(revs []*appsv1.ControllerRevision) int64 {
	var top int64
	for _, r := range revs {
		top = max(top, r.Revision)
	}
	return top + 1
}

// history reads and writes one kind of owner's ControllerRevisions.
type history struct {
	cs     kubernetes.Interface
	lister appslisters.ControllerRevisionLister
	kind   schema.GroupVersionKind
}

// owned lists the revisions owner controls, oldest first, after adopting
// the orphans its selector matches (unless owner is being deleted).
func (h history) owned(ctx context.Context, owner metav1.Object, sel labels.Selector) ([]*appsv1.ControllerRevision, error) {
	all, err := h.lister.ControllerRevisions(owner.GetNamespace()).List(sel)
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ControllerRevision
	for _, cr := range all {
		ref := metav1.GetControllerOfNoCopy(cr)
		switch {
		case ref != nil && ref.UID == owner.GetUID():
			out = append(out, cr)
		case ref == nil && owner.GetDeletionTimestamp() == nil && cr.DeletionTimestamp == nil:
			refJSON, _ := json.Marshal(metav1.NewControllerRef(owner, h.kind))
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[%s],"uid":%q}}`, refJSON, cr.UID)
			adopted, err := h.cs.AppsV1().ControllerRevisions(cr.Namespace).Patch(ctx, cr.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("adopt revision %s: %w", cr.Name, err)
			}
			out = append(out, adopted)
		}
	}
	sortRevisions(out)
	return out, nil
}

// create creates cr under the name namer gives it for the collision
// count. A name taken by a revision of owner with the same data is that
// revision, returned; one taken otherwise is a collision: the count goes
// up (the caller keeps it in the owner's status.collisionCount) and the
// next name is tried.
func (h history) create(ctx context.Context, owner metav1.Object, cr *appsv1.ControllerRevision, collisions *int32,
	namer func(cr *appsv1.ControllerRevision, collisions *int32)) (*appsv1.ControllerRevision, error) {
	client := h.cs.AppsV1().ControllerRevisions(owner.GetNamespace())
	for range 100 {
		clone := cr.DeepCopy()
		namer(clone, collisions)
		created, err := client.Create(ctx, clone, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return nil, fmt.Errorf("create revision %s: %w", clone.Name, err)
			}
			return created, nil
		}
		existing, err := client.Get(ctx, clone.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // deleted meanwhile: try the name again
		}
		if err != nil {
			return nil, fmt.Errorf("get revision %s: %w", clone.Name, err)
		}
		if bytes.Equal(existing.Data.Raw, clone.Data.Raw) && metav1.IsControlledBy(existing, owner) {
			return existing, nil
		}
		*collisions++
	}
	return nil, fmt.Errorf("create a revision of %s: too many name collisions", owner.GetName())
}

// renumber gives cr the revision number n (a rollback to its template).
func (h history) renumber(ctx context.Context, cr *appsv1.ControllerRevision, n int64) (*appsv1.ControllerRevision, error) {
	client := h.cs.AppsV1().ControllerRevisions(cr.Namespace)
	next := cr.DeepCopy()
	for range 5 {
		if next.Revision == n {
			return next, nil
		}
		next.Revision = n
		updated, err := client.Update(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("renumber revision %s: %w", cr.Name, err)
		}
		if next, err = client.Get(ctx, cr.Name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("renumber revision %s: %w", cr.Name, err)
		}
	}
	return nil, fmt.Errorf("renumber revision %s: conflicts", cr.Name)
}

// trim deletes the oldest of revs (sorted oldest first) that are not
// live, leaving keep of those (all of them when keep is negative).
func (h history) trim(ctx context.Context, revs []*appsv1.ControllerRevision, live func(*appsv1.ControllerRevision) bool, keep int) error {
	var dead []*appsv1.ControllerRevision
	for _, cr := range revs {
		if !live(cr) {
			dead = append(dead, cr)
		}
	}
	if keep < 0 || len(dead) <= keep {
		return nil
	}
	for _, cr := range dead[:len(dead)-keep] {
		err := h.cs.AppsV1().ControllerRevisions(cr.Namespace).Delete(ctx, cr.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cr.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete revision %s: %w", cr.Name, err)
		}
	}
	return nil
}

// revisionHistoryLimit is spec.revisionHistoryLimit, 10 when unset.
func revisionHistoryLimit(limit *int32) int {
	if limit == nil {
		return 10
	}
	return int(*limit)
}
