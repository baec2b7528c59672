package printers

import (
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// qty prints a quantity without touching the object it belongs to
// (Quantity.String caches its text in the value), "<nil>" for nil.
func qty(q *resource.Quantity) string {
	if q == nil {
		return "<nil>"
	}
	c := *q
	return c.String()
}

// bindingCells are the cells shared by RoleBinding and ClusterRoleBinding.
func bindingCells(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, opts Options) []interface{} {
	users, groups, sas := []string{}, []string{}, []string{}
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, fmt.Sprintf("%s/%s", s.Namespace, s.Name))
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		}
	}
	return []interface{}{
		name, fmt.Sprintf("%s/%s", ref.Kind, ref.Name), age(created, opts.Now),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "),
	}
}

var roleBindingPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Role", Type: "string", Description: rbacv1beta1.RoleBinding{}.SwaggerDoc()["roleRef"]},
	ageColumn,
	{Name: "Users", Type: "string", Priority: 1, Description: "Users in the roleBinding"},
	{Name: "Groups", Type: "string", Priority: 1, Description: "Groups in the roleBinding"},
	{Name: "ServiceAccounts", Type: "string", Priority: 1, Description: "ServiceAccounts in the roleBinding"},
}, func(obj *rbacv1.RoleBinding, opts Options) ([]interface{}, error) {
	return bindingCells(obj.Name, obj.RoleRef, obj.Subjects, obj.CreationTimestamp, opts), nil
})

var clusterRoleBindingPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Role", Type: "string", Description: rbacv1beta1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"]},
	ageColumn,
	{Name: "Users", Type: "string", Priority: 1, Description: "Users in the clusterRoleBinding"},
	{Name: "Groups", Type: "string", Priority: 1, Description: "Groups in the clusterRoleBinding"},
	{Name: "ServiceAccounts", Type: "string", Priority: 1, Description: "ServiceAccounts in the clusterRoleBinding"},
}, func(obj *rbacv1.ClusterRoleBinding, opts Options) ([]interface{}, error) {
	return bindingCells(obj.Name, obj.RoleRef, obj.Subjects, obj.CreationTimestamp, opts), nil
})

// hpaColumns are shared by autoscaling/v1 and autoscaling/v2, one resource
// upstream.
var hpaColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Reference", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]},
	{Name: "Targets", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]},
	{Name: "MinPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]},
	{Name: "MaxPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]},
	{Name: "Replicas", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]},
	ageColumn,
}

func hpaCells(meta metav1.ObjectMeta, ref autoscalingv2.CrossVersionObjectReference, minReplicas *int32, maxReplicas, current int32,
	specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus, opts Options) []interface{} {
	minPods := unset
	if minReplicas != nil {
		minPods = fmt.Sprintf("%d", *minReplicas)
	}
	return []interface{}{
		meta.Name, fmt.Sprintf("%s/%s", ref.Kind, ref.Name), hpaMetrics(specs, statuses),
		minPods, int64(maxReplicas), int64(current), age(meta.CreationTimestamp, opts.Now),
	}
}

