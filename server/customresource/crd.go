package customresource

import (
	"maps"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/jsonpath"
)

// CleanupFinalizer holds a deleted CRD until its objects are gone.
const CleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io"

// ValidateCRD checks a CustomResourceDefinition as upstream's validation
// does for what labctl serves: names, scope, versions (exactly one stored),
// structural schemas, subresources and printer columns, with upstream's
// field paths and messages. Conversion webhooks and CEL rules
// (x-kubernetes-validations) are refused as unsupported.
func ValidateCRD(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	var errs field.ErrorList
	spec := &crd.Spec
	specPath := field.NewPath("spec")
	if want := spec.Names.Plural + "." + spec.Group; crd.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), crd.Name, `must be spec.names.plural+"."+spec.group`))
	}
	switch {
	case spec.Group == "":
		errs = append(errs, field.Required(specPath.Child("group"), ""))
	case len(validation.IsDNS1123Subdomain(spec.Group)) > 0:
		errs = append(errs, field.Invalid(specPath.Child("group"), spec.Group, strings.Join(validation.IsDNS1123Subdomain(spec.Group), ",")))
	case !strings.Contains(spec.Group, "."):
		errs = append(errs, field.Invalid(specPath.Child("group"), spec.Group, "should be a domain with at least one dot"))
	}
	switch spec.Scope {
	case apiextensionsv1.ClusterScoped, apiextensionsv1.NamespaceScoped:
	case "":
		errs = append(errs, field.Required(specPath.Child("scope"), ""))
	default:
		errs = append(errs, field.NotSupported(specPath.Child("scope"), spec.Scope, []string{string(apiextensionsv1.ClusterScoped), string(apiextensionsv1.NamespaceScoped)}))
	}
	errs = append(errs, validateNames(&spec.Names, specPath.Child("names"))...)
	if spec.PreserveUnknownFields {
		errs = append(errs, field.Invalid(specPath.Child("preserveUnknownFields"), true, "must be false"))
	}
	if c := spec.Conversion; c != nil && c.Strategy != apiextensionsv1.NoneConverter {
		if c.Strategy == apiextensionsv1.WebhookConverter {
			errs = append(errs, field.Forbidden(specPath.Child("conversion", "strategy"), "conversion webhooks are not supported by labctl: use strategy None"))
		} else {
			errs = append(errs, field.NotSupported(specPath.Child("conversion", "strategy"), c.Strategy, []string{string(apiextensionsv1.NoneConverter), string(apiextensionsv1.WebhookConverter)}))
		}
	}

	versionsPath := specPath.Child("versions")
	if len(spec.Versions) == 0 {
		errs = append(errs, field.Required(versionsPath, "must have exactly one version marked as storage version"))
	}
	storage, seen := 0, map[string]bool{}
	for i := range spec.Versions {
		v := &spec.Versions[i]
		p := versionsPath.Index(i)
		if v.Storage {
			storage++
		}
		if seen[v.Name] {
			errs = append(errs, field.Invalid(versionsPath, v.Name, "must contain unique version names"))
		}
		seen[v.Name] = true
		if msgs := validation.IsDNS1035Label(v.Name); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("name"), v.Name, strings.Join(msgs, ",")))
		}
		errs = append(errs, validateVersion(v, p)...)
	}
	if len(spec.Versions) > 0 && storage != 1 {
		errs = append(errs, field.Invalid(versionsPath, len(spec.Versions), "must have exactly one version marked as storage version"))
	}
	return errs
}

func validateNames(n *apiextensionsv1.CustomResourceDefinitionNames, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	label := func(path *field.Path, value string, required bool) {
		if value == "" {
			if required {
				errs = append(errs, field.Required(path, ""))
			}
			return
		}
		if msgs := validation.IsDNS1035Label(value); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path, value, strings.Join(msgs, ",")))
		}
	}
	kind := func(path *field.Path, value string) {
		if value == "" {
			errs = append(errs, field.Required(path, ""))
			return
		}
		if msgs := validation.IsDNS1035Label(strings.ToLower(value)); len(msgs) > 0 {
			errs = append(errs, field.Invalid(path, value, "may have mixed case, but should otherwise match: "+strings.Join(msgs, ",")))
		}
	}
	label(p.Child("plural"), n.Plural, true)
	label(p.Child("singular"), n.Singular, true)
	kind(p.Child("kind"), n.Kind)
	kind(p.Child("listKind"), n.ListKind)
	if n.Kind != "" && n.Kind == n.ListKind {
		errs = append(errs, field.Invalid(p.Child("listKind"), n.ListKind, "kind and listKind may not be the same"))
	}
	for i, s := range n.ShortNames {
		label(p.Child("shortNames").Index(i), s, true)
	}
	for i, c := range n.Categories {
		label(p.Child("categories").Index(i), c, true)
	}
	return errs
}

