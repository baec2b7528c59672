package apiserver

import (
	"encoding/json"
	"fmt"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Some kinds are served in more than one version but kept in one, as
// upstream keeps them: a HorizontalPodAutoscaler is stored as
// autoscaling/v2 and served as v1 too. A Resource served that way has a
// hub (the stored version's Resource) and a conversion each way; the
// handlers convert what comes in to the hub's type and what goes out to
// the served one, and everything between (strategy, storage) is the hub's.

// conversion turns objects of one version into another.
type conversion struct {
	toHub, fromHub func(runtime.Object) (runtime.Object, error)
}

// servedVersions lists the extra versions: the hub's GroupVersionResource,
// then the Resource served in another version.
func servedVersions() []struct {
	hub  schema.GroupVersionResource
	res  *Resource
	conv conversion
} {
	return []struct {
		hub  schema.GroupVersionResource
		res  *Resource
		conv conversion
	}{{
		hub: autoscalingv2.SchemeGroupVersion.WithResource("horizontalpodautoscalers"),
		res: &Resource{GVK: autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"), Plural: "horizontalpodautoscalers",
			Namespaced: true, ShortNames: []string{"hpa"}, Categories: []string{"all"}, Subresources: []string{"status"}},
		conv: conversion{toHub: hpaToV2, fromHub: hpaToV1},
	}, {
		hub:  corev1.SchemeGroupVersion.WithResource("events"),
		res:  &Resource{GVK: eventsv1.SchemeGroupVersion.WithKind("Event"), Plural: "events", Namespaced: true, ShortNames: []string{"ev"}},
		conv: conversion{toHub: eventToCore, fromHub: eventToEventsV1},
	}}
}

// Events are kept as core/v1 Events and served as events.k8s.io/v1 too,
// field for field as upstream converts them.

func eventToEventsV1(obj runtime.Object) (runtime.Object, error) {
	in, ok := obj.(*corev1.Event)
	if !ok {
		return nil, fmt.Errorf("convert %T to an events.k8s.io/v1 Event", obj)
	}
	out := &eventsv1.Event{
		ObjectMeta:               *in.ObjectMeta.DeepCopy(),
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out, nil
}

func eventToCore(obj runtime.Object) (runtime.Object, error) {
	in, ok := obj.(*eventsv1.Event)
	if !ok {
		return nil, fmt.Errorf("convert %T to a core/v1 Event", obj)
	}
	out := &corev1.Event{
		ObjectMeta:          *in.ObjectMeta.DeepCopy(),
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out, nil
}

// in converts a decoded object of the served version to the hub's.
func (c *call) in(obj runtime.Object) (runtime.Object, error) {
	if c.res.conv == nil {
		return obj, nil
	}
	return c.res.conv.toHub(obj)
}

// out converts a stored object, or a list of them, to the served version;
// other objects (Status) pass through.
func (c *call) out(obj runtime.Object) (runtime.Object, error) {
	if c.res.conv == nil || obj == nil {
		return obj, nil
	}
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return nil, err
		}
		for i, item := range items {
			if items[i], err = c.res.conv.fromHub(item); err != nil {
				return nil, err
			}
		}
		list := c.res.newList()
		if err := meta.SetList(list, items); err != nil {
			return nil, err
		}
		from, _ := meta.ListAccessor(obj)
		to, _ := meta.ListAccessor(list)
		to.SetResourceVersion(from.GetResourceVersion())
		to.SetContinue(from.GetContinue())
		to.SetRemainingItemCount(from.GetRemainingItemCount())
		return list, nil
	}
	if reflect.TypeOf(obj) == reflect.TypeOf(c.res.hub.newObj()) {
		return c.res.conv.fromHub(obj)
	}
	return obj, nil
}

// The annotations autoscaling/v1 keeps what it has no fields for, so that
// a v1 client's update does not lose a v2 object's other metrics, as
// upstream does.
const (
	hpaMetricsAnnotation        = "autoscaling.alpha.kubernetes.io/metrics"
	hpaCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	hpaConditionsAnnotation     = "autoscaling.alpha.kubernetes.io/conditions"
	hpaBehaviorAnnotation       = "autoscaling.alpha.kubernetes.io/behavior"
)

func hpaToV1(obj runtime.Object) (runtime.Object, error) {
	in, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil, fmt.Errorf("convert %T to an autoscaling/v1 HorizontalPodAutoscaler", obj)
	}
	out := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.Spec = autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: in.Spec.ScaleTargetRef.Kind, Name: in.Spec.ScaleTargetRef.Name, APIVersion: in.Spec.ScaleTargetRef.APIVersion},
		MinReplicas:    in.Spec.MinReplicas,
		MaxReplicas:    in.Spec.MaxReplicas,
	}
	var other []autoscalingv2.MetricSpec
	for _, m := range in.Spec.Metrics {
		if r := m.Resource; m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU &&
			r.Target.Type == autoscalingv2.UtilizationMetricType && r.Target.AverageUtilization != nil && out.Spec.TargetCPUUtilizationPercentage == nil {
			out.Spec.TargetCPUUtilizationPercentage = r.Target.AverageUtilization
			continue
		}
		other = append(other, m)
	}
	out.Status = autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration: in.Status.ObservedGeneration,
		LastScaleTime:      in.Status.LastScaleTime,
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	var otherCurrent []autoscalingv2.MetricStatus
	for _, m := range in.Status.CurrentMetrics {
		if r := m.Resource; m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU && r.Current.AverageUtilization != nil && out.Status.CurrentCPUUtilizationPercentage == nil {
			out.Status.CurrentCPUUtilizationPercentage = r.Current.AverageUtilization
			continue
		}
		otherCurrent = append(otherCurrent, m)
	}
	for key, v := range map[string]any{hpaMetricsAnnotation: other, hpaCurrentMetricsAnnotation: otherCurrent, hpaConditionsAnnotation: in.Status.Conditions, hpaBehaviorAnnotation: in.Spec.Behavior} {
		if err := setJSONAnnotation(out, key, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hpaToV2(obj runtime.Object) (runtime.Object, error) {
	in, ok := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	if !ok {
		return nil, fmt.Errorf("convert %T to an autoscaling/v2 HorizontalPodAutoscaler", obj)
	}
	out := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: *in.ObjectMeta.DeepCopy()}
	out.Spec = autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: in.Spec.ScaleTargetRef.Kind, Name: in.Spec.ScaleTargetRef.Name, APIVersion: in.Spec.ScaleTargetRef.APIVersion},
		MinReplicas:    in.Spec.MinReplicas,
		MaxReplicas:    in.Spec.MaxReplicas,
	}
	if in.Spec.TargetCPUUtilizationPercentage != nil {
		out.Spec.Metrics = append(out.Spec.Metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: in.Spec.TargetCPUUtilizationPercentage,
			}},
		})
	}
	out.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: in.Status.ObservedGeneration,
		LastScaleTime:      in.Status.LastScaleTime,
		CurrentReplicas:    in.Status.CurrentReplicas,
		DesiredReplicas:    in.Status.DesiredReplicas,
	}
	if in.Status.CurrentCPUUtilizationPercentage != nil {
		out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, autoscalingv2.MetricStatus{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{
				AverageUtilization: in.Status.CurrentCPUUtilizationPercentage,
			}},
		})
	}
	var other []autoscalingv2.MetricSpec
	var otherCurrent []autoscalingv2.MetricStatus
	for key, into := range map[string]any{hpaMetricsAnnotation: &other, hpaCurrentMetricsAnnotation: &otherCurrent, hpaConditionsAnnotation: &out.Status.Conditions, hpaBehaviorAnnotation: &out.Spec.Behavior} {
		if raw, ok := out.Annotations[key]; ok {
			if err := json.Unmarshal([]byte(raw), into); err != nil {
				return nil, fmt.Errorf("annotation %s: %w", key, err)
			}
			delete(out.Annotations, key)
		}
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	out.Spec.Metrics = append(out.Spec.Metrics, other...)
	out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, otherCurrent...)
	return out, nil
}

// setJSONAnnotation stores v as JSON under key, unless v is empty.
func setJSONAnnotation(obj *autoscalingv1.HorizontalPodAutoscaler, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if s := string(b); s == "null" || s == "[]" {
		return nil
	}
	if obj.Annotations == nil {
		obj.Annotations = map[string]string{}
	}
	obj.Annotations[key] = string(b)
	return nil
}