// hpaMetrics prints "current/target" for up to two metrics, matching each
// spec with the status at the same index.
func hpaMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return none
	}
	const max = 2
	var list []string
	for i, spec := range specs {
		var st *autoscalingv2.MetricStatus
		if len(statuses) > i {
			st = &statuses[i]
		}
		current := unknown
		switch spec.Type {
		case autoscalingv2.ExternalMetricSourceType:
			if spec.External.Target.AverageValue != nil {
				if st != nil && st.External != nil && st.External.Current.AverageValue != nil {
					current = qty(st.External.Current.AverageValue)
				}
				list = append(list, fmt.Sprintf("%s/%s (avg)", current, qty(spec.External.Target.AverageValue)))
			} else {
				if st != nil && st.External != nil {
					current = qty(st.External.Current.Value)
				}
				list = append(list, fmt.Sprintf("%s/%s", current, qty(spec.External.Target.Value)))
			}
		case autoscalingv2.PodsMetricSourceType:
			if st != nil && st.Pods != nil {
				current = qty(st.Pods.Current.AverageValue)
			}
			list = append(list, fmt.Sprintf("%s/%s", current, qty(spec.Pods.Target.AverageValue)))
		case autoscalingv2.ObjectMetricSourceType:
			if spec.Object.Target.AverageValue != nil {
				if st != nil && st.Object != nil && st.Object.Current.AverageValue != nil {
					current = qty(st.Object.Current.AverageValue)
				}
				list = append(list, fmt.Sprintf("%s/%s (avg)", current, qty(spec.Object.Target.AverageValue)))
			} else {
				if st != nil && st.Object != nil {
					current = qty(st.Object.Current.Value)
				}
				list = append(list, fmt.Sprintf("%s/%s", current, qty(spec.Object.Target.Value)))
			}
		case autoscalingv2.ResourceMetricSourceType:
			if spec.Resource.Target.AverageValue != nil {
				if st != nil && st.Resource != nil {
					current = qty(st.Resource.Current.AverageValue)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.Resource.Name.String(), current, qty(spec.Resource.Target.AverageValue)))
			} else {
				if st != nil && st.Resource != nil && st.Resource.Current.AverageUtilization != nil {
					current = fmt.Sprintf("%d%%", *st.Resource.Current.AverageUtilization)
				}
				target := "<auto>"
				if spec.Resource.Target.AverageUtilization != nil {
					target = fmt.Sprintf("%d%%", *spec.Resource.Target.AverageUtilization)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.Resource.Name.String(), current, target))
			}
		case autoscalingv2.ContainerResourceMetricSourceType:
			if spec.ContainerResource.Target.AverageValue != nil {
				if st != nil && st.ContainerResource != nil {
					current = qty(st.ContainerResource.Current.AverageValue)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.ContainerResource.Name.String(), current, qty(spec.ContainerResource.Target.AverageValue)))
			} else {
				if st != nil && st.ContainerResource != nil && st.ContainerResource.Current.AverageUtilization != nil {
					current = fmt.Sprintf("%d%%", *st.ContainerResource.Current.AverageUtilization)
				}
				target := "<auto>"
				if spec.ContainerResource.Target.AverageUtilization != nil {
					target = fmt.Sprintf("%d%%", *spec.ContainerResource.Target.AverageUtilization)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.ContainerResource.Name.String(), current, target))
			}
		default:
			list = append(list, "<unknown type>")
		}
	}
	if count := len(list); count > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), count-max)
	}
	return strings.Join(list, ", ")
}

var hpaV2Printer = NewPrinter(hpaColumns, func(obj *autoscalingv2.HorizontalPodAutoscaler, opts Options) ([]interface{}, error) {
	return hpaCells(obj.ObjectMeta, obj.Spec.ScaleTargetRef, obj.Spec.MinReplicas, obj.Spec.MaxReplicas,
		obj.Status.CurrentReplicas, obj.Spec.Metrics, obj.Status.CurrentMetrics, opts), nil
})

// hpaV1Printer prints an autoscaling/v1 HPA as its v2 form: the CPU target
// (and current utilization) is its only metric.
var hpaV1Printer = NewPrinter(hpaColumns, func(obj *autoscalingv1.HorizontalPodAutoscaler, opts Options) ([]interface{}, error) {
	var specs []autoscalingv2.MetricSpec
	if t := obj.Spec.TargetCPUUtilizationPercentage; t != nil {
		specs = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: t},
			},
		}}
	}
	var statuses []autoscalingv2.MetricStatus
	if c := obj.Status.CurrentCPUUtilizationPercentage; c != nil {
		statuses = []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: c},
			},
		}}
	}
	ref := autoscalingv2.CrossVersionObjectReference{
		Kind: obj.Spec.ScaleTargetRef.Kind, Name: obj.Spec.ScaleTargetRef.Name, APIVersion: obj.Spec.ScaleTargetRef.APIVersion,
	}
	return hpaCells(obj.ObjectMeta, ref, obj.Spec.MinReplicas, obj.Spec.MaxReplicas, obj.Status.CurrentReplicas, specs, statuses, opts), nil
})

var podDisruptionBudgetPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Min Available", Type: "string", Description: "The minimum number of pods that must be available."},
	{Name: "Max Unavailable", Type: "string", Description: "The maximum number of pods that may be unavailable."},
	{Name: "Allowed Disruptions", Type: "integer", Description: "Calculated number of pods that may be disrupted at this time."},
	ageColumn,
}, func(obj *policyv1.PodDisruptionBudget, opts Options) ([]interface{}, error) {
	minAvailable, maxUnavailable := "N/A", "N/A"
	if obj.Spec.MinAvailable != nil {
		minAvailable = obj.Spec.MinAvailable.String()
	}
	if obj.Spec.MaxUnavailable != nil {
		maxUnavailable = obj.Spec.MaxUnavailable.String()
	}
	return []interface{}{obj.Name, minAvailable, maxUnavailable, int64(obj.Status.DisruptionsAllowed), age(obj.CreationTimestamp, opts.Now)}, nil
})

var priorityClassPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Value", Type: "integer", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["value"]},
	{Name: "Global-Default", Type: "boolean", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]},
	ageColumn,
	{Name: "PreemptionPolicy", Type: "string", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"]},
}, func(obj *schedulingv1.PriorityClass, opts Options) ([]interface{}, error) {
	policy := ""
	if obj.PreemptionPolicy != nil {
		policy = string(*obj.PreemptionPolicy)
	}
	return []interface{}{obj.Name, int64(obj.Value), obj.GlobalDefault, age(obj.CreationTimestamp, opts.Now), policy}, nil
})

var leasePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
	ageColumn,
}, func(obj *coordinationv1.Lease, opts Options) ([]interface{}, error) {
	holder := ""
	if obj.Spec.HolderIdentity != nil {
		holder = *obj.Spec.HolderIdentity
	}
	return []interface{}{obj.Name, holder, age(obj.CreationTimestamp, opts.Now)}, nil
})

var csrPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	ageColumn,
	{Name: "SignerName", Type: "string", Description: certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"]},
	{Name: "Requestor", Type: "string", Description: certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["request"]},
	{Name: "RequestedDuration", Type: "string", Description: certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"]},
	{Name: "Condition", Type: "string", Description: certificatesv1beta1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"]},
}, func(obj *certificatesv1.CertificateSigningRequest, opts Options) ([]interface{}, error) {
	signer := none
	if obj.Spec.SignerName != "" {
		signer = obj.Spec.SignerName
	}
	requested := none
	if obj.Spec.ExpirationSeconds != nil {
		requested = duration.HumanDuration(time.Duration(*obj.Spec.ExpirationSeconds) * time.Second)
	}
	return []interface{}{obj.Name, age(obj.CreationTimestamp, opts.Now), signer, obj.Spec.Username, requested, csrCondition(obj)}, nil
})

// csrCondition is Denied, Approved or Pending, then ",Failed" and
// ",Issued" when they apply. Condition types count whatever their status.
func csrCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	var status string
	switch {
	case denied:
		status = "Denied"
	case approved:
		status = "Approved"
	default:
		status = "Pending"
	}
	if failed {
		status += ",Failed"
	}
	if len(csr.Status.Certificate) > 0 {
		status += ",Issued"
	}
	return status
}

var runtimeClassPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Handler", Type: "string", Description: objectMetaDoc["handler"]},
	ageColumn,
}, func(obj *nodev1.RuntimeClass, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, obj.Handler, age(obj.CreationTimestamp, opts.Now)}, nil
})

var webhookColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Webhooks", Type: "integer", Description: "Webhooks indicates the number of webhooks registered in this configuration"},
	ageColumn,
}

var mutatingWebhookPrinter = NewPrinter(webhookColumns, func(obj *admissionregistrationv1.MutatingWebhookConfiguration, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, int64(len(obj.Webhooks)), age(obj.CreationTimestamp, opts.Now)}, nil
})

var validatingWebhookPrinter = NewPrinter(webhookColumns, func(obj *admissionregistrationv1.ValidatingWebhookConfiguration, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, int64(len(obj.Webhooks)), age(obj.CreationTimestamp, opts.Now)}, nil
})
