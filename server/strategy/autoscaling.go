package strategy

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// autoscaling/v1 and v2 HorizontalPodAutoscalers. Upstream validates both
// as the internal (v2-shaped) type, so errors of a v1 object's CPU target
// point at spec.metrics[0].resource.target.averageUtilization as they do
// upstream.

// defaultCPUUtilization is the CPU target of an HPA that names no metric.
const defaultCPUUtilization = 80

func init() {
	register(autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"), &kind[*autoscalingv2.HorizontalPodAutoscaler]{
		defaults: defaultHPAv2,
		prepareCreate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
		},
		prepareUpdate: func(h, old *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status = old.Status
		},
		prepareStatus: func(h, old *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec = old.Spec
		},
		validate: func(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMeta(&h.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateHPASpec(&h.Spec)...)
		},
		validateUpdate: func(h, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&h.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateHPASpec(&h.Spec)...)
		},
		validateStatus: func(h, old *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&h.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateNonnegative(int64(h.Status.CurrentReplicas), statusPath.Child("currentReplicas"))...)
			return append(allErrs, validateNonnegative(int64(h.Status.DesiredReplicas), statusPath.Child("desiredReplicas"))...)
		},
	})

	register(autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"), &kind[*autoscalingv1.HorizontalPodAutoscaler]{
		defaults: func(h *autoscalingv1.HorizontalPodAutoscaler) {
			if h.Spec.MinReplicas == nil {
				h.Spec.MinReplicas = ptr.To[int32](1)
			}
		},
		prepareCreate: func(h *autoscalingv1.HorizontalPodAutoscaler) {
			h.Status = autoscalingv1.HorizontalPodAutoscalerStatus{}
		},
		prepareUpdate: func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			h.Status = old.Status
		},
		prepareStatus: func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			h.Spec = old.Spec
		},
		validate: func(h *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMeta(&h.ObjectMeta, true, nameIsDNSSubdomain)
			return append(allErrs, validateHPASpec(hpaV1SpecAsV2(&h.Spec))...)
		},
		validateUpdate: func(h, old *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&h.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateHPASpec(hpaV1SpecAsV2(&h.Spec))...)
		},
		validateStatus: func(h, old *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&h.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateNonnegative(int64(h.Status.CurrentReplicas), statusPath.Child("currentReplicas"))...)
			return append(allErrs, validateNonnegative(int64(h.Status.DesiredReplicas), statusPath.Child("desiredReplicas"))...)
		},
	})
}

// hpaV1SpecAsV2 converts a v1 spec to v2 for validation, as upstream's
// conversion does: the CPU target becomes a Resource metric.
func hpaV1SpecAsV2(s *autoscalingv1.HorizontalPodAutoscalerSpec) *autoscalingv2.HorizontalPodAutoscalerSpec {
	out := &autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
			Kind: s.ScaleTargetRef.Kind, Name: s.ScaleTargetRef.Name, APIVersion: s.ScaleTargetRef.APIVersion,
		},
		MinReplicas: s.MinReplicas,
		MaxReplicas: s.MaxReplicas,
	}
	if s.TargetCPUUtilizationPercentage != nil {
		out.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   v1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: s.TargetCPUUtilizationPercentage},
			},
		}}
	}
	return out
}

func defaultHPAv2(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		h.Spec.MinReplicas = ptr.To[int32](1)
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: v1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: ptr.To[int32](defaultCPUUtilization),
				},
			},
		}}
	}
	if b := h.Spec.Behavior; b != nil {
		b.ScaleUp = defaultScalingRules(b.ScaleUp, autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](0),
			SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		})
		// Scale-down leaves the stabilization window to the controller's
		// flag (5 minutes by default).
		b.ScaleDown = defaultScalingRules(b.ScaleDown, autoscalingv2.HPAScalingRules{
			SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		})
	}
}

// defaultScalingRules fills what rules leaves unset from def.
func defaultScalingRules(rules *autoscalingv2.HPAScalingRules, def autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if rules == nil {
		return &def
	}
	if rules.SelectPolicy == nil {
		rules.SelectPolicy = def.SelectPolicy
	}
	if rules.StabilizationWindowSeconds == nil {
		rules.StabilizationWindowSeconds = def.StabilizationWindowSeconds
	}
	if rules.Policies == nil {
		rules.Policies = def.Policies
	}
	return rules
}

const (
	maxPeriodSeconds          = 1800
	maxStabilizationWindowSec = 3600
)

