package openapi

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Server-side apply and metadata.managedFields need the structure of every
// kind they touch: which lists are keyed by what (containers by name,
// ports by containerPort and protocol), which maps are atomic, which
// fields exist. kube-apiserver types objects with a
// managedfields.TypeConverter built from the OpenAPI definitions it
// serves; TypeConverter does the same from the definitions of this
// package (the generated ones unless Config.Definitions says otherwise),
// so that apply merges as the published documents (and kubectl explain)
// describe. CustomTypeConverter does it for custom resources from their
// CRD's schemas.
//
// The converter of every built-in kind takes some 50 ms to build,
// allocating about 12 MB on the way and keeping about 1 MB (see
// BenchmarkTypeConverter and TestTypeConverterCost), so the API server
// builds it when the first write needs it rather than at start-up.

// TypeConverter returns the type converter of the kinds of scheme that
// have a definition, named and tagged with x-kubernetes-group-version-kind
// as the documents name them. kinds limits it to those group-version-kinds
// and what they refer to (a smaller schema); nil means every kind. A kind
// of kinds the scheme does not know, or without a definition, is refused.
func (c Config) TypeConverter(scheme *runtime.Scheme, kinds []schema.GroupVersionKind) (managedfields.TypeConverter, error) {
	if scheme == nil {
		return nil, fmt.Errorf("openapi: nil scheme")
	}
	n := newNamer(scheme, nil)
	m := c.newModels(n)
	if kinds == nil {
		for key := range m.defs {
			if len(n.gvks[definitionName(key)]) > 0 {
				if err := m.add(key); err != nil {
					return nil, err
				}
			}
		}
	} else {
		known := scheme.AllKnownTypes()
		for _, gvk := range kinds {
			t, ok := known[gvk]
			if !ok {
				return nil, fmt.Errorf("openapi: type converter: kind %v is not in the scheme", gvk)
			}
			if err := m.add(typeKey(t)); err != nil {
				return nil, fmt.Errorf("openapi: type converter: %v: %w", gvk, err)
			}
		}
	}
	tc, err := managedfields.NewTypeConverter(m.models, false)
	if err != nil {
		return nil, fmt.Errorf("openapi: type converter: %w", err)
	}
	return tc, nil
}

// NewTypeConverter is Config{}.TypeConverter.
func NewTypeConverter(scheme *runtime.Scheme, kinds []schema.GroupVersionKind) (managedfields.TypeConverter, error) {
	return Config{}.TypeConverter(scheme, kinds)
}

// CustomTypeConverter returns the type converter of a custom resource:
// schemas holds the schema of each of its served versions (a CRD
// version's openAPIV3Schema as kube-openapi reads it; nil: anything goes),
// to which apiVersion, kind and metadata (ObjectMeta) are added as
// upstream's CRD handler adds them. preserveUnknownFields keeps fields
// the schemas do not declare, everywhere (a schema's own
// x-kubernetes-preserve-unknown-fields applies below it either way). Give
// every served version: the managedFields entries of a version the
// converter does not know are dropped when a write in another version
// needs them converted.
func (c Config) CustomTypeConverter(schemas map[schema.GroupVersionKind]*spec.Schema, preserveUnknownFields bool) (managedfields.TypeConverter, error) {
	m := c.newModels(nil)
	if err := m.add(keyObjectMeta); err != nil {
		return nil, err
	}
	for gvk, in := range schemas {
		var s spec.Schema
		if in != nil {
			s = *in // shallow: the maps changed below are copied
		} else {
			s.Extensions = spec.Extensions{"x-kubernetes-preserve-unknown-fields": true}
		}
		if len(s.Type) == 0 {
			s.Type = []string{"object"}
		}
		props := make(map[string]spec.Schema, len(s.Properties)+3)
		for k, v := range s.Properties {
			props[k] = v
		}
		props["apiVersion"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
		props["kind"] = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
		props["metadata"] = spec.Schema{SchemaProps: spec.SchemaProps{Ref: m.ref(keyObjectMeta)}}
		s.Properties = props
		s.Extensions = withGVKs(s.Extensions, []gvkValue{toGVKValue(gvk)})
		m.models[customKey(gvk)] = &s
	}
	tc, err := managedfields.NewTypeConverter(m.models, preserveUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("openapi: custom type converter: %w", err)
	}
	return tc, nil
}

// NewCustomTypeConverter is Config{}.CustomTypeConverter.
func NewCustomTypeConverter(schemas map[schema.GroupVersionKind]*spec.Schema, preserveUnknownFields bool) (managedfields.TypeConverter, error) {
	return Config{}.CustomTypeConverter(schemas, preserveUnknownFields)
}

// typeModels collects the definitions a type converter is built from,
// keyed by their document names; references point at those names (the
// converter resolves a reference by its last path segment).
type typeModels struct {
	defs   map[string]common.OpenAPIDefinition
	namer  *namer // tags the kinds' definitions; nil: no tags
	ref    common.ReferenceCallback
	models map[string]*spec.Schema
}

func (c Config) newModels(n *namer) *typeModels {
	defsFunc := c.Definitions
	if defsFunc == nil {
		defsFunc = GetOpenAPIDefinitions
	}
	ref := func(key string) spec.Ref {
		return spec.MustCreateRef("#/definitions/" + common.EscapeJsonPointer(definitionName(key)))
	}
	return &typeModels{defs: defsFunc(ref), namer: n, ref: ref, models: map[string]*spec.Schema{}}
}

// add adds the definition key and those it depends on.
func (m *typeModels) add(key string) error {
	name := definitionName(key)
	if _, done := m.models[name]; done {
		return nil
	}
	def, ok := m.defs[key]
	if !ok {
		return fmt.Errorf("openapi: type converter: no OpenAPI definition %q", key)
	}
	s := def.Schema // ours: the definitions function allocates them on every call
	if m.namer != nil {
		if gvks := m.namer.gvks[name]; len(gvks) > 0 {
			s.Extensions = withGVKs(s.Extensions, gvks)
		}
	}
	m.models[name] = &s
	for _, dep := range def.Dependencies {
		if err := m.add(dep); err != nil {
			return err
		}
	}
	return nil
}

// withGVKs returns a copy of ext with x-kubernetes-group-version-kind set
// to gvks in the form managedfields reads, as JSON would decode it: a list
// of objects, not the typed values the documents marshal.
func withGVKs(ext spec.Extensions, gvks []gvkValue) spec.Extensions {
	list := make([]interface{}, 0, len(gvks))
	for _, g := range gvks {
		list = append(list, map[string]interface{}{"group": g.Group, "version": g.Version, "kind": g.Kind})
	}
	out := make(spec.Extensions, len(ext)+1)
	for k, v := range ext {
		out[k] = v
	}
	out[extGVK] = list
	return out
}