func validateVersion(v *apiextensionsv1.CustomResourceDefinitionVersion, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	schemaPath := p.Child("schema", "openAPIV3Schema")
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		errs = append(errs, field.Required(schemaPath, "schemas are required"))
	} else {
		errs = append(errs, validateSchema(v.Schema.OpenAPIV3Schema, schemaPath)...)
	}
	if sub := v.Subresources; sub != nil && sub.Scale != nil {
		sp := p.Child("subresources", "scale")
		for _, c := range []struct{ name, path, under string }{
			{"specReplicasPath", sub.Scale.SpecReplicasPath, ".spec"},
			{"statusReplicasPath", sub.Scale.StatusReplicasPath, ".status"},
		} {
			if c.path == "" {
				errs = append(errs, field.Required(sp.Child(c.name), ""))
			} else if !strings.HasPrefix(c.path, c.under+".") {
				errs = append(errs, field.Invalid(sp.Child(c.name), c.path, "should be a json path under "+c.under))
			}
		}
		if sel := sub.Scale.LabelSelectorPath; sel != nil && !strings.HasPrefix(*sel, ".spec.") && !strings.HasPrefix(*sel, ".status.") {
			errs = append(errs, field.Invalid(sp.Child("labelSelectorPath"), *sel, "should be a json path under either .spec or .status"))
		}
	}
	for i, c := range v.AdditionalPrinterColumns {
		cp := p.Child("additionalPrinterColumns").Index(i)
		if c.Name == "" {
			errs = append(errs, field.Required(cp.Child("name"), ""))
		}
		switch c.Type {
		case "integer", "number", "string", "boolean", "date":
		case "":
			errs = append(errs, field.Required(cp.Child("type"), ""))
		default:
			errs = append(errs, field.NotSupported(cp.Child("type"), c.Type, []string{"boolean", "date", "integer", "number", "string"}))
		}
		if c.JSONPath == "" {
			errs = append(errs, field.Required(cp.Child("jsonPath"), ""))
		} else if err := jsonpath.New(c.Name).Parse("{" + c.JSONPath + "}"); err != nil {
			errs = append(errs, field.Invalid(cp.Child("jsonPath"), c.JSONPath, "must be a simple json path"))
		}
	}
	return errs
}

// validateSchema checks that a version's schema is structural, as
// upstream requires of apiextensions.k8s.io/v1 CRDs.
func validateSchema(props *apiextensionsv1.JSONSchemaProps, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if rules := findCEL(props, p); len(rules) > 0 {
		for _, rp := range rules {
			errs = append(errs, field.Forbidden(rp, "x-kubernetes-validations (CEL rules) are not supported by labctl"))
		}
	}
	s, err := newStructural(props)
	if err != nil {
		return append(errs, field.Invalid(p, "", err.Error()))
	}
	errs = append(errs, structuralschema.ValidateStructural(p, s)...)
	if props.Type != "object" {
		errs = append(errs, field.Invalid(p.Child("type"), props.Type, "must be object at the root"))
	}
	return errs
}

// findCEL returns the paths of x-kubernetes-validations in the schema.
func findCEL(s *apiextensionsv1.JSONSchemaProps, p *field.Path) []*field.Path {
	if s == nil {
		return nil
	}
	var out []*field.Path
	if len(s.XValidations) > 0 {
		out = append(out, p.Child("x-kubernetes-validations"))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		prop := s.Properties[k]
		out = append(out, findCEL(&prop, p.Child("properties").Key(k))...)
	}
	if s.Items != nil {
		out = append(out, findCEL(s.Items.Schema, p.Child("items"))...)
	}
	if s.AdditionalProperties != nil {
		out = append(out, findCEL(s.AdditionalProperties.Schema, p.Child("additionalProperties"))...)
	}
	return out
}

// ValidateCRDUpdate checks an update: the CRD's rules, and the group and
// scope that objects already stored depend on.
func ValidateCRDUpdate(crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	errs := ValidateCRD(crd)
	if crd.Spec.Group != old.Spec.Group {
		errs = append(errs, field.Invalid(field.NewPath("spec", "group"), crd.Spec.Group, "field is immutable"))
	}
	if crd.Spec.Scope != old.Spec.Scope {
		errs = append(errs, field.Invalid(field.NewPath("spec", "scope"), crd.Spec.Scope, "field is immutable"))
	}
	return errs
}
