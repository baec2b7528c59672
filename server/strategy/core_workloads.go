package strategy

import (
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// ReplicationControllers, PodTemplates, ResourceQuotas, LimitRanges and
// Endpoints.

func init() {
	register(v1.SchemeGroupVersion.WithKind("ReplicationController"), &kind[*v1.ReplicationController]{
		defaults: defaultReplicationController,
		prepareCreate: func(rc *v1.ReplicationController) {
			rc.Status = v1.ReplicationControllerStatus{}
			rc.Generation = 1
		},
		prepareUpdate: func(rc, old *v1.ReplicationController) {
			rc.Status = old.Status
			bumpGeneration(rc, !apiequality.Semantic.DeepEqual(rc.Spec, old.Spec))
		},
		prepareStatus: func(rc, old *v1.ReplicationController) {
			rc.Spec = old.Spec
		},
		validate: func(rc *v1.ReplicationController) field.ErrorList {
			allErrs := validateObjectMeta(&rc.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateReplicationControllerSpec(&rc.Spec, specPath)...)
		},
		validateUpdate: func(rc, old *v1.ReplicationController) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateReplicationControllerSpec(&rc.Spec, specPath)...)
		},
		validateStatus: func(rc, old *v1.ReplicationController) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rc.ObjectMeta, &old.ObjectMeta)
			s := rc.Status
			return append(allErrs, validateReplicaCounts(statusPath, s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration)...)
		},
		fields: func(rc *v1.ReplicationController, set fields.Set) {
			set["status.replicas"] = strconv.Itoa(int(rc.Status.Replicas))
		},
	})

	register(v1.SchemeGroupVersion.WithKind("PodTemplate"), &kind[*v1.PodTemplate]{
		defaults: func(pt *v1.PodTemplate) { defaultPodTemplateSpec(&pt.Template) },
		prepareCreate: func(pt *v1.PodTemplate) {
			pt.Generation = 1
		},
		prepareUpdate: func(pt, old *v1.PodTemplate) {
			bumpGeneration(pt, !apiequality.Semantic.DeepEqual(pt.Template, old.Template))
		},
		validate: func(pt *v1.PodTemplate) field.ErrorList {
			allErrs := validateObjectMeta(&pt.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validatePodTemplateSpec(&pt.Template, field.NewPath("template"))...)
		},
		validateUpdate: func(pt, old *v1.PodTemplate) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pt.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validatePodTemplateSpec(&pt.Template, field.NewPath("template"))...)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("ResourceQuota"), &kind[*v1.ResourceQuota]{
		defaults: func(rq *v1.ResourceQuota) {
			roundResourceList(rq.Spec.Hard)
			roundResourceList(rq.Status.Hard)
			roundResourceList(rq.Status.Used)
		},
		prepareCreate: func(rq *v1.ResourceQuota) {
			rq.Status = v1.ResourceQuotaStatus{}
		},
		prepareUpdate: func(rq, old *v1.ResourceQuota) {
			rq.Status = old.Status
		},
		prepareStatus: func(rq, old *v1.ResourceQuota) {
			rq.Spec = old.Spec
		},
		validate: func(rq *v1.ResourceQuota) field.ErrorList {
			allErrs := validateObjectMeta(&rq.ObjectMeta, true, nameIsDNSSubdomain)
			allErrs = append(allErrs, validateResourceQuotaSpec(&rq.Spec)...)
			allErrs = append(allErrs, validateQuotaList(rq.Status.Hard, statusPath.Child("hard"))...)
			return append(allErrs, validateQuotaList(rq.Status.Used, statusPath.Child("used"))...)
		},
		validateUpdate: func(rq, old *v1.ResourceQuota) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rq.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateResourceQuotaSpec(&rq.Spec)...)
			oldScopes, newScopes := sets.New[v1.ResourceQuotaScope](old.Spec.Scopes...), sets.New[v1.ResourceQuotaScope](rq.Spec.Scopes...)
			if !oldScopes.Equal(newScopes) {
				allErrs = append(allErrs, field.Invalid(specPath.Child("scopes"), rq.Spec.Scopes, fieldImmutableErrorMsg))
			}
			return allErrs
		},
		validateStatus: func(rq, old *v1.ResourceQuota) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rq.ObjectMeta, &old.ObjectMeta)
			if rq.ResourceVersion == "" {
				allErrs = append(allErrs, field.Required(field.NewPath("resourceVersion"), ""))
			}
			allErrs = append(allErrs, validateQuotaList(rq.Status.Hard, statusPath.Child("hard"))...)
			return append(allErrs, validateQuotaList(rq.Status.Used, statusPath.Child("used"))...)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("LimitRange"), &kind[*v1.LimitRange]{
		defaults: defaultLimitRange,
		validate: validateLimitRange,
		validateUpdate: func(lr, old *v1.LimitRange) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&lr.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateLimitRange(lr)...)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("Endpoints"), &kind[*v1.Endpoints]{
		defaults: func(ep *v1.Endpoints) {
			for i := range ep.Subsets {
				for j := range ep.Subsets[i].Ports {
					if ep.Subsets[i].Ports[j].Protocol == "" {
						ep.Subsets[i].Ports[j].Protocol = v1.ProtocolTCP
					}
				}
			}
		},
		validate: validateEndpoints,
		validateUpdate: func(ep, old *v1.Endpoints) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ep.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateEndpoints(ep)...)
		},
	})
}

