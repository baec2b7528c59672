package apiserver

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"labctl/server/storage"
)

// genericStrategy is for kinds without a strategy of their own: no
// defaults, no validation beyond what every object gets (objectmeta.go),
// and the metadata.name and metadata.namespace fields.
type genericStrategy struct{}

func (genericStrategy) Default(runtime.Object)                                 {}
func (genericStrategy) PrepareForCreate(runtime.Object)                        {}
func (genericStrategy) PrepareForUpdate(obj, old runtime.Object)               {}
func (genericStrategy) PrepareForStatusUpdate(obj, old runtime.Object)         {}
func (genericStrategy) Validate(runtime.Object) field.ErrorList                { return nil }
func (genericStrategy) ValidateUpdate(obj, old runtime.Object) field.ErrorList { return nil }
func (genericStrategy) ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	return nil
}

func (genericStrategy) Fields(obj runtime.Object) fields.Set {
	_, f, _ := storage.DefaultAttrs(obj)
	return f
}

// attrsWith gives storage the labels and the strategy's fields.
func attrsWith(st Strategy) storage.AttrFunc {
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, err
		}
		return m.GetLabels(), st.Fields(obj), nil
	}
}