var (
	validMetricSourceTypes = sets.New(autoscalingv2.ObjectMetricSourceType, autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
		autoscalingv2.ExternalMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType)
	validMetricTargetTypes = sets.New(autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType, autoscalingv2.AverageValueMetricType)
	validSelectPolicies    = sets.New(autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect)
	validScalingPolicies   = sets.New(autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy)
)

func validateHPASpec(s *autoscalingv2.HorizontalPodAutoscalerSpec) field.ErrorList {
	var allErrs field.ErrorList
	if s.MinReplicas != nil && *s.MinReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("minReplicas"), *s.MinReplicas, "must be greater than or equal to 1"))
	}
	if s.MaxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(specPath.Child("maxReplicas"), s.MaxReplicas, "must be greater than 0"))
	}
	if s.MinReplicas != nil && s.MaxReplicas < *s.MinReplicas {
		allErrs = append(allErrs, field.Invalid(specPath.Child("maxReplicas"), s.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	ref := specPath.Child("scaleTargetRef")
	allErrs = append(allErrs, validatePathSegmentField(s.ScaleTargetRef.Kind, ref.Child("kind"))...)
	allErrs = append(allErrs, validatePathSegmentField(s.ScaleTargetRef.Name, ref.Child("name"))...)
	for i, m := range s.Metrics {
		allErrs = append(allErrs, validateMetricSpec(m, specPath.Child("metrics").Index(i))...)
	}
	if b := s.Behavior; b != nil {
		bp := specPath.Child("behavior")
		allErrs = append(allErrs, validateScalingRules(b.ScaleUp, bp.Child("scaleUp"))...)
		allErrs = append(allErrs, validateScalingRules(b.ScaleDown, bp.Child("scaleDown"))...)
	}
	return allErrs
}

// validatePathSegmentField: required, and usable in a URL path.
func validatePathSegmentField(v string, fldPath *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var allErrs field.ErrorList
	for _, msg := range content.IsPathSegmentName(v) {
		allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
	}
	return allErrs
}

func validateMetricSpec(m autoscalingv2.MetricSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	tp := fldPath.Child("type")
	if m.Type == "" {
		allErrs = append(allErrs, field.Required(tp, "must specify a metric source type"))
	} else if !validMetricSourceTypes.Has(m.Type) {
		allErrs = append(allErrs, field.NotSupported(tp, m.Type, sets.List(validMetricSourceTypes)))
	}
	present := map[string]bool{
		"object": m.Object != nil, "pods": m.Pods != nil, "resource": m.Resource != nil,
		"external": m.External != nil, "containerResource": m.ContainerResource != nil,
	}
	expected := map[autoscalingv2.MetricSourceType]string{
		autoscalingv2.ObjectMetricSourceType: "object", autoscalingv2.PodsMetricSourceType: "pods",
		autoscalingv2.ResourceMetricSourceType: "resource", autoscalingv2.ExternalMetricSourceType: "external",
		autoscalingv2.ContainerResourceMetricSourceType: "containerResource",
	}[m.Type]
	if expected != "" && !present[expected] {
		allErrs = append(allErrs, field.Required(fldPath.Child(expected), "must populate information for the given metric source"))
	}
	for _, name := range []string{"object", "pods", "resource", "external", "containerResource"} {
		if present[name] && name != expected {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(name), "must populate the given metric source only"))
		}
	}
	switch {
	case m.Resource != nil && expected == "resource":
		p := fldPath.Child("resource")
		if m.Resource.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), "must specify a resource name"))
		}
		allErrs = append(allErrs, validateResourceMetricTarget(m.Resource.Target, p.Child("target"))...)
	case m.ContainerResource != nil && expected == "containerResource":
		p := fldPath.Child("containerResource")
		if m.ContainerResource.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), "must specify a resource name"))
		}
		if m.ContainerResource.Container == "" {
			allErrs = append(allErrs, field.Required(p.Child("container"), "must specify a container"))
		} else {
			allErrs = append(allErrs, validateDNS1123Label(m.ContainerResource.Container, p.Child("container"))...)
		}
		allErrs = append(allErrs, validateResourceMetricTarget(m.ContainerResource.Target, p.Child("target"))...)
	case m.Pods != nil && expected == "pods":
		p := fldPath.Child("pods")
		allErrs = append(allErrs, validateMetricIdentifier(m.Pods.Metric, p.Child("metric"))...)
		allErrs = append(allErrs, validateMetricTarget(m.Pods.Target, p.Child("target"))...)
		if m.Pods.Target.AverageValue == nil {
			allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must specify a positive target averageValue"))
		}
	case m.Object != nil && expected == "object":
		p := fldPath.Child("object")
		allErrs = append(allErrs, validatePathSegmentField(m.Object.DescribedObject.Kind, p.Child("describedObject", "kind"))...)
		allErrs = append(allErrs, validatePathSegmentField(m.Object.DescribedObject.Name, p.Child("describedObject", "name"))...)
		allErrs = append(allErrs, validateMetricIdentifier(m.Object.Metric, p.Child("metric"))...)
		allErrs = append(allErrs, validateMetricTarget(m.Object.Target, p.Child("target"))...)
		if m.Object.Target.Value == nil && m.Object.Target.AverageValue == nil {
			allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must set either a target value or averageValue"))
		}
	case m.External != nil && expected == "external":
		p := fldPath.Child("external")
		allErrs = append(allErrs, validateMetricIdentifier(m.External.Metric, p.Child("metric"))...)
		allErrs = append(allErrs, validateMetricTarget(m.External.Target, p.Child("target"))...)
		if m.External.Target.Value == nil && m.External.Target.AverageValue == nil {
			allErrs = append(allErrs, field.Required(p.Child("target").Child("averageValue"), "must set either a target value for metric or a per-pod target"))
		}
		if m.External.Target.Value != nil && m.External.Target.AverageValue != nil {
			allErrs = append(allErrs, field.Forbidden(p.Child("target").Child("value"), "may not set both a target value for metric and a per-pod target"))
		}
	}
	return allErrs
}

