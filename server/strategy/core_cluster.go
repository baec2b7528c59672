package strategy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Namespaces, Nodes and Events.

func init() {
	register(v1.SchemeGroupVersion.WithKind("Namespace"), &kind[*v1.Namespace]{
		clusterScoped: true,
		defaults: func(ns *v1.Namespace) {
			setNamespaceNameLabel(ns)
			if ns.Status.Phase == "" {
				ns.Status.Phase = v1.NamespaceActive
			}
		},
		prepareCreate: func(ns *v1.Namespace) {
			// A new namespace is Active and carries the kubernetes finalizer
			// that the namespace controller removes once it emptied it.
			ns.Status = v1.NamespaceStatus{Phase: v1.NamespaceActive}
			has := false
			for _, f := range ns.Spec.Finalizers {
				has = has || f == v1.FinalizerKubernetes
			}
			if !has {
				ns.Spec.Finalizers = append(ns.Spec.Finalizers, v1.FinalizerKubernetes)
			}
			setNamespaceNameLabel(ns)
		},
		prepareUpdate: func(ns, old *v1.Namespace) {
			ns.Spec.Finalizers = old.Spec.Finalizers
			ns.Status = old.Status
			setNamespaceNameLabel(ns)
		},
		prepareStatus: func(ns, old *v1.Namespace) {
			ns.Spec = old.Spec
		},
		validate: func(ns *v1.Namespace) field.ErrorList {
			allErrs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel)
			for i := range ns.Spec.Finalizers {
				allErrs = append(allErrs, validateFinalizerName(string(ns.Spec.Finalizers[i]), specPath.Child("finalizers").Index(i))...)
			}
			return allErrs
		},
		validateUpdate: func(ns, old *v1.Namespace) field.ErrorList {
			return validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
		},
		validateStatus: func(ns, old *v1.Namespace) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
			if ns.DeletionTimestamp.IsZero() {
				if ns.Status.Phase != v1.NamespaceActive {
					allErrs = append(allErrs, field.Invalid(statusPath.Child("Phase"), ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
				}
			} else if ns.Status.Phase != v1.NamespaceTerminating {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("Phase"), ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
			}
			return allErrs
		},
		fields: func(ns *v1.Namespace, set fields.Set) {
			set["status.phase"] = string(ns.Status.Phase)
			set["name"] = ns.Name // legacy field label
		},
	})

	register(v1.SchemeGroupVersion.WithKind("Node"), &kind[*v1.Node]{
		clusterScoped: true,
		defaults: func(n *v1.Node) {
			if n.Status.Allocatable == nil && n.Status.Capacity != nil {
				n.Status.Allocatable = n.Status.Capacity.DeepCopy()
			}
			roundResourceList(n.Status.Capacity)
			roundResourceList(n.Status.Allocatable)
		},
		// A node (kubelet) may set its status on create.
		prepareUpdate: func(n, old *v1.Node) {
			n.Status = old.Status
		},
		prepareStatus: func(n, old *v1.Node) {
			n.Spec = old.Spec
		},
		validate:       validateNode,
		validateUpdate: validateNodeUpdate,
		validateStatus: validateNodeUpdate,
		fields: func(n *v1.Node, set fields.Set) {
			set["spec.unschedulable"] = strconv.FormatBool(n.Spec.Unschedulable)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("Event"), &kind[*v1.Event]{
		validate: func(e *v1.Event) field.ErrorList {
			return validateLegacyEvent(e, "reportingComponent")
		},
		validateUpdate: func(e, old *v1.Event) field.ErrorList {
			return validateLegacyEvent(e, "reportingComponent")
		},
		fields: coreEventFields,
	})
}

func setNamespaceNameLabel(ns *v1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[v1.LabelMetadataName] = ns.Name
}

func validateNode(n *v1.Node) field.ErrorList {
	allErrs := validateObjectMeta(&n.ObjectMeta, false, nameIsDNSSubdomain)
	if len(n.Spec.Taints) > 0 {
		allErrs = append(allErrs, validateNodeTaints(n.Spec.Taints, metadataPath.Child("taints"))...)
	}
	allErrs = append(allErrs, validateNodeResources(n)...)
	if len(n.Spec.PodCIDRs) > 0 {
		p := specPath.Child("podCIDRs")
		for i, c := range n.Spec.PodCIDRs {
			allErrs = append(allErrs, validation.IsValidCIDR(p.Index(i), c)...)
		}
		if len(n.Spec.PodCIDRs) > 1 {
			if len(n.Spec.PodCIDRs) > 2 || cidrIsIPv6(n.Spec.PodCIDRs[0]) == cidrIsIPv6(n.Spec.PodCIDRs[1]) {
				allErrs = append(allErrs, field.Invalid(p, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
			seen := sets.New[string]()
			for i, c := range n.Spec.PodCIDRs {
				if seen.Has(c) {
					allErrs = append(allErrs, field.Duplicate(p.Index(i), c))
				}
				seen.Insert(c)
			}
		}
	}
	return allErrs
}

func cidrIsIPv6(c string) bool {
	ip, _, _ := strings.Cut(c, "/")
	return isIPv6String(ip)
}

func validateNodeResources(n *v1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(n.Status.Capacity) {
		allErrs = append(allErrs, validateResourceQuantityValue(k, n.Status.Capacity[k], field.NewPath("status", "capacity", string(k)))...)
	}
	for _, k := range sortedResourceNames(n.Status.Allocatable) {
		allErrs = append(allErrs, validateResourceQuantityValue(k, n.Status.Allocatable[k], field.NewPath("status", "allocatable", string(k)))...)
	}
	return allErrs
}

func validateNodeTaints(taints []v1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	unique := map[v1.TaintEffect]sets.Set[string]{}
	for i, t := range taints {
		p := fldPath.Index(i)
		allErrs = append(allErrs, validateQualifiedName(t.Key, p.Child("key"))...)
		if errs := validation.IsValidLabelValue(t.Value); len(errs) != 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("value"), t.Value, strings.Join(errs, ";")))
		}
		allErrs = append(allErrs, validateTaintEffect(t.Effect, false, p.Child("effect"))...)
		if unique[t.Effect].Has(t.Key) {
			e := field.Duplicate(p, t)
			e.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, e)
			continue
		}
		if unique[t.Effect] == nil {
			unique[t.Effect] = sets.New[string]()
		}
		unique[t.Effect].Insert(t.Key)
	}
	return allErrs
}

func validateNodeUpdate(n, old *v1.Node) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&n.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateNodeResources(n)...)
	seen := map[v1.NodeAddress]bool{}
	for i, a := range n.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 {
		changed := len(old.Spec.PodCIDRs) != len(n.Spec.PodCIDRs)
		for i := 0; !changed && i < len(old.Spec.PodCIDRs); i++ {
			changed = old.Spec.PodCIDRs[i] != n.Spec.PodCIDRs[i]
		}
		if changed {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
		}
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != n.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	if len(n.Spec.Taints) > 0 {
		allErrs = append(allErrs, validateNodeTaints(n.Spec.Taints, metadataPath.Child("taints"))...)
	}
	if n.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("externalID"), "may not be updated"))
	}
	return allErrs
}

