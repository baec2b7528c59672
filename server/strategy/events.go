package strategy

import (
	"fmt"
	"reflect"

	v1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// events.k8s.io/v1 Events. Upstream stores them as core Events and
// validates them as such, so error paths use the core field names
// (involvedObject for regarding, message for note, ...) as upstream's do.
// Creates and updates through events.k8s.io/v1 are validated strictly; core
// v1 ones only get the legacy checks.

func init() {
	register(eventsv1.SchemeGroupVersion.WithKind("Event"), &kind[*eventsv1.Event]{
		validate: func(e *eventsv1.Event) field.ErrorList {
			return validateEventsV1Create(eventAsCore(e))
		},
		validateUpdate: func(e, old *eventsv1.Event) field.ErrorList {
			return validateEventsV1Update(eventAsCore(e), eventAsCore(old))
		},
		fields: func(e *eventsv1.Event, set fields.Set) {
			set["regarding.kind"] = e.Regarding.Kind
			set["regarding.namespace"] = e.Regarding.Namespace
			set["regarding.name"] = e.Regarding.Name
			set["regarding.uid"] = string(e.Regarding.UID)
			set["regarding.apiVersion"] = e.Regarding.APIVersion
			set["regarding.resourceVersion"] = e.Regarding.ResourceVersion
			set["regarding.fieldPath"] = e.Regarding.FieldPath
			set["reason"] = e.Reason
			set["reportingController"] = e.ReportingController
			set["type"] = e.Type
		},
	})
}

// eventAsCore converts an events.k8s.io Event to the core type.
func eventAsCore(e *eventsv1.Event) *v1.Event {
	out := &v1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Related:             e.Related,
		Action:              e.Action,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
		Source:              e.DeprecatedSource,
	}
	if e.Series != nil {
		out.Series = &v1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

func validateEventSeries(e *v1.Event) field.ErrorList {
	if e.Series == nil {
		return nil
	}
	var allErrs field.ErrorList
	if e.Series.Count < 2 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
	}
	if e.Series.LastObservedTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return allErrs
}

func validateEventsV1Create(e *v1.Event) field.ErrorList {
	allErrs := validateLegacyEvent(e, "reportingController")
	allErrs = append(allErrs, validateObjectMeta(&e.ObjectMeta, true, nameIsDNSSubdomain)...)
	allErrs = append(allErrs, validateEventSeries(e)...)
	if e.EventTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != v1.EventTypeNormal && e.Type != v1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if !e.FirstTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !e.LastTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if e.Count != 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if e.Source.Component != "" || e.Source.Host != "" {
		allErrs = append(allErrs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return allErrs
}

func validateEventsV1Update(e, old *v1.Event) field.ErrorList {
	allErrs := validateLegacyEvent(e, "reportingController")
	allErrs = append(allErrs, validateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta)...)
	if !reflect.DeepEqual(e.Series, old.Series) {
		allErrs = append(allErrs, validateEventSeries(e)...)
	}
	for _, f := range []struct {
		name     string
		new, old any
	}{
		{"involvedObject", e.InvolvedObject, old.InvolvedObject},
		{"reason", e.Reason, old.Reason},
		{"message", e.Message, old.Message},
		{"source", e.Source, old.Source},
		{"firstTimestamp", e.FirstTimestamp, old.FirstTimestamp},
		{"lastTimestamp", e.LastTimestamp, old.LastTimestamp},
		{"count", e.Count, old.Count},
		{"type", e.Type, old.Type},
		{"eventTime", e.EventTime, old.EventTime},
		{"action", e.Action, old.Action},
		{"related", e.Related, old.Related},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	} {
		allErrs = append(allErrs, validateImmutable(f.new, f.old, field.NewPath(f.name))...)
	}
	return allErrs
}
