package strategy

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"labctl/server/customresource"
)

// CustomResourceDefinitions: the rules are server/customresource's; the
// conditions and accepted names are the API server's CRD controller's
// (server/apiserver/crd.go), written through the status subresource.

func init() {
	register(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"), &kind[*apiextensionsv1.CustomResourceDefinition]{
		clusterScoped: true,
		defaults:      apiextensionsv1.SetObjectDefaults_CustomResourceDefinition,
		prepareCreate: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
			crd.Generation = 1
			addStoredVersion(crd)
		},
		prepareUpdate: func(crd, old *apiextensionsv1.CustomResourceDefinition) {
			crd.Status = old.Status
			bumpGeneration(crd, !apiequality.Semantic.DeepEqual(crd.Spec, old.Spec))
			addStoredVersion(crd)
		},
		prepareStatus: func(crd, old *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec = old.Spec
			crd.Labels, crd.Annotations = old.Labels, old.Annotations
			crd.Finalizers, crd.OwnerReferences = old.Finalizers, old.OwnerReferences
		},
		validate: func(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
			// apimachinery's metadata rules, as upstream's apiextensions
			// server has them: its finalizer is not a core one.
			errs := apivalidation.ValidateObjectMeta(&crd.ObjectMeta, false, apivalidation.NameIsDNSSubdomain, metadataPath)
			return append(errs, customresource.ValidateCRD(crd)...)
		},
		validateUpdate: func(crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
			errs := apivalidation.ValidateObjectMetaUpdate(&crd.ObjectMeta, &old.ObjectMeta, metadataPath)
			return append(errs, customresource.ValidateCRDUpdate(crd, old)...)
		},
		validateStatus: func(crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
			errs := apivalidation.ValidateObjectMetaUpdate(&crd.ObjectMeta, &old.ObjectMeta, metadataPath)
			for i, c := range crd.Status.Conditions {
				p := statusPath.Child("conditions").Index(i)
				if c.Type == "" {
					errs = append(errs, field.Required(p.Child("type"), ""))
				}
				errs = append(errs, metav1validation.ValidateLabelName(string(c.Type), p.Child("type"))...)
			}
			return errs
		},
	})
}

// addStoredVersion records the storage version in status.storedVersions,
// as upstream does on every write: objects may be stored in it.
func addStoredVersion(crd *apiextensionsv1.CustomResourceDefinition) {
	for _, v := range crd.Spec.Versions {
		if !v.Storage {
			continue
		}
		for _, s := range crd.Status.StoredVersions {
			if s == v.Name {
				return
			}
		}
		crd.Status.StoredVersions = append(crd.Status.StoredVersions, v.Name)
		return
	}
}
