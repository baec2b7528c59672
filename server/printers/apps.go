package printers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var replicaSetPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Desired", Type: "integer", Description: replicaSetSpecDoc["replicas"]},
	{Name: "Current", Type: "integer", Description: replicaSetStatusDoc["replicas"]},
	{Name: "Ready", Type: "integer", Description: replicaSetStatusDoc["readyReplicas"]},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: replicaSetSpecDoc["selector"]},
}, func(obj *appsv1.ReplicaSet, opts Options) ([]interface{}, error) {
	names, images := containerCells(obj.Spec.Template.Spec.Containers)
	return []interface{}{
		obj.Name, int64(replicas(obj.Spec.Replicas)), int64(obj.Status.Replicas), int64(obj.Status.ReadyReplicas),
		age(obj.CreationTimestamp, opts.Now),
		names, images, metav1.FormatLabelSelector(obj.Spec.Selector),
	}, nil
})

var deploymentPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
	{Name: "Up-to-date", Type: "string", Description: deploymentStatusDoc["updatedReplicas"]},
	{Name: "Available", Type: "string", Description: deploymentStatusDoc["availableReplicas"]},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: deploymentSpecDoc["selector"]},
}, func(obj *appsv1.Deployment, opts Options) ([]interface{}, error) {
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(obj.Spec.Selector); err == nil {
		selector = s.String()
	}
	names, images := containerCells(obj.Spec.Template.Spec.Containers)
	return []interface{}{
		obj.Name,
		fmt.Sprintf("%d/%d", obj.Status.ReadyReplicas, replicas(obj.Spec.Replicas)),
		int64(obj.Status.UpdatedReplicas), int64(obj.Status.AvailableReplicas),
		age(obj.CreationTimestamp, opts.Now),
		names, images, selector,
	}, nil
})

var daemonSetPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Desired", Type: "integer", Description: daemonSetStatusDoc["desiredNumberScheduled"]},
	{Name: "Current", Type: "integer", Description: daemonSetStatusDoc["currentNumberScheduled"]},
	{Name: "Ready", Type: "integer", Description: daemonSetStatusDoc["numberReady"]},
	{Name: "Up-to-date", Type: "integer", Description: daemonSetStatusDoc["updatedNumberScheduled"]},
	{Name: "Available", Type: "integer", Description: daemonSetStatusDoc["numberAvailable"]},
	{Name: "Node Selector", Type: "string", Description: corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]},
	ageColumn,
	containersColumn,
	imagesColumn,
	{Name: "Selector", Type: "string", Priority: 1, Description: daemonSetSpecDoc["selector"]},
}, func(obj *appsv1.DaemonSet, opts Options) ([]interface{}, error) {
	s := obj.Status
	names, images := containerCells(obj.Spec.Template.Spec.Containers)
	return []interface{}{
		obj.Name, int64(s.DesiredNumberScheduled), int64(s.CurrentNumberScheduled), int64(s.NumberReady),
		int64(s.UpdatedNumberScheduled), int64(s.NumberAvailable),
		labels.FormatLabels(obj.Spec.Template.Spec.NodeSelector),
		age(obj.CreationTimestamp, opts.Now),
		names, images, metav1.FormatLabelSelector(obj.Spec.Selector),
	}, nil
})

var statefulSetPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
	ageColumn,
	containersColumn,
	imagesColumn,
}, func(obj *appsv1.StatefulSet, opts Options) ([]interface{}, error) {
	names, images := containerCells(obj.Spec.Template.Spec.Containers)
	return []interface{}{
		obj.Name,
		fmt.Sprintf("%d/%d", obj.Status.ReadyReplicas, replicas(obj.Spec.Replicas)),
		age(obj.CreationTimestamp, opts.Now),
		names, images,
	}, nil
})

var controllerRevisionPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Controller", Type: "string", Description: "Controller of the object"},
	{Name: "Revision", Type: "string", Description: appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]},
	ageColumn,
}, func(obj *appsv1.ControllerRevision, opts Options) ([]interface{}, error) {
	controller := none
	if ref := metav1.GetControllerOf(obj); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil, err
		}
		// daemonset.apps/fluentd: the lower-cased kind.group, then the name.
		gk := gv.WithKind(ref.Kind).GroupKind()
		controller = ref.Name
		if !gk.Empty() {
			controller = strings.ToLower(gk.String()) + "/" + ref.Name
		}
	}
	return []interface{}{obj.Name, controller, obj.Revision, age(obj.CreationTimestamp, opts.Now)}, nil
})
