package apiserver

import (
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxAnnotationsBytes is upstream's limit on all annotations of an object.
const maxAnnotationsBytes = 256 << 10

// validateObjectMeta checks what every object's metadata must satisfy,
// with upstream's messages: a name (or generateName) that can be a path
// segment and, for kinds without their own rules, a DNS subdomain; valid
// labels; annotations with valid keys under the size limit.
func validateObjectMeta(r *Resource, m metav1.Object) field.ErrorList {
	var errs field.ErrorList
	fp := field.NewPath("metadata")
	switch name := m.GetName(); {
	case name == "" && m.GetGenerateName() == "":
		errs = append(errs, field.Required(fp.Child("name"), "name or generateName is required"))
	case name != "":
		for _, msg := range path.IsValidPathSegmentName(name) {
			errs = append(errs, field.Invalid(fp.Child("name"), name, msg))
		}
		if _, generic := r.strategy.(genericStrategy); generic {
			for _, msg := range validation.IsDNS1123Subdomain(name) {
				errs = append(errs, field.Invalid(fp.Child("name"), name, msg))
			}
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(m.GetLabels(), fp.Child("labels"))...)
	total := 0
	for k, v := range m.GetAnnotations() {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(fp.Child("annotations"), k, msg))
		}
		total += len(k) + len(v)
	}
	if total > maxAnnotationsBytes {
		errs = append(errs, field.TooLong(fp.Child("annotations"), "", maxAnnotationsBytes))
	}
	return errs
}

func fieldErrors(path, msg string) field.ErrorList {
	return field.ErrorList{field.Forbidden(field.NewPath(path), msg)}
}
