package printers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Both core/v1 and events.k8s.io/v1 events are one resource upstream, printed
// from the same internal type, so they share columns.
var eventColumns = []metav1.TableColumnDefinition{
	{Name: "Last Seen", Type: "string", Description: corev1.Event{}.SwaggerDoc()["lastTimestamp"]},
	{Name: "Type", Type: "string", Description: corev1.Event{}.SwaggerDoc()["type"]},
	{Name: "Reason", Type: "string", Description: corev1.Event{}.SwaggerDoc()["reason"]},
	{Name: "Object", Type: "string", Description: corev1.Event{}.SwaggerDoc()["involvedObject"]},
	{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]},
	{Name: "Source", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["source"]},
	{Name: "Message", Type: "string", Description: corev1.Event{}.SwaggerDoc()["message"]},
	{Name: "First Seen", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["firstTimestamp"]},
	{Name: "Count", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["count"]},
	{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: objectMetaDoc["name"]},
}

// eventFields are the fields of an event that its row shows, whichever API
// group the event came from.
type eventFields struct {
	name                string
	eventTime           metav1.MicroTime
	first, last         metav1.Time
	count               int32
	series              *eventsv1.EventSeries
	involved            corev1.ObjectReference
	typ, reason         string
	source              corev1.EventSource
	reportingController string
	reportingInstance   string
	message             string
}

func eventCells(e eventFields, opts Options) []interface{} {
	now := opts.Now
	first := age(e.first, now)
	if e.first.IsZero() {
		first = microAge(e.eventTime, now)
	}
	last := age(e.last, now)
	if e.last.IsZero() {
		last = first
	}
	count := e.count
	if e.series != nil {
		last = microAge(e.series.LastObservedTime, now)
		count = e.series.Count
	} else if count == 0 {
		// Singleton events of the new API have no count.
		count = 1
	}
	target := strings.ToLower(e.involved.Kind)
	if e.involved.Name != "" {
		target = fmt.Sprintf("%s/%s", target, e.involved.Name)
	}
	component := firstNonEmpty(e.source.Component, e.reportingController)
	instance := firstNonEmpty(e.source.Host, e.reportingInstance)
	source := component
	if instance != "" {
		source = component + ", " + instance
	}
	return []interface{}{
		last, e.typ, e.reason, target, e.involved.FieldPath, source,
		strings.TrimSpace(e.message), first, int64(count), e.name,
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

var eventPrinter = NewPrinter(eventColumns, func(obj *corev1.Event, opts Options) ([]interface{}, error) {
	e := eventFields{
		name:                obj.Name,
		eventTime:           obj.EventTime,
		first:               obj.FirstTimestamp,
		last:                obj.LastTimestamp,
		count:               obj.Count,
		involved:            obj.InvolvedObject,
		typ:                 obj.Type,
		reason:              obj.Reason,
		source:              obj.Source,
		reportingController: obj.ReportingController,
		reportingInstance:   obj.ReportingInstance,
		message:             obj.Message,
	}
	if obj.Series != nil {
		e.series = &eventsv1.EventSeries{Count: obj.Series.Count, LastObservedTime: obj.Series.LastObservedTime}
	}
	return eventCells(e, opts), nil
})

var eventsV1Printer = NewPrinter(eventColumns, func(obj *eventsv1.Event, opts Options) ([]interface{}, error) {
	return eventCells(eventFields{
		name:                obj.Name,
		eventTime:           obj.EventTime,
		first:               obj.DeprecatedFirstTimestamp,
		last:                obj.DeprecatedLastTimestamp,
		count:               obj.DeprecatedCount,
		series:              obj.Series,
		involved:            obj.Regarding,
		typ:                 obj.Type,
		reason:              obj.Reason,
		source:              obj.DeprecatedSource,
		reportingController: obj.ReportingController,
		reportingInstance:   obj.ReportingInstance,
		message:             obj.Note,
	}, opts), nil
})
