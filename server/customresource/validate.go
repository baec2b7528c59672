package customresource

import (
	"encoding/json"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	openapierrors "k8s.io/kube-openapi/pkg/validation/errors"
)

// validate checks obj (an object's unstructured content) against the
// schema and words each problem as upstream's field errors: the path of
// the value, and the validator's message.
func (s *Schema) validate(obj map[string]any) field.ErrorList {
	if s == nil || s.validator == nil {
		return nil
	}
	result := s.validator.Validate(obj)
	if result == nil {
		return nil
	}
	var errs field.ErrorList
	for _, err := range result.Errors {
		verr, ok := err.(*openapierrors.Validation)
		if !ok {
			errs = append(errs, field.Invalid(nil, "", err.Error()))
			continue
		}
		var path *field.Path
		if name := strings.TrimPrefix(verr.Name, "."); name != "" {
			path = field.NewPath(name)
		}
		value := verr.Value
		if value == nil {
			value = ""
		}
		switch verr.Code() {
		case openapierrors.RequiredFailCode:
			errs = append(errs, field.Required(path, ""))
		case openapierrors.EnumFailCode:
			var allowed []string
			for _, v := range verr.Values {
				if s, ok := v.(string); ok {
					allowed = append(allowed, s)
				} else {
					b, _ := json.Marshal(v)
					allowed = append(allowed, string(b))
				}
			}
			errs = append(errs, field.NotSupported(path, verr.Value, allowed))
		case openapierrors.TooLongFailCode:
			errs = append(errs, field.TooLong(path, "", int(asInt(verr.Valid))))
		case openapierrors.MaxItemsFailCode, openapierrors.TooManyPropertiesCode:
			errs = append(errs, field.TooMany(path, int(asInt(verr.Value)), int(asInt(verr.Valid))))
		case openapierrors.InvalidTypeCode:
			errs = append(errs, field.TypeInvalid(path, value, verr.Error()))
		default:
			errs = append(errs, field.Invalid(path, value, verr.Error()))
		}
	}
	return errs
}

func asInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return -1
}
