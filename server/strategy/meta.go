package strategy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Messages shared by several kinds, worded as upstream words them.
const (
	fieldImmutableErrorMsg = apivalidation.FieldImmutableErrorMsg // "field is immutable"
	isNegativeErrorMsg     = apivalidation.IsNegativeErrorMsg     // "must be greater than or equal to 0"
	isNotPositiveErrorMsg  = "must be greater than zero"
	isNotIntegerErrorMsg   = "must be an integer"
)

var (
	metadataPath = field.NewPath("metadata")
	specPath     = field.NewPath("spec")
	statusPath   = field.NewPath("status")
)

// Name rules, per kind as upstream has them.
var (
	nameIsDNSSubdomain = apivalidation.NameIsDNSSubdomain
	nameIsDNSLabel     = apivalidation.NameIsDNSLabel
	nameIsDNS1035Label = apivalidation.NameIsDNS1035Label
	nameIsPathSegment  = pathSegmentName
)

// pathSegmentName is the minimal rule of RBAC and CSR names: the name must be
// usable as one segment of a URL path.
func pathSegmentName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// validateObjectMeta validates an object's metadata on create: name (or
// generateName) by nameFn, namespace, labels, annotations (and their total
// size), owner references and finalizers.
func validateObjectMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	allErrs := apivalidation.ValidateObjectMeta(m, namespaced, nameFn, metadataPath)
	for i := range m.Finalizers {
		allErrs = append(allErrs, validateKubeFinalizerName(m.Finalizers[i], metadataPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

// validateObjectMetaUpdate validates the metadata of an update: what may not
// change (name, namespace, uid, creationTimestamp, ...), a resourceVersion is
// given, generation does not go back, no finalizers are added to an object
// being deleted.
func validateObjectMetaUpdate(n, o *metav1.ObjectMeta) field.ErrorList {
	allErrs := apivalidation.ValidateObjectMetaUpdate(n, o, metadataPath)
	for i := range n.Finalizers {
		allErrs = append(allErrs, validateKubeFinalizerName(n.Finalizers[i], metadataPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

func validateObjectMetaAccessorUpdate(n, o metav1.Object) field.ErrorList {
	allErrs := apivalidation.ValidateObjectMetaAccessorUpdate(n, o, metadataPath)
	for i, f := range n.GetFinalizers() {
		allErrs = append(allErrs, validateKubeFinalizerName(f, metadataPath.Child("finalizers").Index(i))...)
	}
	return allErrs
}

// standardFinalizers are the finalizer names that need no domain prefix.
var standardFinalizers = map[string]bool{
	string(v1.FinalizerKubernetes):   true,
	metav1.FinalizerOrphanDependents: true,
	metav1.FinalizerDeleteDependents: true,
}

func validateKubeFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	if !strings.Contains(name, "/") && !standardFinalizers[name] {
		return field.ErrorList{field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified")}
	}
	return nil
}

// validateFinalizerName validates a namespace's spec.finalizers entry.
func validateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	allErrs := apivalidation.ValidateFinalizerName(name, fldPath)
	return append(allErrs, validateKubeFinalizerName(name, fldPath)...)
}

// validateTemplateObjectMeta validates the metadata embedded in a template
// that may only carry labels and annotations (a PVC template).
func validateTemplateObjectMeta(m *metav1.ObjectMeta, fldPath *field.Path) field.ErrorList {
	allErrs := apivalidation.ValidateAnnotations(m.Annotations, fldPath.Child("annotations"))
	allErrs = append(allErrs, metav1validation.ValidateLabels(m.Labels, fldPath.Child("labels"))...)
	rest := m.DeepCopy()
	rest.Labels, rest.Annotations = nil, nil
	if !apiequality.Semantic.DeepEqual(*rest, metav1.ObjectMeta{}) {
		for _, f := range setMetaFields(rest) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(f), "cannot be set"))
		}
	}
	return allErrs
}

// setMetaFields names the set fields of m (JSON names), for the "cannot be
// set" errors of template metadata.
func setMetaFields(m *metav1.ObjectMeta) []string {
	b, err := json.Marshal(m)
	if err != nil {
		return []string{"metadata"}
	}
	var fieldsSet map[string]any
	if err := json.Unmarshal(b, &fieldsSet); err != nil {
		return []string{"metadata"}
	}
	out := make([]string, 0, len(fieldsSet))
	for k := range fieldsSet {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validateNonnegative(value int64, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(value, fldPath)
}

func validateImmutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// validateDNS1123Label reports each problem of value as a DNS-1123 label.
func validateDNS1123Label(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

func validateDNS1123Subdomain(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

func validateQualifiedName(value string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsQualifiedName(value) {
		allErrs = append(allErrs, field.Invalid(fldPath, value, msg))
	}
	return allErrs
}

// validateName reports each problem nameFn finds in name at fldPath.
func validateName(name string, nameFn apivalidation.ValidateNameFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range nameFn(name, false) {
		allErrs = append(allErrs, field.Invalid(fldPath, name, msg))
	}
	return allErrs
}

// validateLabelsAt validates a label map at fldPath.
var validateLabelsAt = metav1validation.ValidateLabels

func validateLabelSelector(ps *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(ps, metav1validation.LabelSelectorValidationOptions{}, fldPath)
}

// isDecremented tells whether a counter went down (or away).
func isDecremented(update, old *int32) bool {
	if update == nil && old != nil {
		return true
	}
	if update == nil || old == nil {
		return false
	}
	return *update < *old
}

// specDiff describes how b differs from a, one changed JSON line per line of
// output ("-" for a's, "+" for b's), as a hint in "may not change" errors.
func specDiff(a, b any) string {
	al, bl := jsonLines(a), jsonLines(b)
	// Longest common subsequence over lines; specs are small.
	n, m := len(al), len(bl)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&sb, "+ %s\n", strings.TrimSpace(bl[j]))
			j++
		default:
			fmt.Fprintf(&sb, "- %s\n", strings.TrimSpace(al[i]))
			i++
		}
	}
	return sb.String()
}

func jsonLines(v any) []string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []string{fmt.Sprintf("%#v", v)}
	}
	return strings.Split(string(b), "\n")
}
