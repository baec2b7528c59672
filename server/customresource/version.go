package customresource

import (
	"fmt"
	"io"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Version is one served version of a CRD.
type Version struct {
	// GVK is the served group, version and kind; StorageVersion the
	// version objects are kept in.
	GVK            schema.GroupVersionKind
	StorageVersion string
	// Plural, Singular, ShortNames, Categories and Namespaced are the
	// CRD's names and scope.
	Plural, Singular       string
	ShortNames, Categories []string
	Namespaced             bool
	// ListKind is the kind of lists (CronTabList).
	ListKind string
	// Schema is the version's schema (nil: none, everything preserved).
	Schema *Schema
	// Status and Scale are the subresources the version has.
	Status bool
	Scale  *apiextensionsv1.CustomResourceSubresourceScale
	// Deprecated and DeprecationWarning: served with a warning.
	Deprecated         bool
	DeprecationWarning string

	table *tableConvertor
}

// NewVersion returns the served version name of crd, which must have
// passed ValidateCRD.
func NewVersion(crd *apiextensionsv1.CustomResourceDefinition, name string) (*Version, error) {
	var ver *apiextensionsv1.CustomResourceDefinitionVersion
	storage := ""
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if v.Name == name {
			ver = v
		}
		if v.Storage {
			storage = v.Name
		}
	}
	if ver == nil {
		return nil, fmt.Errorf("%s has no version %q", crd.Name, name)
	}
	names := crd.Status.AcceptedNames
	if names.Kind == "" {
		names = crd.Spec.Names
	}
	v := &Version{
		GVK:            schema.GroupVersionKind{Group: crd.Spec.Group, Version: name, Kind: names.Kind},
		StorageVersion: storage,
		Plural:         names.Plural,
		Singular:       names.Singular,
		ShortNames:     names.ShortNames,
		Categories:     names.Categories,
		Namespaced:     crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
		ListKind:       names.ListKind,
		Deprecated:     ver.Deprecated,
	}
	if v.ListKind == "" {
		v.ListKind = v.GVK.Kind + "List"
	}
	if v.Singular == "" {
		v.Singular = strings.ToLower(v.GVK.Kind)
	}
	if ver.DeprecationWarning != nil {
		v.DeprecationWarning = *ver.DeprecationWarning
	} else if ver.Deprecated {
		v.DeprecationWarning = fmt.Sprintf("%s/%s %s is deprecated", crd.Spec.Group, name, v.GVK.Kind)
	}
	if ver.Schema != nil && ver.Schema.OpenAPIV3Schema != nil {
		s, err := NewSchema(ver.Schema.OpenAPIV3Schema)
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", name, err)
		}
		v.Schema = s
	}
	if sub := ver.Subresources; sub != nil {
		v.Status = sub.Status != nil
		v.Scale = sub.Scale
	}
	t, err := newTableConvertor(ver.AdditionalPrinterColumns)
	if err != nil {
		return nil, fmt.Errorf("version %s: %w", name, err)
	}
	v.table = t
	return v, nil
}

// New returns an empty object of the version's kind.
func (v *Version) New() runtime.Object {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(v.GVK)
	return u
}

// NewList returns an empty list of the version's kind.
func (v *Version) NewList() runtime.Object {
	l := &unstructured.UnstructuredList{Object: map[string]any{}}
	l.SetGroupVersionKind(v.GVK.GroupVersion().WithKind(v.ListKind))
	return l
}

