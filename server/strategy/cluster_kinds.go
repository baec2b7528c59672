package strategy

import (
	"fmt"
	"reflect"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// StorageClasses, Leases, PodDisruptionBudgets and PriorityClasses.

const (
	maxProvisionerParameterCount = 512
	maxProvisionerParameterSize  = 256 * (1 << 10)

	// Priority classes: names starting "system-" are reserved, user classes
	// stay below the system ones.
	systemPriorityClassPrefix    = "system-"
	highestUserDefinablePriority = int32(1000000000)
)

var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2000001000,
	"system-cluster-critical": 2000000000,
}

func init() {
	register(storagev1.SchemeGroupVersion.WithKind("StorageClass"), &kind[*storagev1.StorageClass]{
		clusterScoped: true,
		defaults: func(sc *storagev1.StorageClass) {
			if sc.ReclaimPolicy == nil {
				sc.ReclaimPolicy = ptr.To(v1.PersistentVolumeReclaimDelete)
			}
			if sc.VolumeBindingMode == nil {
				sc.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
			}
		},
		validate: validateStorageClass,
		validateUpdate: func(sc, old *storagev1.StorageClass) field.ErrorList {
			allErrs := validateStorageClass(sc)
			allErrs = append(allErrs, validateObjectMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta)...)
			if !reflect.DeepEqual(old.Parameters, sc.Parameters) {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
			}
			if sc.Provisioner != old.Provisioner {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
			}
			if ptr.Deref(sc.ReclaimPolicy, "") != ptr.Deref(old.ReclaimPolicy, "") {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
			}
			return append(allErrs, validateImmutable(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
		},
	})

	register(coordinationv1.SchemeGroupVersion.WithKind("Lease"), &kind[*coordinationv1.Lease]{
		validate: validateLease,
		validateUpdate: func(l, old *coordinationv1.Lease) field.ErrorList {
			allErrs := validateLease(l)
			return append(allErrs, validateObjectMetaUpdate(&l.ObjectMeta, &old.ObjectMeta)...)
		},
	})

	register(policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), &kind[*policyv1.PodDisruptionBudget]{
		prepareCreate: func(pdb *policyv1.PodDisruptionBudget) {
			pdb.Status = policyv1.PodDisruptionBudgetStatus{}
			pdb.Generation = 1
		},
		prepareUpdate: func(pdb, old *policyv1.PodDisruptionBudget) {
			pdb.Status = old.Status
			bumpGeneration(pdb, !apiequality.Semantic.DeepEqual(pdb.Spec, old.Spec))
		},
		prepareStatus: func(pdb, old *policyv1.PodDisruptionBudget) {
			pdb.Spec = old.Spec
		},
		validate: func(pdb *policyv1.PodDisruptionBudget) field.ErrorList {
			allErrs := validateObjectMeta(&pdb.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validatePDBSpec(&pdb.Spec)...)
		},
		validateUpdate: func(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pdb.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validatePDBSpec(&pdb.Spec)...)
		},
		validateStatus: func(pdb, old *policyv1.PodDisruptionBudget) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pdb.ObjectMeta, &old.ObjectMeta)
			s := pdb.Status
			allErrs = append(allErrs, metav1validation.ValidateConditions(s.Conditions, statusPath.Child("conditions"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.DisruptionsAllowed), statusPath.Child("disruptionsAllowed"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.CurrentHealthy), statusPath.Child("currentHealthy"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.DesiredHealthy), statusPath.Child("desiredHealthy"))...)
			return append(allErrs, validateNonnegative(int64(s.ExpectedPods), statusPath.Child("expectedPods"))...)
		},
	})

	register(schedulingv1.SchemeGroupVersion.WithKind("PriorityClass"), &kind[*schedulingv1.PriorityClass]{
		clusterScoped: true,
		defaults: func(pc *schedulingv1.PriorityClass) {
			if pc.PreemptionPolicy == nil {
				pc.PreemptionPolicy = ptr.To(v1.PreemptLowerPriority)
			}
		},
		validate: validatePriorityClass,
		validateUpdate: func(pc, old *schedulingv1.PriorityClass) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&pc.ObjectMeta, &old.ObjectMeta)
			if pc.Value != old.Value {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
			}
			return append(allErrs, validateImmutable(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
		},
	})
}

