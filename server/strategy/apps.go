package strategy

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// apps/v1: Deployments, ReplicaSets, DaemonSets, StatefulSets and
// ControllerRevisions.

func init() {
	gv := appsv1.SchemeGroupVersion
	register(gv.WithKind("Deployment"), &kind[*appsv1.Deployment]{
		defaults: defaultDeployment,
		prepareCreate: func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{}
			d.Generation = 1
		},
		prepareUpdate: func(d, old *appsv1.Deployment) {
			d.Status = old.Status
			// Annotations count too: they are copied to the ReplicaSets.
			bumpGeneration(d, !apiequality.Semantic.DeepEqual(d.Spec, old.Spec) ||
				!apiequality.Semantic.DeepEqual(d.Annotations, old.Annotations))
		},
		prepareStatus: func(d, old *appsv1.Deployment) {
			d.Spec = old.Spec
			d.Labels = old.Labels
		},
		validate: func(d *appsv1.Deployment) field.ErrorList {
			allErrs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateDeploymentSpec(&d.Spec, specPath)...)
		},
		validateUpdate: func(d, old *appsv1.Deployment) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateDeploymentSpec(&d.Spec, specPath)...)
			return append(allErrs, validateImmutable(d.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatus: func(d, old *appsv1.Deployment) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
			s := d.Status
			allErrs = append(allErrs, validateNonnegative(s.ObservedGeneration, statusPath.Child("observedGeneration"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.Replicas), statusPath.Child("replicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.UpdatedReplicas), statusPath.Child("updatedReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.ReadyReplicas), statusPath.Child("readyReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.AvailableReplicas), statusPath.Child("availableReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.UnavailableReplicas), statusPath.Child("unavailableReplicas"))...)
			if s.CollisionCount != nil {
				allErrs = append(allErrs, validateNonnegative(int64(*s.CollisionCount), statusPath.Child("collisionCount"))...)
			}
			const msg = "cannot be greater than status.replicas"
			if s.UpdatedReplicas > s.Replicas {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("updatedReplicas"), s.UpdatedReplicas, msg))
			}
			if s.ReadyReplicas > s.Replicas {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("readyReplicas"), s.ReadyReplicas, msg))
			}
			if s.AvailableReplicas > s.Replicas {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), s.AvailableReplicas, msg))
			}
			if s.AvailableReplicas > s.ReadyReplicas {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
			}
			return append(allErrs, validateCollisionCount(s.CollisionCount, old.Status.CollisionCount)...)
		},
	})

	register(gv.WithKind("ReplicaSet"), &kind[*appsv1.ReplicaSet]{
		defaults: func(rs *appsv1.ReplicaSet) {
			if rs.Spec.Replicas == nil {
				rs.Spec.Replicas = ptr.To[int32](1)
			}
			defaultPodTemplateSpec(&rs.Spec.Template)
		},
		prepareCreate: func(rs *appsv1.ReplicaSet) {
			rs.Status = appsv1.ReplicaSetStatus{}
			rs.Generation = 1
		},
		prepareUpdate: func(rs, old *appsv1.ReplicaSet) {
			rs.Status = old.Status
			bumpGeneration(rs, !apiequality.Semantic.DeepEqual(rs.Spec, old.Spec))
		},
		prepareStatus: func(rs, old *appsv1.ReplicaSet) {
			rs.Spec = old.Spec
		},
		validate: func(rs *appsv1.ReplicaSet) field.ErrorList {
			allErrs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateReplicaSetSpec(&rs.Spec, specPath)...)
		},
		validateUpdate: func(rs, old *appsv1.ReplicaSet) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateReplicaSetSpec(&rs.Spec, specPath)...)
			return append(allErrs, validateImmutable(rs.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatus: func(rs, old *appsv1.ReplicaSet) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
			s := rs.Status
			return append(allErrs, validateReplicaCounts(statusPath, s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration)...)
		},
		fields: func(rs *appsv1.ReplicaSet, set fields.Set) {
			set["status.replicas"] = strconv.Itoa(int(rs.Status.Replicas))
		},
	})

	register(gv.WithKind("DaemonSet"), &kind[*appsv1.DaemonSet]{
		defaults: defaultDaemonSet,
		prepareCreate: func(ds *appsv1.DaemonSet) {
			ds.Status = appsv1.DaemonSetStatus{}
			ds.Generation = 1
			setTemplateGeneration(ds, 1)
		},
		prepareUpdate: func(ds, old *appsv1.DaemonSet) {
			ds.Status = old.Status
			gen := templateGeneration(old)
			if !apiequality.Semantic.DeepEqual(ds.Spec.Template, old.Spec.Template) {
				gen++
				bumpGeneration(ds, true)
			} else {
				bumpGeneration(ds, !apiequality.Semantic.DeepEqual(ds.Spec, old.Spec))
			}
			setTemplateGeneration(ds, gen)
		},
		prepareStatus: func(ds, old *appsv1.DaemonSet) {
			ds.Spec = old.Spec
		},
		validate: func(ds *appsv1.DaemonSet) field.ErrorList {
			allErrs := validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateDaemonSetSpec(&ds.Spec, specPath)...)
		},
		validateUpdate: func(ds, old *appsv1.DaemonSet) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateDaemonSetSpec(&ds.Spec, specPath)...)
			return append(allErrs, validateImmutable(ds.Spec.Selector, old.Spec.Selector, specPath.Child("selector"))...)
		},
		validateStatus: func(ds, old *appsv1.DaemonSet) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
			s := ds.Status
			for _, c := range []struct {
				name string
				v    int64
			}{
				{"currentNumberScheduled", int64(s.CurrentNumberScheduled)}, {"numberMisscheduled", int64(s.NumberMisscheduled)},
				{"desiredNumberScheduled", int64(s.DesiredNumberScheduled)}, {"numberReady", int64(s.NumberReady)},
				{"observedGeneration", s.ObservedGeneration}, {"updatedNumberScheduled", int64(s.UpdatedNumberScheduled)},
				{"numberAvailable", int64(s.NumberAvailable)}, {"numberUnavailable", int64(s.NumberUnavailable)},
			} {
				allErrs = append(allErrs, validateNonnegative(c.v, statusPath.Child(c.name))...)
			}
			if s.CollisionCount != nil {
				allErrs = append(allErrs, validateNonnegative(int64(*s.CollisionCount), statusPath.Child("collisionCount"))...)
			}
			return append(allErrs, validateCollisionCount(s.CollisionCount, old.Status.CollisionCount)...)
		},
	})

	register(gv.WithKind("StatefulSet"), &kind[*appsv1.StatefulSet]{
		defaults: defaultStatefulSet,
		prepareCreate: func(ss *appsv1.StatefulSet) {
			ss.Status = appsv1.StatefulSetStatus{}
			ss.Generation = 1
		},
		prepareUpdate: func(ss, old *appsv1.StatefulSet) {
			ss.Status = old.Status
			bumpGeneration(ss, !apiequality.Semantic.DeepEqual(ss.Spec, old.Spec))
		},
		prepareStatus: func(ss, old *appsv1.StatefulSet) {
			ss.Spec = old.Spec
		},
		validate: func(ss *appsv1.StatefulSet) field.ErrorList {
			allErrs := validateObjectMeta(&ss.ObjectMeta, true, nameIsDNSLabel)
			return append(allErrs, validateStatefulSetSpec(&ss.Spec, specPath)...)
		},
		validateUpdate: validateStatefulSetUpdate,
		validateStatus: func(ss, old *appsv1.StatefulSet) field.ErrorList {
			s := ss.Status
			allErrs := validateNonnegative(int64(s.Replicas), statusPath.Child("replicas"))
			allErrs = append(allErrs, validateNonnegative(int64(s.ReadyReplicas), statusPath.Child("readyReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.CurrentReplicas), statusPath.Child("currentReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.UpdatedReplicas), statusPath.Child("updatedReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(int64(s.AvailableReplicas), statusPath.Child("availableReplicas"))...)
			allErrs = append(allErrs, validateNonnegative(s.ObservedGeneration, statusPath.Child("observedGeneration"))...)
			if s.CollisionCount != nil {
				allErrs = append(allErrs, validateNonnegative(int64(*s.CollisionCount), statusPath.Child("collisionCount"))...)
			}
			const msg = "cannot be greater than status.replicas"
			for _, c := range []struct {
				name string
				v    int32
			}{{"readyReplicas", s.ReadyReplicas}, {"currentReplicas", s.CurrentReplicas}, {"updatedReplicas", s.UpdatedReplicas}, {"availableReplicas", s.AvailableReplicas}} {
				if c.v > s.Replicas {
					allErrs = append(allErrs, field.Invalid(statusPath.Child(c.name), c.v, msg))
				}
			}
			if s.AvailableReplicas > s.ReadyReplicas {
				allErrs = append(allErrs, field.Invalid(statusPath.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than status.readyReplicas"))
			}
			allErrs = append(allErrs, validateObjectMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta)...)
			return append(allErrs, validateCollisionCount(s.CollisionCount, old.Status.CollisionCount)...)
		},
	})

	register(gv.WithKind("ControllerRevision"), &kind[*appsv1.ControllerRevision]{
		validate: validateControllerRevision,
		validateUpdate: func(cr, old *appsv1.ControllerRevision) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&cr.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateControllerRevision(cr)...)
			return append(allErrs, validateImmutable(cr.Data, old.Data, field.NewPath("data"))...)
		},
	})
}

func defaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptr.To[int32](1)
	}
	s := &d.Spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("25%"))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = ptr.To(intstr.FromString("25%"))
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	}
	defaultPodTemplateSpec(&d.Spec.Template)
}

