package strategy

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// want describes one expected field error: its type and path, and a piece
// of its detail when detail is not empty.
type want struct {
	typ    field.ErrorType
	field  string
	detail string
}

func req(f string) want          { return want{typ: field.ErrorTypeRequired, field: f} }
func inv(f string) want          { return want{typ: field.ErrorTypeInvalid, field: f} }
func invd(f, detail string) want { return want{typ: field.ErrorTypeInvalid, field: f, detail: detail} }
func unsup(f string) want        { return want{typ: field.ErrorTypeNotSupported, field: f} }
func forb(f string) want         { return want{typ: field.ErrorTypeForbidden, field: f} }
func forbd(f, detail string) want {
	return want{typ: field.ErrorTypeForbidden, field: f, detail: detail}
}
func dup(f string) want          { return want{typ: field.ErrorTypeDuplicate, field: f} }
func notFound(f string) want     { return want{typ: field.ErrorTypeNotFound, field: f} }
func tooLong(f string) want      { return want{typ: field.ErrorTypeTooLong, field: f} }
func reqd(f, detail string) want { return want{typ: field.ErrorTypeRequired, field: f, detail: detail} }

// checkErrs fails unless errs are exactly the wanted errors, in any order.
func checkErrs(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	remaining := append(field.ErrorList(nil), errs...)
	var missing []string
	for _, w := range wants {
		found := -1
		for i, e := range remaining {
			if e.Type == w.typ && e.Field == w.field && strings.Contains(e.Detail, w.detail) {
				found = i
				break
			}
		}
		if found < 0 {
			missing = append(missing, fmt.Sprintf("%s %s (%q)", w.typ, w.field, w.detail))
			continue
		}
		remaining = append(remaining[:found], remaining[found+1:]...)
	}
	if len(missing) > 0 || len(remaining) > 0 {
		var extra []string
		for _, e := range remaining {
			extra = append(extra, e.Error())
		}
		sort.Strings(extra)
		t.Errorf("errors differ\nmissing: %s\nunexpected: %s", strings.Join(missing, "; "), strings.Join(extra, "\n  "))
	}
}

// mustFor returns the strategy of a kind or fails the test.
func mustFor(t *testing.T, gvk schema.GroupVersionKind) Strategy {
	t.Helper()
	s, ok := For(gvk)
	if !ok {
		t.Fatalf("no strategy for %v", gvk)
	}
	return s
}

// create runs what the server runs on a create and returns the errors.
func create(t *testing.T, gvk schema.GroupVersionKind, obj runtime.Object) field.ErrorList {
	t.Helper()
	s := mustFor(t, gvk)
	s.Default(obj)
	s.PrepareForCreate(obj)
	return s.Validate(obj)
}

// update runs what the server runs on an update and returns the errors.
func update(t *testing.T, gvk schema.GroupVersionKind, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	s := mustFor(t, gvk)
	s.Default(obj)
	s.PrepareForUpdate(obj, old)
	return s.ValidateUpdate(obj, old)
}
