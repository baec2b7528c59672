// Package quota says what an object costs against a ResourceQuota, as
// upstream's quota evaluators do. The API server's admission uses it to
// refuse a create that would exceed a quota; the resource-quota controller
// uses it to sum what a namespace holds into each quota's status.used.
// Both count the same way because both call Usage and Matches here.
//
// Costs, by kind:
//   - Pod (not yet terminal): pods, count/pods, requests.* and limits.*
//     for cpu, memory, ephemeral-storage and extended resources, and the
//     bare cpu/memory names as requests.
//   - Service: services, count/services, services.nodeports,
//     services.loadbalancers.
//   - PersistentVolumeClaim: persistentvolumeclaims, requests.storage and
//     the per-StorageClass forms.
//   - Everything else: count/<resource>[.<group>], and the legacy names
//     configmaps, secrets, replicationcontrollers and resourcequotas.
package quota

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
)

// legacyCounts are the object-count names older than count/<resource>.
var legacyCounts = map[schema.GroupResource]corev1.ResourceName{
	{Resource: "pods"}:                   corev1.ResourcePods,
	{Resource: "services"}:               corev1.ResourceServices,
	{Resource: "configmaps"}:             corev1.ResourceConfigMaps,
	{Resource: "secrets"}:                corev1.ResourceSecrets,
	{Resource: "replicationcontrollers"}: corev1.ResourceReplicationControllers,
	{Resource: "resourcequotas"}:         corev1.ResourceQuotas,
	{Resource: "persistentvolumeclaims"}: corev1.ResourcePersistentVolumeClaims,
}

// CountName is the count/<resource>[.<group>] name for objects of gr.
func CountName(gr schema.GroupResource) corev1.ResourceName {
	if gr.Group == "" {
		return corev1.ResourceName("count/" + gr.Resource)
	}
	return corev1.ResourceName("count/" + gr.Resource + "." + gr.Group)
}

var one = resource.MustParse("1")

// Usage is what obj, an object of resource gr, costs.
func Usage(gr schema.GroupResource, obj runtime.Object) corev1.ResourceList {
	out := corev1.ResourceList{}
	switch o := obj.(type) {
	case *corev1.Pod:
		if Terminal(o) {
			return out
		}
		podUsage(o, out)
	case *corev1.Service:
		serviceUsage(o, out)
	case *corev1.PersistentVolumeClaim:
		pvcUsage(o, out)
	}
	out[CountName(gr)] = one
	if name, ok := legacyCounts[gr]; ok {
		out[name] = one
	}
	return out
}

// Terminal reports whether a pod no longer counts: it has finished.
func Terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func podUsage(p *corev1.Pod, out corev1.ResourceList) {
	req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
	lim := resourcehelper.PodLimits(p, resourcehelper.PodResourcesOptions{})
	for name, q := range req {
		if q.IsZero() && name != corev1.ResourceCPU && name != corev1.ResourceMemory {
			continue
		}
		// cpu, memory and ephemeral-storage count under their bare names
		// too; hugepages and extended resources only as requests.
		out["requests."+name] = q
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			out[name] = q
		}
	}
	for name, q := range lim {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			out["limits."+name] = q
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := out["requests."+name]; !ok {
			out["requests."+name] = resource.Quantity{Format: resource.DecimalSI}
			out[name] = resource.Quantity{Format: resource.DecimalSI}
		}
		if _, ok := out["limits."+name]; !ok {
			out["limits."+name] = resource.Quantity{Format: resource.DecimalSI}
		}
	}
}

func serviceUsage(s *corev1.Service, out corev1.ResourceList) {
	var nodePorts int64
	if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 || s.Spec.Type == corev1.ServiceTypeNodePort ||
				s.Spec.AllocateLoadBalancerNodePorts == nil || *s.Spec.AllocateLoadBalancerNodePorts {
				nodePorts++
			}
		}
	}
	out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(nodePorts, resource.DecimalSI)
	lbs := int64(0)
	if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
		lbs = 1
	}
	out[corev1.ResourceServicesLoadBalancers] = *resource.NewQuantity(lbs, resource.DecimalSI)
}

