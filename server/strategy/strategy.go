// Package strategy holds what the API server needs to know about each
// built-in kind beyond its Go type: defaulting, what a create or an update may
// not set, validation and the fields a field selector can match.
//
// Upstream Kubernetes keeps this in k8s.io/kubernetes (pkg/apis/*/v1
// defaults, pkg/apis/*/validation and pkg/registry/*/strategy.go), which is not
// a library. This package is labctl's own implementation of the same
// behaviour, written against the external (v1) types of k8s.io/api: defaults
// and messages follow upstream so that kubectl and the course material show
// what a real cluster shows.
//
// # How the server uses a strategy
//
// For a create, after decoding the body into the kind's Go type and filling
// metadata.namespace (from the URL), metadata.name (generateName),
// metadata.uid and metadata.creationTimestamp:
//
//	s.Default(obj)
//	s.PrepareForCreate(obj)
//	errs := s.Validate(obj)
//
// For an update of the main resource (old is the stored object):
//
//	s.Default(obj)
//	s.PrepareForUpdate(obj, old)
//	errs := s.ValidateUpdate(obj, old)
//
// and for an update through the /status subresource the same with
// PrepareForStatusUpdate and ValidateStatusUpdate. Fields gives the values
// a field selector (?fieldSelector=spec.nodeName=n1) is matched against.
//
// As upstream, system fields are filled before PrepareForCreate and a
// generateName is turned into a name before Validate (which requires a
// name): a Job's generated selector uses metadata.uid and metadata.name.
// The server also clears metadata.namespace of cluster-scoped kinds
// (Validate forbids it) and does what upstream does outside the strategies:
// allocating a Service's cluster IP and node ports, filling a
// CertificateSigningRequest's requesting user, admission (service account
// token volumes, default tolerations) and RBAC escalation checks.
//
// The methods panic when given an object of another type than the
// strategy's kind (a programming error in the caller); the Validate methods
// return an internal error instead.
package strategy

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy is what the API server needs to know about one kind beyond its Go type.
type Strategy interface {
	// Default fills in defaults as upstream's SetDefaults_* functions (and the
	// declarative +default markers) do for the v1 type.
	Default(obj runtime.Object)
	// PrepareForCreate resets what a client may not set on create (status for
	// kinds with a status subresource, generation = 1 where upstream tracks it).
	PrepareForCreate(obj runtime.Object)
	// PrepareForUpdate keeps fields a main-resource update may not change
	// (status) and bumps metadata.generation when the spec changed, for kinds
	// that track generation. metadata.generation is always carried over from
	// old first: clients cannot set it.
	PrepareForUpdate(obj, old runtime.Object)
	// PrepareForStatusUpdate keeps everything but status (and what upstream
	// keeps per kind, e.g. a Deployment's labels) on a /status update.
	PrepareForStatusUpdate(obj, old runtime.Object)
	// Validate, ValidateUpdate and ValidateStatusUpdate return every problem
	// as field errors with upstream's paths and messages.
	Validate(obj runtime.Object) field.ErrorList
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
	ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList
	// Fields returns the field-selector fields of obj: metadata.name and
	// metadata.namespace for every kind plus upstream's per-kind ones.
	Fields(obj runtime.Object) fields.Set
}

// For returns the strategy of a built-in kind.
func For(gvk schema.GroupVersionKind) (Strategy, bool) {
	s, ok := registry[gvk]
	if !ok {
		return nil, false
	}
	return s, true
}

// Kinds returns every kind that has a strategy, sorted by group, version and
// kind.
func Kinds() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(registry))
	for gvk := range registry {
		out = append(out, gvk)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Kind < b.Kind
	})
	return out
}

// NamespaceScoped tells whether objects of the kind live in a namespace. The
// second result is false for kinds without a strategy.
func NamespaceScoped(gvk schema.GroupVersionKind) (namespaced, ok bool) {
	s, ok := registry[gvk]
	if !ok {
		return false, false
	}
	return s.namespaced(), true
}

// registry maps each kind to its strategy; the kinds' files fill it in init.
var registry = map[schema.GroupVersionKind]registered{}

// registered is what the registry holds: a Strategy that also knows its scope.
type registered interface {
	Strategy
	namespaced() bool
}

func register(gvk schema.GroupVersionKind, s registered) {
	if _, dup := registry[gvk]; dup {
		panic(fmt.Sprintf("strategy: %v registered twice", gvk))
	}
	registry[gvk] = s
}