// Prune removes the fields the schema does not declare (unless it
// preserves unknown fields there) and returns their paths, sorted, as
// upstream reports them to fieldValidation.
func (v *Version) Prune(obj runtime.Object) []string {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || v.Schema == nil {
		return nil
	}
	return pruning.PruneWithOptions(u.Object, v.Schema.Structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
}

// The Strategy methods (server/apiserver's Strategy).

// Default sets the schema's defaults.
func (v *Version) Default(obj runtime.Object) {
	if u, ok := obj.(*unstructured.Unstructured); ok && v.Schema != nil {
		applyDefaults(u.Object, v.Schema.Structural)
	}
}

// PrepareForCreate drops the status a client sent when status is a
// subresource, and starts the generation at 1.
func (v *Version) PrepareForCreate(obj runtime.Object) {
	u := obj.(*unstructured.Unstructured)
	if v.Status {
		delete(u.Object, "status")
	}
	u.SetGeneration(1)
}

// PrepareForUpdate keeps the status when it is a subresource and bumps
// the generation when anything but metadata (and that status) changed.
func (v *Version) PrepareForUpdate(obj, old runtime.Object) {
	u, o := obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)
	if v.Status {
		if st, ok := o.Object["status"]; ok {
			u.Object["status"] = runtime.DeepCopyJSONValue(st)
		} else {
			delete(u.Object, "status")
		}
	}
	u.SetGeneration(o.GetGeneration())
	if !apiequality.Semantic.DeepEqual(withoutMeta(u.Object, v.Status), withoutMeta(o.Object, v.Status)) {
		u.SetGeneration(o.GetGeneration() + 1)
	}
}

// withoutMeta is content without metadata (and status when it is a
// subresource), shallowly copied.
func withoutMeta(content map[string]any, status bool) map[string]any {
	out := make(map[string]any, len(content))
	for k, val := range content {
		if k == "metadata" || (status && k == "status") {
			continue
		}
		out[k] = val
	}
	return out
}

// PrepareForStatusUpdate keeps everything of old but the status (and the
// managedFields and resourceVersion the request carries), as upstream's
// status strategy does.
func (v *Version) PrepareForStatusUpdate(obj, old runtime.Object) {
	u, o := obj.(*unstructured.Unstructured), old.(*unstructured.Unstructured)
	status, hasStatus := u.Object["status"]
	managed, rv := u.GetManagedFields(), u.GetResourceVersion()
	u.Object = o.DeepCopy().Object
	u.SetManagedFields(managed)
	u.SetResourceVersion(rv)
	if hasStatus {
		u.Object["status"] = status
	} else {
		delete(u.Object, "status")
	}
}

// Validate checks a new object against the schema.
func (v *Version) Validate(obj runtime.Object) field.ErrorList {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("customresource: expected an unstructured object, got %T", obj))}
	}
	return append(v.validateTypeMeta(u), v.Schema.validate(u.Object)...)
}

// ValidateUpdate checks an updated object against the schema.
func (v *Version) ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	return v.Validate(obj)
}

// ValidateStatusUpdate checks an object after a status update.
func (v *Version) ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	return v.Validate(obj)
}

func (v *Version) validateTypeMeta(u *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	if u.GetAPIVersion() != v.GVK.GroupVersion().String() {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), u.GetAPIVersion(), "must be "+v.GVK.GroupVersion().String()))
	}
	if u.GetKind() != v.GVK.Kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), u.GetKind(), "must be "+v.GVK.Kind))
	}
	return errs
}

// Fields are metadata.name and metadata.namespace.
func (v *Version) Fields(obj runtime.Object) fields.Set {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fields.Set{"metadata.name": ""}
	}
	set := fields.Set{"metadata.name": u.GetName()}
	if v.Namespaced {
		set["metadata.namespace"] = u.GetNamespace()
	}
	return set
}

// Codec is the storage codec of the version: objects are written as JSON
// in the storage version and read back as this version.
func (v *Version) Codec() runtime.Codec {
	return storageCodec{storage: schema.GroupVersion{Group: v.GVK.Group, Version: v.StorageVersion}.String(), served: v.GVK.GroupVersion().String()}
}

type storageCodec struct{ storage, served string }

func (c storageCodec) Encode(obj runtime.Object, w io.Writer) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("customresource: cannot store %T", obj)
	}
	stored := make(map[string]any, len(u.Object))
	for k, val := range u.Object {
		stored[k] = val
	}
	stored["apiVersion"] = c.storage
	return unstructured.UnstructuredJSONScheme.Encode(&unstructured.Unstructured{Object: stored}, w)
}

func (c storageCodec) Decode(data []byte, gvk *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	u, ok := into.(*unstructured.Unstructured)
	if !ok {
		u = &unstructured.Unstructured{}
	}
	if _, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, u); err != nil {
		return nil, nil, err
	}
	u.SetAPIVersion(c.served)
	got := u.GroupVersionKind()
	return u, &got, nil
}

func (c storageCodec) Identifier() runtime.Identifier { return "labctl-customresource-json" }
