package printers

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func init() {
	register := func(item, list runtime.Object, gv, kind string, p *Printer) {
		v, err := schema.ParseGroupVersion(gv)
		if err != nil {
			panic(err)
		}
		Register(v.WithKind(kind), item, list, p)
	}

	// core/v1
	register(&corev1.Pod{}, &corev1.PodList{}, "v1", "Pod", podPrinter)
	register(&corev1.PodTemplate{}, &corev1.PodTemplateList{}, "v1", "PodTemplate", podTemplatePrinter)
	register(&corev1.ReplicationController{}, &corev1.ReplicationControllerList{}, "v1", "ReplicationController", replicationControllerPrinter)
	register(&corev1.Service{}, &corev1.ServiceList{}, "v1", "Service", servicePrinter)
	register(&corev1.Endpoints{}, &corev1.EndpointsList{}, "v1", "Endpoints", endpointsPrinter)
	register(&corev1.Node{}, &corev1.NodeList{}, "v1", "Node", nodePrinter)
	register(&corev1.Namespace{}, &corev1.NamespaceList{}, "v1", "Namespace", namespacePrinter)
	register(&corev1.Event{}, &corev1.EventList{}, "v1", "Event", eventPrinter)
	register(&corev1.Secret{}, &corev1.SecretList{}, "v1", "Secret", secretPrinter)
	register(&corev1.ConfigMap{}, &corev1.ConfigMapList{}, "v1", "ConfigMap", configMapPrinter)
	register(&corev1.ServiceAccount{}, &corev1.ServiceAccountList{}, "v1", "ServiceAccount", serviceAccountPrinter)
	register(&corev1.PersistentVolume{}, &corev1.PersistentVolumeList{}, "v1", "PersistentVolume", persistentVolumePrinter)
	register(&corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaimList{}, "v1", "PersistentVolumeClaim", persistentVolumeClaimPrinter)
	register(&corev1.ResourceQuota{}, &corev1.ResourceQuotaList{}, "v1", "ResourceQuota", resourceQuotaPrinter)
	// Upstream gives LimitRange the default table.
	register(&corev1.LimitRange{}, &corev1.LimitRangeList{}, "v1", "LimitRange", nil)

	// apps/v1
	register(&appsv1.ReplicaSet{}, &appsv1.ReplicaSetList{}, "apps/v1", "ReplicaSet", replicaSetPrinter)
	register(&appsv1.Deployment{}, &appsv1.DeploymentList{}, "apps/v1", "Deployment", deploymentPrinter)
	register(&appsv1.DaemonSet{}, &appsv1.DaemonSetList{}, "apps/v1", "DaemonSet", daemonSetPrinter)
	register(&appsv1.StatefulSet{}, &appsv1.StatefulSetList{}, "apps/v1", "StatefulSet", statefulSetPrinter)
	register(&appsv1.ControllerRevision{}, &appsv1.ControllerRevisionList{}, "apps/v1", "ControllerRevision", controllerRevisionPrinter)

	// batch/v1
	register(&batchv1.Job{}, &batchv1.JobList{}, "batch/v1", "Job", jobPrinter)
	register(&batchv1.CronJob{}, &batchv1.CronJobList{}, "batch/v1", "CronJob", cronJobPrinter)

	// autoscaling
	register(&autoscalingv1.HorizontalPodAutoscaler{}, &autoscalingv1.HorizontalPodAutoscalerList{}, "autoscaling/v1", "HorizontalPodAutoscaler", hpaV1Printer)
	register(&autoscalingv2.HorizontalPodAutoscaler{}, &autoscalingv2.HorizontalPodAutoscalerList{}, "autoscaling/v2", "HorizontalPodAutoscaler", hpaV2Printer)

	// networking, discovery
	register(&networkingv1.Ingress{}, &networkingv1.IngressList{}, "networking.k8s.io/v1", "Ingress", ingressPrinter)
	register(&networkingv1.IngressClass{}, &networkingv1.IngressClassList{}, "networking.k8s.io/v1", "IngressClass", ingressClassPrinter)
	register(&networkingv1.NetworkPolicy{}, &networkingv1.NetworkPolicyList{}, "networking.k8s.io/v1", "NetworkPolicy", networkPolicyPrinter)
	register(&discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{}, "discovery.k8s.io/v1", "EndpointSlice", endpointSlicePrinter)

	// events.k8s.io/v1
	register(&eventsv1.Event{}, &eventsv1.EventList{}, "events.k8s.io/v1", "Event", eventsV1Printer)

	// storage.k8s.io/v1
	register(&storagev1.StorageClass{}, &storagev1.StorageClassList{}, "storage.k8s.io/v1", "StorageClass", storageClassPrinter)
	register(&storagev1.VolumeAttachment{}, &storagev1.VolumeAttachmentList{}, "storage.k8s.io/v1", "VolumeAttachment", volumeAttachmentPrinter)
	register(&storagev1.CSINode{}, &storagev1.CSINodeList{}, "storage.k8s.io/v1", "CSINode", csiNodePrinter)
	register(&storagev1.CSIDriver{}, &storagev1.CSIDriverList{}, "storage.k8s.io/v1", "CSIDriver", csiDriverPrinter)

	// rbac.authorization.k8s.io/v1: upstream has no printer for roles, they
	// get the default table.
	register(&rbacv1.Role{}, &rbacv1.RoleList{}, "rbac.authorization.k8s.io/v1", "Role", nil)
	register(&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleList{}, "rbac.authorization.k8s.io/v1", "ClusterRole", nil)
	register(&rbacv1.RoleBinding{}, &rbacv1.RoleBindingList{}, "rbac.authorization.k8s.io/v1", "RoleBinding", roleBindingPrinter)
	register(&rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRoleBindingList{}, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", clusterRoleBindingPrinter)

	// The rest.
	register(&policyv1.PodDisruptionBudget{}, &policyv1.PodDisruptionBudgetList{}, "policy/v1", "PodDisruptionBudget", podDisruptionBudgetPrinter)
	register(&schedulingv1.PriorityClass{}, &schedulingv1.PriorityClassList{}, "scheduling.k8s.io/v1", "PriorityClass", priorityClassPrinter)
	register(&coordinationv1.Lease{}, &coordinationv1.LeaseList{}, "coordination.k8s.io/v1", "Lease", leasePrinter)
	register(&certificatesv1.CertificateSigningRequest{}, &certificatesv1.CertificateSigningRequestList{}, "certificates.k8s.io/v1", "CertificateSigningRequest", csrPrinter)
	register(&nodev1.RuntimeClass{}, &nodev1.RuntimeClassList{}, "node.k8s.io/v1", "RuntimeClass", runtimeClassPrinter)
	register(&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.MutatingWebhookConfigurationList{}, "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", mutatingWebhookPrinter)
	register(&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfigurationList{}, "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", validatingWebhookPrinter)
}