// Event length limits.
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
	eventReasonLimit            = 128
	eventNoteLimit              = 1024
)

// validateLegacyEvent is the validation core/v1 Events get (and, as the
// first part, events.k8s.io ones): namespaces agree and, for events with an
// eventTime, the reporting fields are set. controllerField names the
// reporting controller field in messages.
func validateLegacyEvent(e *v1.Event, controllerField string) field.ErrorList {
	var allErrs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
			allErrs = append(allErrs, field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if e.ReportingController == "" {
			allErrs = append(allErrs, field.Required(field.NewPath(controllerField), ""))
		}
		allErrs = append(allErrs, validateQualifiedName(e.ReportingController, field.NewPath(controllerField))...)
		if e.ReportingInstance == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("reportingInstance"), ""))
		}
		if len(e.ReportingInstance) > eventReportingInstanceLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", eventReportingInstanceLimit)))
		}
		if e.Action == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("action"), ""))
		}
		if len(e.Action) > eventActionLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", eventActionLimit)))
		}
		if e.Reason == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("reason"), ""))
		}
		if len(e.Reason) > eventReasonLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("reason"), "", fmt.Sprintf("can have at most %v characters", eventReasonLimit)))
		}
		if len(e.Message) > eventNoteLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", eventNoteLimit)))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(e.Namespace) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("namespace"), e.Namespace, msg))
	}
	return allErrs
}

// coreEventFields are the field selectors of core/v1 Events.
func coreEventFields(e *v1.Event, set fields.Set) {
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	set["involvedObject.kind"] = e.InvolvedObject.Kind
	set["involvedObject.namespace"] = e.InvolvedObject.Namespace
	set["involvedObject.name"] = e.InvolvedObject.Name
	set["involvedObject.uid"] = string(e.InvolvedObject.UID)
	set["involvedObject.apiVersion"] = e.InvolvedObject.APIVersion
	set["involvedObject.resourceVersion"] = e.InvolvedObject.ResourceVersion
	set["involvedObject.fieldPath"] = e.InvolvedObject.FieldPath
	set["reason"] = e.Reason
	set["reportingComponent"] = e.ReportingController
	set["source"] = source
	set["type"] = e.Type
}

// now is the clock of the strategies that stamp times; tests replace it.
var now = func() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