var (
	supportedStorageReclaimPolicies = sets.New(v1.PersistentVolumeReclaimDelete, v1.PersistentVolumeReclaimRetain)
	supportedVolumeBindingModes     = sets.New(storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer)
)

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	allErrs := validateObjectMeta(&sc.ObjectMeta, false, nameIsDNSSubdomain)
	pp := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		allErrs = append(allErrs, field.Required(pp, sc.Provisioner))
	} else {
		allErrs = append(allErrs, validateQualifiedName(strings.ToLower(sc.Provisioner), pp)...)
	}
	paramsPath := field.NewPath("parameters")
	if len(sc.Parameters) > maxProvisionerParameterCount {
		allErrs = append(allErrs, field.TooLong(paramsPath, "Provisioner Parameters exceeded max allowed", maxProvisionerParameterCount))
	} else {
		var size int
		for _, k := range sortedKeys(sc.Parameters) {
			if k == "" {
				allErrs = append(allErrs, field.Invalid(paramsPath, k, "field can not be empty."))
			}
			size += len(k) + len(sc.Parameters[k])
		}
		if size > maxProvisionerParameterSize {
			allErrs = append(allErrs, field.TooLong(paramsPath, "", maxProvisionerParameterSize))
		}
	}
	if sc.ReclaimPolicy != nil && *sc.ReclaimPolicy != "" && !supportedStorageReclaimPolicies.Has(*sc.ReclaimPolicy) {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("reclaimPolicy"), sc.ReclaimPolicy, sets.List(supportedStorageReclaimPolicies)))
	}
	bp := field.NewPath("volumeBindingMode")
	if sc.VolumeBindingMode == nil {
		allErrs = append(allErrs, field.Required(bp, ""))
	} else if !supportedVolumeBindingModes.Has(*sc.VolumeBindingMode) {
		allErrs = append(allErrs, field.NotSupported(bp, sc.VolumeBindingMode, sets.List(supportedVolumeBindingModes)))
	}
	tp := field.NewPath("allowedTopologies")
	for i, term := range sc.AllowedTopologies {
		keys := sets.New[string]()
		for j, req := range term.MatchLabelExpressions {
			p := tp.Index(i).Child("matchLabelExpressions").Index(j)
			if len(req.Values) == 0 {
				allErrs = append(allErrs, field.Required(p.Child("values"), ""))
			}
			seen := sets.New[string]()
			for k, v := range req.Values {
				if seen.Has(v) {
					allErrs = append(allErrs, field.Duplicate(p.Child("values").Index(k), v))
				}
				seen.Insert(v)
			}
			allErrs = append(allErrs, metav1validation.ValidateLabelName(req.Key, p.Child("key"))...)
			if keys.Has(req.Key) {
				allErrs = append(allErrs, field.Duplicate(p.Child("key"), req.Key))
			}
			keys.Insert(req.Key)
		}
	}
	return allErrs
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	allErrs := validateObjectMeta(&l.ObjectMeta, true, nameIsDNSSubdomain)
	s := &l.Spec
	if s.LeaseDurationSeconds != nil && *s.LeaseDurationSeconds <= 0 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("leaseDurationSeconds"), s.LeaseDurationSeconds, "must be greater than 0"))
	}
	if s.LeaseTransitions != nil && *s.LeaseTransitions < 0 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("leaseTransitions"), s.LeaseTransitions, "must be greater than or equal to 0"))
	}
	if s.Strategy != nil {
		if *s.Strategy == "" {
			allErrs = append(allErrs, field.Required(specPath.Child("strategy"), ""))
		} else {
			allErrs = append(allErrs, validateQualifiedName(string(*s.Strategy), specPath.Child("strategy"))...)
		}
	}
	if s.PreferredHolder != nil && *s.PreferredHolder != "" && (s.Strategy == nil || *s.Strategy == "") {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("preferredHolder"), "preferredHolder can only be set when strategy is set"))
	}
	return allErrs
}

var supportedUnhealthyPodEvictionPolicies = sets.New(policyv1.AlwaysAllow, policyv1.IfHealthyBudget)

func validatePDBSpec(s *policyv1.PodDisruptionBudgetSpec) field.ErrorList {
	var allErrs field.ErrorList
	if s.MinAvailable != nil && s.MaxUnavailable != nil {
		allErrs = append(allErrs, field.Invalid(specPath, s, "minAvailable and maxUnavailable cannot be both set"))
	}
	for _, f := range []struct {
		name string
		v    *intstr.IntOrString
	}{{"minAvailable", s.MinAvailable}, {"maxUnavailable", s.MaxUnavailable}} {
		name, v := f.name, f.v
		if v != nil {
			allErrs = append(allErrs, validatePositiveIntOrPercent(*v, specPath.Child(name))...)
			allErrs = append(allErrs, isNotMoreThan100Percent(*v, specPath.Child(name))...)
		}
	}
	allErrs = append(allErrs, validateLabelSelector(s.Selector, specPath.Child("selector"))...)
	if p := s.UnhealthyPodEvictionPolicy; p != nil && !supportedUnhealthyPodEvictionPolicies.Has(*p) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("unhealthyPodEvictionPolicy"), *p, sets.List(supportedUnhealthyPodEvictionPolicies)))
	}
	return allErrs
}

func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	allErrs := validateObjectMeta(&pc.ObjectMeta, false, nameIsDNSSubdomain)
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		if err := knownSystemPriorityClass(pc); err != nil {
			allErrs = append(allErrs, field.Forbidden(metadataPath.Child("name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err.Error()))
		}
	} else if pc.Value > highestUserDefinablePriority {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserDefinablePriority)))
	}
	if pc.PreemptionPolicy != nil {
		allErrs = append(allErrs, validatePreemptionPolicy(*pc.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
	}
	return allErrs
}

func knownSystemPriorityClass(pc *schedulingv1.PriorityClass) error {
	value, ok := systemPriorityClasses[pc.Name]
	if !ok {
		return fmt.Errorf("%v is not a known system priority class", pc.Name)
	}
	if value != pc.Value {
		return fmt.Errorf("value of %v PriorityClass must be %v", pc.Name, value)
	}
	if pc.GlobalDefault {
		return fmt.Errorf("globalDefault of %v PriorityClass must be %v", pc.Name, false)
	}
	return nil
}