// kind implements Strategy for one Go type T from plain functions; nil
// functions do nothing (or find nothing to complain about).
type kind[T runtime.Object] struct {
	// clusterScoped is true for kinds without a namespace.
	clusterScoped bool

	defaults      func(T)
	prepareCreate func(T)
	prepareUpdate func(obj, old T)
	prepareStatus func(obj, old T)

	validate       func(T) field.ErrorList
	validateUpdate func(obj, old T) field.ErrorList
	validateStatus func(obj, old T) field.ErrorList

	// fields adds the kind's own field-selector fields to set, which already
	// holds metadata.name and metadata.namespace.
	fields func(obj T, set fields.Set)
}

func (k *kind[T]) namespaced() bool { return !k.clusterScoped }

// cast returns obj as T or panics: a strategy used for the wrong type is a bug.
func cast[T runtime.Object](obj runtime.Object) T {
	t, ok := obj.(T)
	if !ok {
		var want T
		panic(fmt.Sprintf("strategy: expected %T, got %T", want, obj))
	}
	return t
}

// castForValidation is cast for the Validate methods, which report a type
// mismatch as an internal error instead of panicking.
func castForValidation[T runtime.Object](obj runtime.Object) (T, *field.Error) {
	t, ok := obj.(T)
	if !ok {
		var want T
		return t, field.InternalError(nil, fmt.Errorf("strategy: expected %T, got %T", want, obj))
	}
	return t, nil
}

func (k *kind[T]) Default(obj runtime.Object) {
	t := cast[T](obj)
	if k.defaults != nil {
		k.defaults(t)
	}
}

func (k *kind[T]) PrepareForCreate(obj runtime.Object) {
	t := cast[T](obj)
	if k.prepareCreate != nil {
		k.prepareCreate(t)
	}
}

func (k *kind[T]) PrepareForUpdate(obj, old runtime.Object) {
	t, o := cast[T](obj), cast[T](old)
	keepGeneration(t, o)
	if k.prepareUpdate != nil {
		k.prepareUpdate(t, o)
	}
}

func (k *kind[T]) PrepareForStatusUpdate(obj, old runtime.Object) {
	t, o := cast[T](obj), cast[T](old)
	keepGeneration(t, o)
	if k.prepareStatus != nil {
		k.prepareStatus(t, o)
	}
}

func (k *kind[T]) Validate(obj runtime.Object) field.ErrorList {
	t, err := castForValidation[T](obj)
	if err != nil {
		return field.ErrorList{err}
	}
	if k.validate == nil {
		return nil
	}
	return dropNamespaceRequired(k.validate(t))
}

func (k *kind[T]) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	t, err := castForValidation[T](obj)
	if err != nil {
		return field.ErrorList{err}
	}
	o, err := castForValidation[T](old)
	if err != nil {
		return field.ErrorList{err}
	}
	if k.validateUpdate == nil {
		return nil
	}
	return dropNamespaceRequired(k.validateUpdate(t, o))
}

func (k *kind[T]) ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	t, err := castForValidation[T](obj)
	if err != nil {
		return field.ErrorList{err}
	}
	o, err := castForValidation[T](old)
	if err != nil {
		return field.ErrorList{err}
	}
	if k.validateStatus == nil {
		return validateMetaUpdateOnly(t, o)
	}
	return dropNamespaceRequired(k.validateStatus(t, o))
}

func (k *kind[T]) Fields(obj runtime.Object) fields.Set {
	t := cast[T](obj)
	set := fields.Set{}
	if m, err := meta.Accessor(t); err == nil {
		set["metadata.name"] = m.GetName()
		set["metadata.namespace"] = m.GetNamespace()
	}
	if k.fields != nil {
		k.fields(t, set)
	}
	return set
}

// keepGeneration carries metadata.generation over from the stored object:
// clients cannot set it, only the strategies bump it.
func keepGeneration(obj, old runtime.Object) {
	n, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	o, err := meta.Accessor(old)
	if err != nil {
		return
	}
	n.SetGeneration(o.GetGeneration())
}

// bumpGeneration increments obj's generation (already carried over from the
// old object) when changed is true.
func bumpGeneration(obj runtime.Object, changed bool) {
	if !changed {
		return
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetGeneration(m.GetGeneration() + 1)
	}
}

// dropNamespaceRequired removes "metadata.namespace: Required value": the
// server fills the namespace from the URL and reports a missing one itself.
func dropNamespaceRequired(errs field.ErrorList) field.ErrorList {
	out := errs[:0:0]
	for _, e := range errs {
		if e.Type == field.ErrorTypeRequired && e.Field == "metadata.namespace" {
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validateMetaUpdateOnly is the status-update validation of kinds without
// more to check.
func validateMetaUpdateOnly(obj, old runtime.Object) field.ErrorList {
	n, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	o, err := meta.Accessor(old)
	if err != nil {
		return nil
	}
	return validateObjectMetaAccessorUpdate(n, o)
}