func defaultDaemonSet(ds *appsv1.DaemonSet) {
	s := &ds.Spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(0))
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	defaultPodTemplateSpec(&ds.Spec.Template)
}

func defaultStatefulSet(ss *appsv1.StatefulSet) {
	spec := &ss.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if ru := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil && ru.Partition == nil {
		ru.Partition = ptr.To[int32](0)
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = ptr.To[int32](1)
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	defaultPodTemplateSpec(&spec.Template)
	// The claim templates get a claim's defaults, status included.
	for i := range spec.VolumeClaimTemplates {
		t := &spec.VolumeClaimTemplates[i]
		if t.Status.Phase == "" {
			t.Status.Phase = v1.ClaimPending
		}
		defaultPVCSpec(&t.Spec)
	}
}

func templateGeneration(ds *appsv1.DaemonSet) int64 {
	g, err := strconv.ParseInt(ds.Annotations[appsv1.DeprecatedTemplateGeneration], 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// setTemplateGeneration keeps the template generation in the annotation
// where the v1 type carries it.
func setTemplateGeneration(ds *appsv1.DaemonSet, g int64) {
	if g == 0 {
		delete(ds.Annotations, appsv1.DeprecatedTemplateGeneration)
		return
	}
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(g, 10)
}

func validateCollisionCount(n, old *int32) field.ErrorList {
	if isDecremented(n, old) {
		return field.ErrorList{field.Invalid(statusPath.Child("collisionCount"), ptr.Deref(n, 0), "cannot be decremented")}
	}
	return nil
}

// validateWorkloadSelector checks a workload's selector: required, valid and
// not empty. kindName is the kind's word in upstream's message.
func validateWorkloadSelector(sel *metav1.LabelSelector, fldPath *field.Path, kindName string) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	allErrs := validateLabelSelector(sel, fldPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kindName))
	}
	return allErrs
}

