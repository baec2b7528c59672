package apiserver

// Admission: the two built-in plugins the course's chapter on resource
// management shows, run on creates as upstream runs them.
//
//   - LimitRanger: a namespace's LimitRanges give containers the default
//     requests and limits they lack (noted in the pod's
//     kubernetes.io/limit-ranger annotation), before validation; after
//     validation they refuse pods, containers and claims outside their
//     min, max and maxLimitRequestRatio.
//   - ResourceQuota: after validation, a create that would take a quota
//     in the namespace over its hard limits is refused with upstream's
//     "exceeded quota" message; otherwise its cost is charged to each
//     matching quota's status.used at once (a compare-and-swap on the
//     quota), so that concurrent creates cannot both slip under a limit.
//     The resource-quota controller recounts status.used from what the
//     namespace holds, which returns what deletions free.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	resourcehelper "k8s.io/component-helpers/resource"

	"labctl/server/quota"
	"labctl/server/storage"
)

const limitRangerAnnotation = "kubernetes.io/limit-ranger"

var (
	limitRangesGVR    = schema.GroupVersionResource{Version: "v1", Resource: "limitranges"}
	resourceQuotasGVR = schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}
)

// limitRanges lists the LimitRanges that apply to obj, read once per
// create for both of LimitRanger's halves: those of its namespace when it
// is a pod or a claim, none otherwise.
func (s *Server) limitRanges(ctx context.Context, obj runtime.Object) ([]corev1.LimitRange, error) {
	var ns string
	switch o := obj.(type) {
	case *corev1.Pod:
		ns = o.Namespace
	case *corev1.PersistentVolumeClaim:
		ns = o.Namespace
	default:
		return nil, nil
	}
	r, ok := s.reg.get(limitRangesGVR)
	if !ok {
		return nil, nil
	}
	list, err := r.store.List(ctx, storage.ListOptions{Namespace: ns})
	if err != nil {
		return nil, err
	}
	return list.(*corev1.LimitRangeList).Items, nil
}

// defaultLimits is LimitRanger's mutating half: containers of a new pod
// get the Container defaults they lack.
func defaultLimits(obj runtime.Object, ranges []corev1.LimitRange) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || len(ranges) == 0 {
		return
	}
	var notes []string
	apply := func(c *corev1.Container, what string) {
		var setReq, setLim []string
		for _, lr := range ranges {
			for _, item := range lr.Spec.Limits {
				if item.Type != corev1.LimitTypeContainer {
					continue
				}
				for name, q := range item.Default {
					if _, ok := c.Resources.Limits[name]; !ok {
						if c.Resources.Limits == nil {
							c.Resources.Limits = corev1.ResourceList{}
						}
						c.Resources.Limits[name] = q.DeepCopy()
						setLim = append(setLim, string(name))
					}
				}
				for name, q := range item.DefaultRequest {
					if _, ok := c.Resources.Requests[name]; !ok {
						if c.Resources.Requests == nil {
							c.Resources.Requests = corev1.ResourceList{}
						}
						c.Resources.Requests[name] = q.DeepCopy()
						setReq = append(setReq, string(name))
					}
				}
			}
		}
		if len(setReq) > 0 {
			sort.Strings(setReq)
			notes = append(notes, fmt.Sprintf("%s request for %s %s", strings.Join(setReq, ", "), what, c.Name))
		}
		if len(setLim) > 0 {
			sort.Strings(setLim)
			notes = append(notes, fmt.Sprintf("%s limit for %s %s", strings.Join(setLim, ", "), what, c.Name))
		}
	}
	for i := range pod.Spec.InitContainers {
		apply(&pod.Spec.InitContainers[i], "init container")
	}
	for i := range pod.Spec.Containers {
		apply(&pod.Spec.Containers[i], "container")
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[limitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

// checkLimits is LimitRanger's validating half.
func checkLimits(gr schema.GroupResource, name string, obj runtime.Object, ranges []corev1.LimitRange) error {
	var check func(item corev1.LimitRangeItem) []error
	switch o := obj.(type) {
	case *corev1.Pod:
		check = func(item corev1.LimitRangeItem) []error {
			var errs []error
			switch item.Type {
			case corev1.LimitTypeContainer:
				for _, cs := range [][]corev1.Container{o.Spec.InitContainers, o.Spec.Containers} {
					for _, c := range cs {
						errs = append(errs, bounds(item, "Container", c.Resources.Requests, c.Resources.Limits)...)
					}
				}
			case corev1.LimitTypePod:
				req := resourcehelper.PodRequests(o, resourcehelper.PodResourcesOptions{SkipPodLevelResources: true})
				lim := resourcehelper.PodLimits(o, resourcehelper.PodResourcesOptions{SkipPodLevelResources: true})
				errs = append(errs, bounds(item, "Pod", req, lim)...)
			}
			return errs
		}
	case *corev1.PersistentVolumeClaim:
		check = func(item corev1.LimitRangeItem) []error {
			if item.Type != corev1.LimitTypePersistentVolumeClaim {
				return nil
			}
			req := o.Spec.Resources.Requests
			return bounds(item, "PersistentVolumeClaim", req, req)
		}
	default:
		return nil
	}
	var errs []error
	for _, lr := range ranges {
		for _, item := range lr.Spec.Limits {
			errs = append(errs, check(item)...)
		}
	}
	if len(errs) > 0 {
		return apierrors.NewForbidden(gr, name, utilerrors.NewAggregate(errs))
	}
	return nil
}

// bounds checks one request/limit pair against a LimitRange item, in
// upstream's words.
func bounds(item corev1.LimitRangeItem, of string, req, lim corev1.ResourceList) []error {
	var errs []error
	for _, name := range sortedNames(item.Min) {
		min := item.Min[name]
		r, hasReq := req[name]
		l, hasLim := lim[name]
		// One complaint per constraint, the first that holds, as upstream.
		switch {
		case !hasReq:
			errs = append(errs, fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, of, min.String()))
		case r.Cmp(min) < 0:
			errs = append(errs, fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, of, min.String(), r.String()))
		case hasLim && l.Cmp(min) < 0:
			errs = append(errs, fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, of, min.String(), l.String()))
		}
	}
	for _, name := range sortedNames(item.Max) {
		max := item.Max[name]
		r, hasReq := req[name]
		l, hasLim := lim[name]
		switch {
		case !hasLim:
			errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, of, max.String()))
		case l.Cmp(max) > 0:
			errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, of, max.String(), l.String()))
		case hasReq && r.Cmp(max) > 0:
			errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, of, max.String(), r.String()))
		}
	}
	for _, name := range sortedNames(item.MaxLimitRequestRatio) {
		ratio := item.MaxLimitRequestRatio[name]
		r, hasReq := req[name]
		l, hasLim := lim[name]
		if !hasReq || !hasLim {
			errs = append(errs, fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, of, ratio.String()))
			continue
		}
		if r.IsZero() {
			errs = append(errs, fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, of, ratio.String()))
			continue
		}
		got := float64(l.MilliValue()) / float64(r.MilliValue())
		if got > float64(ratio.MilliValue())/1000 {
			errs = append(errs, fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, of, ratio.String(), got))
		}
	}
	return errs
}