func validateMetricIdentifier(id autoscalingv2.MetricIdentifier, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if id.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "must specify a metric name"))
	} else {
		for _, msg := range content.IsPathSegmentName(id.Name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), id.Name, msg))
		}
	}
	if id.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(id.Selector, fldPath.Child("selector"))...)
	}
	return allErrs
}

func validateMetricTarget(t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if t.Type == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must specify a metric target type"))
	} else if !validMetricTargetTypes.Has(t.Type) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), t.Type, sets.List(validMetricTargetTypes)))
	}
	if t.Value != nil && t.Value.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("value"), t.Value, "must be positive"))
	}
	if t.AverageValue != nil && t.AverageValue.Sign() != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageValue"), t.AverageValue, "must be positive"))
	}
	if t.AverageUtilization != nil && *t.AverageUtilization < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("averageUtilization"), *t.AverageUtilization, "must be greater than 0"))
	}
	return allErrs
}

func validateResourceMetricTarget(t autoscalingv2.MetricTarget, fldPath *field.Path) field.ErrorList {
	allErrs := validateMetricTarget(t, fldPath)
	if t.AverageValue != nil && t.AverageUtilization != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("averageValue"), "may not set both a target raw value and a target utilization"))
	}
	if t.AverageValue == nil && t.AverageUtilization == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("averageUtilization"), "must set either a target raw value or a target utilization"))
	}
	return allErrs
}

func validateScalingRules(r *autoscalingv2.HPAScalingRules, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > maxStabilizationWindowSec) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w,
			fmt.Sprintf("must be greater than or equal to zero and less than or equal to %v", maxStabilizationWindowSec)))
	}
	if r.SelectPolicy != nil && !validSelectPolicies.Has(*r.SelectPolicy) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("selectPolicy"), *r.SelectPolicy, sets.List(validSelectPolicies)))
	}
	pp := fldPath.Child("policies")
	if len(r.Policies) == 0 {
		allErrs = append(allErrs, field.Required(pp, "must specify at least one Policy"))
	}
	for i, p := range r.Policies {
		ip := pp.Index(i)
		if !validScalingPolicies.Has(p.Type) {
			allErrs = append(allErrs, field.NotSupported(ip.Child("type"), p.Type, sets.List(validScalingPolicies)))
		}
		if p.Value <= 0 {
			allErrs = append(allErrs, field.Invalid(ip.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 || p.PeriodSeconds > maxPeriodSeconds {
			allErrs = append(allErrs, field.Invalid(ip.Child("periodSeconds"), p.PeriodSeconds,
				fmt.Sprintf("must be greater than zero and less than or equal to %v", maxPeriodSeconds)))
		}
	}
	if r.Tolerance != nil && r.Tolerance.Cmp(resource.Quantity{}) < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("tolerance"), r.Tolerance, "must be greater than or equal to zero"))
	}
	return allErrs
}