// validatePodTemplateSpecForReplicaSet: the selector matches the template's
// labels, the template is valid and its pods restart Always.
func validatePodTemplateSpecForReplicaSet(t *v1.PodTemplateSpec, selector labels.Selector, fldPath *field.Path, kindName string) field.ErrorList {
	var allErrs field.ErrorList
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(t, fldPath)...)
	if t.Spec.RestartPolicy != v1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []string{string(v1.RestartPolicyAlways)}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), fmt.Sprintf("activeDeadlineSeconds in %s is not Supported", kindName)))
	}
	return allErrs
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(ptr.Deref(spec.Replicas, 0)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, fldPath.Child("selector"), "deployment")...)
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validatePodTemplateSpecForReplicaSet(&spec.Template, selector, fldPath.Child("template"), "ReplicaSet")...)
	}
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.ProgressDeadlineSeconds), fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is '"+string(appsv1.RecreateDeploymentStrategyType)+"'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		ru := s.RollingUpdate
		p := fldPath.Child("rollingUpdate")
		maxUnavailable := ptr.Deref(ru.MaxUnavailable, intstr.FromInt32(0))
		maxSurge := ptr.Deref(ru.MaxSurge, intstr.FromInt32(0))
		allErrs := validatePositiveIntOrPercent(maxUnavailable, p.Child("maxUnavailable"))
		allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, p.Child("maxSurge"))...)
		if intOrPercentValue(maxUnavailable) == 0 && intOrPercentValue(maxSurge) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("maxUnavailable"), maxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		return append(allErrs, isNotMoreThan100Percent(maxUnavailable, p.Child("maxUnavailable"))...)
	default:
		return field.ErrorList{field.NotSupported(fldPath, s, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)})}
	}
	return nil
}

