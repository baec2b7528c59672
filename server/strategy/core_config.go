package strategy

import (
	"encoding/json"
	"reflect"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ConfigMaps, Secrets and ServiceAccounts.

// maxSecretSize is the most data a Secret or ConfigMap may hold (1 MiB).
const maxSecretSize = 1 * 1024 * 1024

func init() {
	register(v1.SchemeGroupVersion.WithKind("ConfigMap"), &kind[*v1.ConfigMap]{
		defaults: func(cm *v1.ConfigMap) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
		},
		validate: validateConfigMap,
		validateUpdate: func(cm, old *v1.ConfigMap) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
			if old.Immutable != nil && *old.Immutable {
				if cm.Immutable == nil || !*cm.Immutable {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
				}
				if !reflect.DeepEqual(cm.Data, old.Data) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
				}
				if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
				}
			}
			return append(allErrs, validateConfigMap(cm)...)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("Secret"), &kind[*v1.Secret]{
		defaults: defaultSecret,
		validate: validateSecret,
		validateUpdate: func(s, old *v1.Secret) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
			allErrs = append(allErrs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
			if old.Immutable != nil && *old.Immutable {
				if s.Immutable == nil || !*s.Immutable {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
				}
				if !reflect.DeepEqual(s.Data, old.Data) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
				}
			}
			return append(allErrs, validateSecret(s)...)
		},
		fields: func(s *v1.Secret, set fields.Set) {
			set["type"] = string(s.Type)
		},
	})

	register(v1.SchemeGroupVersion.WithKind("ServiceAccount"), &kind[*v1.ServiceAccount]{
		validate: func(sa *v1.ServiceAccount) field.ErrorList {
			return validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
		},
		validateUpdate: func(sa, old *v1.ServiceAccount) field.ErrorList {
			allErrs := validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta)
			return append(allErrs, validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)...)
		},
	})
}

func validateConfigMap(cm *v1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain)
	total := 0
	for _, key := range sortedKeys(cm.Data) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, "duplicate of key present in binaryData"))
		}
		total += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		total += len(cm.BinaryData[key])
	}
	if total > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", maxSecretSize))
	}
	return allErrs
}

// defaultSecret: type Opaque, and stringData merged into data (upstream's
// conversion does this: stringData is write-only and never stored).
func defaultSecret(s *v1.Secret) {
	if s.Type == "" {
		s.Type = v1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func validateSecret(s *v1.Secret) field.ErrorList {
	allErrs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain)
	dataPath := field.NewPath("data")
	total := 0
	for _, key := range sortedKeys(s.Data) {
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
		total += len(s.Data[key])
	}
	if total > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", maxSecretSize))
	}
	switch s.Type {
	case v1.SecretTypeServiceAccountToken:
		if s.Annotations[v1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(metadataPath.Child("annotations").Key(v1.ServiceAccountNameKey), ""))
		}
	case v1.SecretTypeDockercfg:
		allErrs = append(allErrs, validateJSONSecretKey(s, v1.DockerConfigKey, dataPath)...)
	case v1.SecretTypeDockerConfigJson:
		allErrs = append(allErrs, validateJSONSecretKey(s, v1.DockerConfigJsonKey, dataPath)...)
	case v1.SecretTypeBasicAuth:
		_, user := s.Data[v1.BasicAuthUsernameKey]
		_, pass := s.Data[v1.BasicAuthPasswordKey]
		if !user && !pass {
			allErrs = append(allErrs, field.Required(dataPath.Key(v1.BasicAuthUsernameKey), ""))
			allErrs = append(allErrs, field.Required(dataPath.Key(v1.BasicAuthPasswordKey), ""))
		}
	case v1.SecretTypeSSHAuth:
		if len(s.Data[v1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(v1.SSHAuthPrivateKey), ""))
		}
	case v1.SecretTypeTLS:
		if _, ok := s.Data[v1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(v1.TLSCertKey), ""))
		}
		if _, ok := s.Data[v1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(v1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// validateJSONSecretKey: a docker config secret needs its key, holding JSON.
func validateJSONSecretKey(s *v1.Secret, key string, dataPath *field.Path) field.ErrorList {
	b, ok := s.Data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(b, &map[string]any{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}
