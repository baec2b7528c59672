// Package customresource holds what the API server needs to serve the
// objects of a CustomResourceDefinition: one Version per served version,
// with the version's schema turned into the forms the server uses
// (structural, for pruning and defaulting; OpenAPI, for validation,
// `kubectl explain` and server-side apply), a Strategy (status and
// generation rules as upstream's customresource strategy has them), the
// Table of its additionalPrinterColumns, and the storage codec that keeps
// every object in the storage version.
//
// Objects are *unstructured.Unstructured. Versions convert with strategy
// None: only apiVersion changes, as upstream does without a webhook.
//
// The CRD object's own rules (names, versions, schema structure) are in
// Validate; the API server (server/apiserver/crd.go) registers Versions as
// CRDs come and go. The package imports only the light parts of
// k8s.io/apiextensions-apiserver (the types, the structural schema and
// pruning) and validates values with kube-openapi's validator: upstream's
// validation package brings CEL and k8s.io/apiserver, which would double
// the cost of a new binary's start for rules labs do not use
// (x-kubernetes-validations are refused).
package customresource

import (
	"encoding/json"
	"fmt"
	"math"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// Schema is one version's openAPIV3Schema in the forms the server uses.
type Schema struct {
	// Structural drives pruning and defaulting.
	Structural *structuralschema.Structural
	// OpenAPI is the schema as kube-openapi reads it (with descriptions),
	// for validation, the OpenAPI documents and server-side apply.
	OpenAPI   *spec.Schema
	validator *validate.SchemaValidator
}

// NewSchema converts a CRD version's schema. It fails on a schema that is
// not structural (ValidateCRD reports those with their fields first).
func NewSchema(props *apiextensionsv1.JSONSchemaProps) (*Schema, error) {
	if props == nil {
		return nil, fmt.Errorf("no schema")
	}
	structural, err := newStructural(props)
	if err != nil {
		return nil, err
	}
	oa, err := openAPISchema(props)
	if err != nil {
		return nil, err
	}
	return &Schema{
		Structural: structural,
		OpenAPI:    oa,
		validator:  validate.NewSchemaValidator(oa, nil, "", strfmt.Default),
	}, nil
}

// newStructural is the structural form of a CRD version's schema.
func newStructural(props *apiextensionsv1.JSONSchemaProps) (*structuralschema.Structural, error) {
	internal := new(apiextensions.JSONSchemaProps)
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(props, internal, nil); err != nil {
		return nil, fmt.Errorf("converting the schema: %w", err)
	}
	s, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("the schema is not structural: %w", err)
	}
	return s, nil
}

// openAPISchema turns the CRD's schema into kube-openapi's: the JSON forms
// are the same (x-kubernetes-* become extensions), except that
// x-kubernetes-int-or-string needs an anyOf for the validator to accept
// both, as upstream's conversion adds.
func openAPISchema(props *apiextensionsv1.JSONSchemaProps) (*spec.Schema, error) {
	data, err := json.Marshal(props)
	if err != nil {
		return nil, fmt.Errorf("encoding the schema: %w", err)
	}
	out := new(spec.Schema)
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	intOrString(out)
	return out, nil
}

func intOrString(s *spec.Schema) {
	if s == nil {
		return
	}
	if v, ok := s.Extensions.GetBool("x-kubernetes-int-or-string"); ok && v && len(s.AnyOf) == 0 && len(s.Type) == 0 {
		s.AnyOf = []spec.Schema{{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"integer"}}},
			{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"}}}}
	}
	for k, p := range s.Properties {
		intOrString(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		intOrString(s.Items.Schema)
		for i := range s.Items.Schemas {
			intOrString(&s.Items.Schemas[i])
		}
	}
	if s.AdditionalProperties != nil {
		intOrString(s.AdditionalProperties.Schema)
	}
	for _, list := range [][]spec.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for i := range list {
			intOrString(&list[i])
		}
	}
}

// applyDefaults sets the schema's defaults where obj (a JSON value as
// unstructured holds it) has no value, or null where null is not allowed,
// as upstream's structural defaulting does.
func applyDefaults(x any, s *structuralschema.Structural) {
	if s == nil {
		return
	}
	switch x := x.(type) {
	case map[string]any:
		for k, prop := range s.Properties {
			v, found := x[k]
			if prop.Default.Object != nil && (!found || (v == nil && !prop.Nullable)) {
				x[k] = jsonValue(runtime.DeepCopyJSONValue(prop.Default.Object))
			}
			if v, ok := x[k]; ok {
				applyDefaults(v, &prop)
			}
		}
		if ap := s.AdditionalProperties; ap != nil && ap.Structural != nil {
			for k, v := range x {
				if _, known := s.Properties[k]; !known {
					applyDefaults(v, ap.Structural)
				}
			}
		}
	case []any:
		for _, v := range x {
			applyDefaults(v, s.Items)
		}
	}
}

// jsonValue makes whole float64 numbers int64, as unstructured objects
// decoded from JSON hold them (defaults come through encoding/json).
func jsonValue(v any) any {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = jsonValue(e)
		}
	case []any:
		for i, e := range v {
			v[i] = jsonValue(e)
		}
	}
	return v
}