// validatePositiveIntOrPercent: a non-negative number or a percentage.
func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, validateNonnegative(int64(v.IntValue()), fldPath)...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%%')"))
	}
	return allErrs
}

func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, _ := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, true
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

func isNotMoreThan100Percent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if n, ok := percentValue(v); ok && n > 100 {
		return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
	}
	return nil
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(ptr.Deref(spec.Replicas, 0)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	// Upstream says "deployment" here too.
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, fldPath.Child("selector"), "deployment")...)
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validatePodTemplateSpecForReplicaSet(&spec.Template, selector, fldPath.Child("template"), "ReplicaSet")...)
	}
	return allErrs
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateLabelSelector(spec.Selector, fldPath.Child("selector"))
	selector, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err == nil && !selector.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	if spec.Selector != nil && len(spec.Selector.MatchLabels)+len(spec.Selector.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "empty selector is invalid for daemonset"))
	}
	tp := fldPath.Child("template")
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, tp)...)
	if spec.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tp.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []string{string(v1.RestartPolicyAlways)}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in DaemonSet is not Supported"))
	}
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	us := spec.UpdateStrategy
	up := fldPath.Child("updateStrategy")
	switch us.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if us.RollingUpdate == nil {
			allErrs = append(allErrs, field.Required(up.Child("rollingUpdate"), ""))
			break
		}
		rp := up.Child("rollingUpdate")
		maxUnavailable := ptr.Deref(us.RollingUpdate.MaxUnavailable, intstr.FromInt32(0))
		maxSurge := ptr.Deref(us.RollingUpdate.MaxSurge, intstr.FromInt32(0))
		allErrs = append(allErrs, validatePositiveIntOrPercent(maxUnavailable, rp.Child("maxUnavailable"))...)
		allErrs = append(allErrs, validatePositiveIntOrPercent(maxSurge, rp.Child("maxSurge"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(maxUnavailable, rp.Child("maxUnavailable"))...)
		allErrs = append(allErrs, isNotMoreThan100Percent(maxSurge, rp.Child("maxSurge"))...)
		hasUnavailable, hasSurge := intOrPercentValue(maxUnavailable) != 0, intOrPercentValue(maxSurge) != 0
		switch {
		case hasUnavailable && hasSurge:
			allErrs = append(allErrs, field.Invalid(rp.Child("maxSurge"), maxSurge, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			allErrs = append(allErrs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(up, us, []string{string(appsv1.RollingUpdateDaemonSetStrategyType), string(appsv1.OnDeleteDaemonSetStrategyType)}))
	}
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	return allErrs
}

// validateStatefulSetSpec follows upstream, which does not validate the
// pod spec of a StatefulSet's template (only its labels, annotations and
// restart policy): a broken template shows when the controller creates pods.
func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	up := fldPath.Child("updateStrategy")
	switch spec.UpdateStrategy.Type {
	case "":
		allErrs = append(allErrs, field.Required(up, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if spec.UpdateStrategy.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(up.Child("rollingUpdate"), spec.UpdateStrategy.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := spec.UpdateStrategy.RollingUpdate; ru != nil {
			rp := up.Child("rollingUpdate")
			allErrs = append(allErrs, validateNonnegative(int64(ptr.Deref(ru.Partition, 0)), rp.Child("partition"))...)
			if ru.MaxUnavailable != nil {
				allErrs = append(allErrs, validatePositiveIntOrPercent(*ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
				if intOrPercentValue(*ru.MaxUnavailable) == 0 {
					allErrs = append(allErrs, field.Invalid(rp.Child("maxUnavailable"), *ru.MaxUnavailable, "cannot be 0"))
				}
				allErrs = append(allErrs, isNotMoreThan100Percent(*ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(up, spec.UpdateStrategy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		pp := fldPath.Child("persistentVolumeClaimRetentionPolicy")
		for _, f := range []struct {
			name string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", p.WhenDeleted}, {"whenScaled", p.WhenScaled}} {
			name, v := f.name, f.v
			if v != appsv1.RetainPersistentVolumeClaimRetentionPolicyType && v != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
				allErrs = append(allErrs, field.NotSupported(pp.Child(name), v, []string{string(appsv1.RetainPersistentVolumeClaimRetentionPolicyType), string(appsv1.DeletePersistentVolumeClaimRetentionPolicyType)}))
			}
		}
	}
	allErrs = append(allErrs, validateNonnegative(int64(ptr.Deref(spec.Replicas, 0)), fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.Ordinals != nil {
		allErrs = append(allErrs, validateNonnegative(int64(spec.Ordinals.Start), fldPath.Child("ordinals.start"))...)
	}
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, fldPath.Child("selector"), "statefulset")...)
	tp := fldPath.Child("template")
	if selector, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, ""))
	} else {
		if !selector.Empty() && !selector.Matches(labels.Set(spec.Template.Labels)) {
			allErrs = append(allErrs, field.Invalid(tp.Child("metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
		}
		allErrs = append(allErrs, validateLabelsAt(spec.Template.Labels, tp.Child("labels"))...)
		allErrs = append(allErrs, validateAnnotations(spec.Template.Annotations, tp.Child("annotations"))...)
		allErrs = append(allErrs, validatePodSpecificAnnotations(spec.Template.Annotations, &spec.Template.Spec, tp.Child("annotations"))...)
	}
	if spec.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(tp.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []string{string(v1.RestartPolicyAlways)}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in StatefulSet is not Supported"))
	}
	return allErrs
}

func validateStatefulSetUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ss.ObjectMeta, &old.ObjectMeta)
	allErrs = append(allErrs, validateStatefulSetSpec(&ss.Spec, specPath)...)
	clone := ss.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(*clone, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(specPath, "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return allErrs
}

func validateControllerRevision(cr *appsv1.ControllerRevision) field.ErrorList {
	allErrs := validateObjectMeta(&cr.ObjectMeta, true, nameIsDNSSubdomain)
	if cr.Data.Raw == nil && cr.Data.Object == nil {
		allErrs = append(allErrs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(allErrs, validateNonnegative(cr.Revision, field.NewPath("revision"))...)
}