// defaultReplicationController: selector and labels from the template's
// labels when not given, one replica, and the template's defaults.
func defaultReplicationController(rc *v1.ReplicationController) {
	if rc.Spec.Template != nil && rc.Spec.Template.Labels != nil {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = rc.Spec.Template.Labels
		}
		if len(rc.Labels) == 0 {
			rc.Labels = rc.Spec.Template.Labels
		}
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptr.To[int32](1)
	}
	if rc.Spec.Template != nil {
		defaultPodTemplateSpec(rc.Spec.Template)
	}
}

func validateReplicationControllerSpec(spec *v1.ReplicationControllerSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))
	selector := labels.Set(spec.Selector).AsSelector()
	if selector.Empty() {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	}
	allErrs = append(allErrs, validateNonnegative(int64(ptr.Deref(spec.Replicas, 0)), fldPath.Child("replicas"))...)
	tp := fldPath.Child("template")
	if spec.Template == nil {
		return append(allErrs, field.Required(tp, ""))
	}
	if !selector.Empty() && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(tp.Child("metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(spec.Template, tp)...)
	if spec.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tp.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []v1.RestartPolicy{v1.RestartPolicyAlways}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return allErrs
}

// validateReplicaCounts checks the counters of a ReplicaSet's or
// ReplicationController's status.
func validateReplicaCounts(p *field.Path, replicas, fullyLabeled, ready, available int32, observedGeneration int64) field.ErrorList {
	allErrs := validateNonnegative(int64(replicas), p.Child("replicas"))
	allErrs = append(allErrs, validateNonnegative(int64(fullyLabeled), p.Child("fullyLabeledReplicas"))...)
	allErrs = append(allErrs, validateNonnegative(int64(ready), p.Child("readyReplicas"))...)
	allErrs = append(allErrs, validateNonnegative(int64(available), p.Child("availableReplicas"))...)
	allErrs = append(allErrs, validateNonnegative(observedGeneration, p.Child("observedGeneration"))...)
	const msg = "cannot be greater than status.replicas"
	if fullyLabeled > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("fullyLabeledReplicas"), fullyLabeled, msg))
	}
	if ready > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("readyReplicas"), ready, msg))
	}
	if available > replicas {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, msg))
	}
	if available > ready {
		allErrs = append(allErrs, field.Invalid(p.Child("availableReplicas"), available, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

var (
	standardQuotaScopes  = sets.New(v1.ResourceQuotaScopeTerminating, v1.ResourceQuotaScopeNotTerminating, v1.ResourceQuotaScopeBestEffort, v1.ResourceQuotaScopeNotBestEffort, v1.ResourceQuotaScopePriorityClass, v1.ResourceQuotaScopeCrossNamespacePodAffinity, v1.ResourceQuotaScopeVolumeAttributesClass)
	podObjectCountScopes = sets.New("pods", "count/pods")
	podComputeResources  = sets.New("cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory")
)

// quotaScopeAppliesTo tells whether a scope can limit the resource (the
// pod scopes only limit pods and their compute resources).
func quotaScopeAppliesTo(scope v1.ResourceQuotaScope, name v1.ResourceName) bool {
	switch scope {
	case v1.ResourceQuotaScopeTerminating, v1.ResourceQuotaScopeNotTerminating, v1.ResourceQuotaScopeNotBestEffort,
		v1.ResourceQuotaScopePriorityClass, v1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return podObjectCountScopes.Has(string(name)) || podComputeResources.Has(string(name))
	case v1.ResourceQuotaScopeBestEffort:
		return podObjectCountScopes.Has(string(name))
	case v1.ResourceQuotaScopeVolumeAttributesClass:
		return true
	}
	return true
}

func validateQuotaList(list v1.ResourceList, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedResourceNames(list) {
		p := fldPath.Key(string(k))
		allErrs = append(allErrs, validateResourceQuotaResourceName(k, p)...)
		allErrs = append(allErrs, validateResourceQuantityValue(k, list[k], p)...)
	}
	return allErrs
}

func validateResourceQuotaSpec(spec *v1.ResourceQuotaSpec) field.ErrorList {
	allErrs := validateQuotaList(spec.Hard, specPath.Child("hard"))
	scopesPath := specPath.Child("scopes")
	scopes := sets.New[v1.ResourceQuotaScope]()
	for _, scope := range spec.Scopes {
		if !standardQuotaScopes.Has(scope) {
			allErrs = append(allErrs, field.Invalid(scopesPath, spec.Scopes, "unsupported scope"))
		}
		for _, k := range sortedResourceNames(spec.Hard) {
			if isStandardQuotaResourceName(k) && !quotaScopeAppliesTo(scope, k) {
				allErrs = append(allErrs, field.Invalid(scopesPath, spec.Scopes, "unsupported scope applied to resource"))
			}
		}
		scopes.Insert(scope)
	}
	if sel := spec.ScopeSelector; sel != nil {
		mp := specPath.Child("scopeSelector", "matchExpressions")
		for _, req := range sel.MatchExpressions {
			if !standardQuotaScopes.Has(req.ScopeName) {
				allErrs = append(allErrs, field.Invalid(mp.Child("scopeName"), req.ScopeName, "unsupported scope"))
			}
			switch req.ScopeName {
			case v1.ResourceQuotaScopeBestEffort, v1.ResourceQuotaScopeNotBestEffort, v1.ResourceQuotaScopeTerminating,
				v1.ResourceQuotaScopeNotTerminating, v1.ResourceQuotaScopeCrossNamespacePodAffinity:
				if req.Operator != v1.ScopeSelectorOpExists {
					allErrs = append(allErrs, field.Invalid(mp.Child("operator"), req.Operator,
						"must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
				}
			}
			switch req.Operator {
			case v1.ScopeSelectorOpIn, v1.ScopeSelectorOpNotIn:
				if len(req.Values) == 0 {
					allErrs = append(allErrs, field.Required(mp.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
				}
			case v1.ScopeSelectorOpExists, v1.ScopeSelectorOpDoesNotExist:
				if len(req.Values) != 0 {
					allErrs = append(allErrs, field.Invalid(mp.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
				}
			default:
				allErrs = append(allErrs, field.Invalid(mp.Child("operator"), req.Operator, "not a valid selector operator"))
			}
			scopes.Insert(req.ScopeName)
		}
	}
	if scopes.HasAll(v1.ResourceQuotaScopeBestEffort, v1.ResourceQuotaScopeNotBestEffort) ||
		scopes.HasAll(v1.ResourceQuotaScopeTerminating, v1.ResourceQuotaScopeNotTerminating) {
		allErrs = append(allErrs, field.Invalid(scopesPath, spec.Scopes, "conflicting scopes"))
	}
	return allErrs
}

// defaultLimitRange: for Container limits, the default limit comes from max,
// the default request from the default limit or else from min.
func defaultLimitRange(lr *v1.LimitRange) {
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type == v1.LimitTypeContainer {
			if item.Default == nil {
				item.Default = v1.ResourceList{}
			}
			if item.DefaultRequest == nil {
				item.DefaultRequest = v1.ResourceList{}
			}
			for k, v := range item.Max {
				if _, ok := item.Default[k]; !ok {
					item.Default[k] = v.DeepCopy()
				}
			}
			for k, v := range item.Default {
				if _, ok := item.DefaultRequest[k]; !ok {
					item.DefaultRequest[k] = v.DeepCopy()
				}
			}
			for k, v := range item.Min {
				if _, ok := item.DefaultRequest[k]; !ok {
					item.DefaultRequest[k] = v.DeepCopy()
				}
			}
		}
		for _, l := range []v1.ResourceList{item.Max, item.Min, item.Default, item.DefaultRequest, item.MaxLimitRequestRatio} {
			roundResourceList(l)
		}
	}
}

func validateLimitRange(lr *v1.LimitRange) field.ErrorList {
	allErrs := validateObjectMeta(&lr.ObjectMeta, true, nameIsDNSSubdomain)
	limitsPath := specPath.Child("limits")
	types := map[v1.LimitType]bool{}
	for i := range lr.Spec.Limits {
		p := limitsPath.Index(i)
		item := &lr.Spec.Limits[i]
		allErrs = append(allErrs, validateLimitType(item.Type, p.Child("type"))...)
		if types[item.Type] {
			allErrs = append(allErrs, field.Duplicate(p.Child("type"), item.Type))
		}
		types[item.Type] = true
		nameFn := validateResourceName
		if item.Type == v1.LimitTypePod || item.Type == v1.LimitTypeContainer {
			nameFn = validateContainerResourceName
		}
		keys := sets.New[v1.ResourceName]()
		check := func(list v1.ResourceList, child string) {
			for _, k := range sortedResourceNames(list) {
				allErrs = append(allErrs, nameFn(k, p.Child(child).Key(string(k)))...)
				keys.Insert(k)
			}
		}
		check(item.Max, "max")
		check(item.Min, "min")
		if item.Type == v1.LimitTypePod {
			if len(item.Default) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(item.DefaultRequest) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		} else {
			check(item.Default, "default")
			check(item.DefaultRequest, "defaultRequest")
		}
		if item.Type == v1.LimitTypePersistentVolumeClaim {
			_, minOK := item.Min[v1.ResourceStorage]
			_, maxOK := item.Max[v1.ResourceStorage]
			if !minOK && !maxOK {
				allErrs = append(allErrs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		check(item.MaxLimitRequestRatio, "maxLimitRequestRatio")
		for _, k := range sets.List(keys) {
			minQ, minOK := item.Min[k]
			maxQ, maxOK := item.Max[k]
			defQ, defOK := item.Default[k]
			reqQ, reqOK := item.DefaultRequest[k]
			ratio, ratioOK := item.MaxLimitRequestRatio[k]
			if item.Type == v1.LimitTypePod {
				defOK, reqOK = false, false
			}
			if minOK && maxOK && minQ.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("min").Key(string(k)), minQ, fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
			}
			if reqOK && minOK && minQ.Cmp(reqQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), reqQ, fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), reqQ.String())))
			}
			if reqOK && maxOK && reqQ.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), reqQ, fmt.Sprintf("default request value %s is greater than max value %s", reqQ.String(), maxQ.String())))
			}
			if reqOK && defOK && reqQ.Cmp(defQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), reqQ, fmt.Sprintf("default request value %s is greater than default limit value %s", reqQ.String(), defQ.String())))
			}
			if defOK && minOK && minQ.Cmp(defQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("default").Key(string(k)), minQ, fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), defQ.String())))
			}
			if defOK && maxOK && defQ.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("default").Key(string(k)), maxQ, fmt.Sprintf("default value %s is greater than max value %s", defQ.String(), maxQ.String())))
			}
			if ratioOK && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("maxLimitRequestRatio").Key(string(k)), ratio, fmt.Sprintf("ratio %s is less than 1", ratio.String())))
			}
			if ratioOK && minOK && maxOK {
				limit := float64(maxQ.MilliValue()) / float64(minQ.MilliValue())
				if float64(ratio.MilliValue())/1000 > limit {
					allErrs = append(allErrs, field.Invalid(p.Child("maxLimitRequestRatio").Key(string(k)), ratio, fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), limit)))
				}
			}
			if !isOvercommitAllowed(k) && defOK && reqOK && defQ.Cmp(reqQ) != 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), reqQ, fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", defQ.String(), reqQ.String(), k)))
			}
		}
	}
	return allErrs
}