func pvcUsage(c *corev1.PersistentVolumeClaim, out corev1.ResourceList) {
	storage := c.Spec.Resources.Requests[corev1.ResourceStorage]
	// A claim being resized counts what it asked for or what it has,
	// whichever is larger.
	if have, ok := c.Status.Capacity[corev1.ResourceStorage]; ok && have.Cmp(storage) > 0 {
		storage = have
	}
	out[corev1.ResourceRequestsStorage] = storage
	if sc := c.Spec.StorageClassName; sc != nil && *sc != "" {
		prefix := *sc + ".storageclass.storage.k8s.io/"
		out[corev1.ResourceName(prefix+"requests.storage")] = storage
		out[corev1.ResourceName(prefix+"persistentvolumeclaims")] = one
	}
}

// Matches reports whether quota q charges obj: its scopes and scope
// selector select it. Scopes speak of pods only; a scoped quota charges
// no other kind.
func Matches(q *corev1.ResourceQuota, obj runtime.Object) bool {
	scoped := len(q.Spec.Scopes) > 0 || q.Spec.ScopeSelector != nil
	pod, isPod := obj.(*corev1.Pod)
	if !scoped {
		return true
	}
	if !isPod {
		return false
	}
	for _, s := range q.Spec.Scopes {
		if !podInScope(pod, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists}) {
			return false
		}
	}
	if q.Spec.ScopeSelector != nil {
		for _, req := range q.Spec.ScopeSelector.MatchExpressions {
			if !podInScope(pod, req) {
				return false
			}
		}
	}
	return true
}

func podInScope(p *corev1.Pod, req corev1.ScopedResourceSelectorRequirement) bool {
	switch req.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return p.Spec.ActiveDeadlineSeconds != nil && *p.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		return p.Spec.ActiveDeadlineSeconds == nil || *p.Spec.ActiveDeadlineSeconds < 0
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(p)
	case corev1.ResourceQuotaScopePriorityClass:
		values := sets.New(req.Values...)
		switch req.Operator {
		case corev1.ScopeSelectorOpExists:
			return p.Spec.PriorityClassName != ""
		case corev1.ScopeSelectorOpDoesNotExist:
			return p.Spec.PriorityClassName == ""
		case corev1.ScopeSelectorOpIn:
			return values.Has(p.Spec.PriorityClassName)
		case corev1.ScopeSelectorOpNotIn:
			return !values.Has(p.Spec.PriorityClassName)
		}
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(p)
	}
	return false
}

func bestEffort(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
				return false
			}
		}
	}
	return true
}

func crossNamespaceAffinity(p *corev1.Pod) bool {
	a := p.Spec.Affinity
	if a == nil {
		return false
	}
	var terms []corev1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if len(t.Namespaces) > 0 || t.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// Relevant keeps of usage only the names quota q limits.
func Relevant(q *corev1.ResourceQuota, usage corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name := range q.Spec.Hard {
		if v, ok := usage[name]; ok {
			out[name] = v
		}
	}
	return out
}

// Add returns a + b.
func Add(a, b corev1.ResourceList) corev1.ResourceList {
	out := a.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	for name, q := range b {
		sum := out[name]
		sum.Add(q)
		out[name] = sum
	}
	return out
}

// Missing names the compute resources quota q limits that the pod's
// containers leave unset, as upstream's "must specify" refusal lists
// them: "limits.cpu for: app,sidecar".
func Missing(q *corev1.ResourceQuota, p *corev1.Pod) []string {
	var out []string
	for _, name := range []corev1.ResourceName{
		corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
		corev1.ResourceCPU, corev1.ResourceMemory,
	} {
		if _, ok := q.Spec.Hard[name]; !ok {
			continue
		}
		kind, base := "requests", name
		if s, ok := strings.CutPrefix(string(name), "limits."); ok {
			kind, base = "limits", corev1.ResourceName(s)
		} else if s, ok := strings.CutPrefix(string(name), "requests."); ok {
			base = corev1.ResourceName(s)
		}
		var missing []string
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				list := c.Resources.Requests
				if kind == "limits" {
					list = c.Resources.Limits
				}
				if _, ok := list[base]; !ok {
					missing = append(missing, c.Name)
				}
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			out = append(out, fmt.Sprintf("%s for: %s", name, strings.Join(missing, ",")))
		}
	}
	return out
}

// Format writes a ResourceList as upstream's quota messages do:
// "limits.cpu=2,pods=3", sorted by name.
func Format(l corev1.ResourceList) string {
	names := make([]string, 0, len(l))
	for name := range l {
		names = append(names, string(name))
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		q := l[corev1.ResourceName(name)]
		parts[i] = name + "=" + q.String()
	}
	return strings.Join(parts, ",")
}
