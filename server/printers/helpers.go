package printers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Cell texts kubectl users know.
const (
	none    = "<none>"
	unknown = "<unknown>"
	unset   = "<unset>"
	pending = "<pending>"
)

// objectMetaDoc holds the descriptions of the metadata fields, which the
// Name and Age columns of every kind use.
var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

// Columns shared by many kinds.
var (
	nameColumn       = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
	ageColumn        = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc["creationTimestamp"]}
	containersColumn = metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."}
	imagesColumn     = metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."}
)

// age is the human-readable time elapsed from t to now, "<unknown>" for a
// zero time.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// microAge is age for a MicroTime.
func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells lays the names and the images of containers out on one
// line each, comma separated.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	i := make([]string, len(containers))
	for k, c := range containers {
		n[k] = c.Name
		i[k] = c.Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// boolPtr prints an optional bool as kubectl does: True, False or <unset>.
func boolPtr(b *bool) string {
	if b == nil {
		return unset
	}
	if *b {
		return "True"
	}
	return "False"
}

// listWithMore joins up to max entries and tells how many were left out; an
// empty list is "<unset>".
func listWithMore(list []string, more bool, count, max int) string {
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		ret = unset
	}
	return ret
}

// replicas is the value of an optional replica count after the v1 defaulting
// of the workload kinds (1 when unset).
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
