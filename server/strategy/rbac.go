package strategy

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// rbac.authorization.k8s.io/v1: Roles, ClusterRoles and their bindings.
// Names only need to fit in a URL path segment. Upstream also refuses to
// let a user grant permissions they do not hold (escalation checks in the
// REST storage, with the authorizer); that belongs to the server.

func init() {
	gv := rbacv1.SchemeGroupVersion
	register(gv.WithKind("Role"), &kind[*rbacv1.Role]{
		validate: func(r *rbacv1.Role) field.ErrorList {
			return validateRole(&r.ObjectMeta, r.Rules, true)
		},
		validateUpdate: func(r, old *rbacv1.Role) field.ErrorList {
			allErrs := validateRole(&r.ObjectMeta, r.Rules, true)
			return append(allErrs, validateObjectMetaUpdate(&r.ObjectMeta, &old.ObjectMeta)...)
		},
	})
	register(gv.WithKind("ClusterRole"), &kind[*rbacv1.ClusterRole]{
		clusterScoped: true,
		validate:      validateClusterRole,
		validateUpdate: func(r, old *rbacv1.ClusterRole) field.ErrorList {
			allErrs := validateClusterRole(r)
			return append(allErrs, validateObjectMetaUpdate(&r.ObjectMeta, &old.ObjectMeta)...)
		},
	})
	register(gv.WithKind("RoleBinding"), &kind[*rbacv1.RoleBinding]{
		defaults: func(b *rbacv1.RoleBinding) { defaultRoleBinding(&b.RoleRef, b.Subjects) },
		validate: func(b *rbacv1.RoleBinding) field.ErrorList {
			return validateRoleBinding(&b.ObjectMeta, b.RoleRef, b.Subjects, true)
		},
		validateUpdate: func(b, old *rbacv1.RoleBinding) field.ErrorList {
			allErrs := validateRoleBinding(&b.ObjectMeta, b.RoleRef, b.Subjects, true)
			allErrs = append(allErrs, validateObjectMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)...)
			return append(allErrs, validateRoleRefUpdate(b.RoleRef, old.RoleRef)...)
		},
	})
	register(gv.WithKind("ClusterRoleBinding"), &kind[*rbacv1.ClusterRoleBinding]{
		clusterScoped: true,
		defaults:      func(b *rbacv1.ClusterRoleBinding) { defaultRoleBinding(&b.RoleRef, b.Subjects) },
		validate: func(b *rbacv1.ClusterRoleBinding) field.ErrorList {
			return validateRoleBinding(&b.ObjectMeta, b.RoleRef, b.Subjects, false)
		},
		validateUpdate: func(b, old *rbacv1.ClusterRoleBinding) field.ErrorList {
			allErrs := validateRoleBinding(&b.ObjectMeta, b.RoleRef, b.Subjects, false)
			allErrs = append(allErrs, validateObjectMetaUpdate(&b.ObjectMeta, &old.ObjectMeta)...)
			return append(allErrs, validateRoleRefUpdate(b.RoleRef, old.RoleRef)...)
		},
	})
}

// defaultRoleBinding: the role and the user and group subjects are in the
// rbac API group, service accounts in the core group.
func defaultRoleBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}

func validateRole(m *metav1.ObjectMeta, rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	allErrs := validateObjectMeta(m, namespaced, nameIsPathSegment)
	for i, r := range rules {
		allErrs = append(allErrs, validatePolicyRule(r, namespaced, field.NewPath("rules").Index(i))...)
	}
	return allErrs
}

func validateClusterRole(r *rbacv1.ClusterRole) field.ErrorList {
	allErrs := validateRole(&r.ObjectMeta, r.Rules, false)
	if r.AggregationRule != nil {
		p := field.NewPath("aggregationRule", "clusterRoleSelectors")
		if len(r.AggregationRule.ClusterRoleSelectors) == 0 {
			allErrs = append(allErrs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
		}
		for i := range r.AggregationRule.ClusterRoleSelectors {
			sel := &r.AggregationRule.ClusterRoleSelectors[i]
			allErrs = append(allErrs, validateLabelSelector(sel, p.Index(i))...)
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				allErrs = append(allErrs, field.Invalid(p.Index(i), sel, "invalid label selector."))
			}
		}
	}
	return allErrs
}

// validatePolicyRule: verbs always; a resource rule names API groups and
// resources; a non-resource rule (only in cluster roles) names nothing else.
func validatePolicyRule(r rbacv1.PolicyRule, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(r.Verbs) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("verbs"), "verbs must contain at least one value"))
	}
	if len(r.NonResourceURLs) > 0 {
		if namespaced {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
		}
		if len(r.APIGroups) > 0 || len(r.Resources) > 0 || len(r.ResourceNames) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		return allErrs
	}
	if len(r.APIGroups) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiGroups"), "resource rules must supply at least one api group"))
	}
	if len(r.Resources) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("resources"), "resource rules must supply at least one resource"))
	}
	return allErrs
}

func validateRoleBinding(m *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	allErrs := validateObjectMeta(m, namespaced, nameIsPathSegment)
	refPath := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"Role", "ClusterRole"}
	}
	ok := false
	for _, k := range kinds {
		ok = ok || ref.Kind == k
	}
	if !ok {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(refPath.Child("name"), ""))
	} else {
		allErrs = append(allErrs, validateName(ref.Name, nameIsPathSegment, refPath.Child("name"))...)
	}
	for i, s := range subjects {
		allErrs = append(allErrs, validateSubject(s, namespaced, field.NewPath("subjects").Index(i))...)
	}
	return allErrs
}

func validateSubject(s rbacv1.Subject, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if s.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			allErrs = append(allErrs, validateName(s.Name, nameIsDNSSubdomain, fldPath.Child("name"))...)
		}
		if s.APIGroup != "" {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != rbacv1.GroupName {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return allErrs
}

func validateRoleRefUpdate(ref, old rbacv1.RoleRef) field.ErrorList {
	if ref != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), ref, "cannot change roleRef")}
	}
	return nil
}