func validateLimitType(t v1.LimitType, fldPath *field.Path) field.ErrorList {
	allErrs := validateQualifiedName(string(t), fldPath)
	if len(allErrs) != 0 {
		return allErrs
	}
	switch t {
	case v1.LimitTypePod, v1.LimitTypeContainer, v1.LimitTypePersistentVolumeClaim:
		return nil
	}
	for _, c := range string(t) {
		if c == '/' {
			return nil
		}
	}
	return field.ErrorList{field.Invalid(fldPath, t, "must be a standard limit type or fully qualified")}
}

func validateEndpoints(ep *v1.Endpoints) field.ErrorList {
	allErrs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain)
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := subsetsPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				allErrs = append(allErrs, validateDNS1123Label(port.Name, pp.Child("name"))...)
			}
			for _, msg := range validation.IsValidPortNum(int(port.Port)) {
				allErrs = append(allErrs, field.Invalid(pp.Child("port"), port.Port, msg))
			}
			if port.Protocol == "" {
				allErrs = append(allErrs, field.Required(pp.Child("protocol"), ""))
			} else if !supportedPortProtocols.Has(port.Protocol) {
				allErrs = append(allErrs, field.NotSupported(pp.Child("protocol"), port.Protocol, sets.List(supportedPortProtocols)))
			}
			if port.AppProtocol != nil {
				allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return allErrs
}

func validateEndpointAddress(a *v1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validation.IsValidIP(fldPath.Child("ip"), a.IP)...)
	if a.Hostname != "" {
		allErrs = append(allErrs, validateDNS1123Label(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		allErrs = append(allErrs, validateName(*a.NodeName, nameIsDNSSubdomain, fldPath.Child("nodeName"))...)
	}
	return append(allErrs, validateNonSpecialIP(a.IP, fldPath.Child("ip"))...)
}