func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

// errQuota marks a refusal computed inside the quota's update function.
var errQuota = errors.New("quota refused")

// chargeQuota is the ResourceQuota plugin: it refuses a create that would
// exceed a quota of the namespace and otherwise charges its cost (unless
// dry is set, when it only checks).
func (s *Server) chargeQuota(ctx context.Context, gr schema.GroupResource, name string, obj runtime.Object, dry bool) error {
	m, _ := meta.Accessor(obj)
	r, ok := s.reg.get(resourceQuotasGVR)
	if !ok || m.GetNamespace() == "" {
		return nil
	}
	list, err := r.store.List(ctx, storage.ListOptions{Namespace: m.GetNamespace()})
	if err != nil {
		return err
	}
	quotas := list.(*corev1.ResourceQuotaList).Items
	if len(quotas) == 0 {
		return nil
	}
	usage := quota.Usage(gr, obj)
	forbid := func(msg string) error { return apierrors.NewForbidden(gr, name, errors.New(msg)) }
	// Check all first, so a refusal charges nothing.
	var charge []string
	for i := range quotas {
		q := &quotas[i]
		if !quota.Matches(q, obj) {
			continue
		}
		want := quota.Relevant(q, usage)
		if len(want) == 0 {
			continue
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			if missing := quota.Missing(q, pod); len(missing) > 0 {
				return forbid(fmt.Sprintf("failed quota: %s: must specify %s", q.Name, strings.Join(missing, "; ")))
			}
		}
		if err := exceeds(q, want); err != nil {
			return forbid(err.Error())
		}
		charge = append(charge, q.Name)
	}
	if dry {
		return nil
	}
	for _, qname := range charge {
		_, err := r.store.Update(ctx, m.GetNamespace(), qname, func(cur runtime.Object) (runtime.Object, error) {
			q := cur.(*corev1.ResourceQuota)
			want := quota.Relevant(q, usage)
			if err := exceeds(q, want); err != nil {
				return nil, fmt.Errorf("%w: %s", errQuota, err.Error())
			}
			q.Status.Used = quota.Add(q.Status.Used, want)
			return q, nil
		})
		switch {
		case errors.Is(err, errQuota):
			return forbid(strings.TrimPrefix(err.Error(), errQuota.Error()+": "))
		case apierrors.IsNotFound(err):
			// Deleted meanwhile: nothing to charge.
		case err != nil:
			return err
		}
	}
	return nil
}

// exceeds says why adding want to quota q's usage goes over its limits,
// or returns nil when it fits.
func exceeds(q *corev1.ResourceQuota, want corev1.ResourceList) error {
	var unknown []string
	requested, used, limited := corev1.ResourceList{}, corev1.ResourceList{}, corev1.ResourceList{}
	for name, w := range want {
		hard, ok := q.Status.Hard[name]
		if !ok {
			unknown = append(unknown, string(name))
			continue
		}
		u := q.Status.Used[name]
		sum := u.DeepCopy()
		sum.Add(w)
		if sum.Cmp(hard) > 0 {
			requested[name], used[name], limited[name] = w, u, hard
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("status unknown for quota: %s, resources: %s", q.Name, strings.Join(unknown, ","))
	}
	if len(requested) > 0 {
		return fmt.Errorf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
			q.Name, quota.Format(requested), quota.Format(used), quota.Format(limited))
	}
	return nil
}
