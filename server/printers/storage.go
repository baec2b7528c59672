package printers

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Annotations that make a StorageClass a default.
const (
	isDefaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaIsDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func isDefaultStorageClass(sc *storagev1.StorageClass) bool {
	return sc.Annotations[isDefaultStorageClassAnnotation] == "true" ||
		sc.Annotations[betaIsDefaultStorageClassAnnotation] == "true"
}

// effectiveDefaultStorageClass returns the name of the class that the
// cluster uses as its default: of all the classes annotated as default, the
// most recently created one, by name on a tie. "" when there is none.
func effectiveDefaultStorageClass(classes []*storagev1.StorageClass) string {
	var defaults []*storagev1.StorageClass
	for _, sc := range classes {
		if isDefaultStorageClass(sc) {
			defaults = append(defaults, sc)
		}
	}
	if len(defaults) == 0 {
		return ""
	}
	sort.Slice(defaults, func(i, j int) bool {
		ti, tj := defaults[i].CreationTimestamp.UnixNano(), defaults[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defaults[i].Name < defaults[j].Name
		}
		return ti > tj
	})
	return defaults[0].Name
}

var storageClassColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Provisioner", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["provisioner"]},
	{Name: "ReclaimPolicy", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]},
	{Name: "VolumeBindingMode", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]},
	{Name: "AllowVolumeExpansion", Type: "string", Description: storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]},
	ageColumn,
}

// storageClassPrinter marks only the effective default class with
// "(default)", as upstream does since kubernetes/kubernetes#135964: the
// newest class annotated as default among the printed classes for a list,
// among Options.StorageClasses (when set) for a single class.
var storageClassPrinter = &Printer{
	Columns: storageClassColumns,
	Rows: func(items []runtime.Object, opts Options) ([]metav1.TableRow, error) {
		classes := make([]*storagev1.StorageClass, 0, len(items))
		for _, item := range items {
			sc, ok := item.(*storagev1.StorageClass)
			if !ok {
				return nil, fmt.Errorf("printers: cannot print %T with the printer for *v1.StorageClass", item)
			}
			classes = append(classes, sc)
		}

		universe := classes
		if !opts.list && opts.StorageClasses != nil {
			// Upstream falls back to the annotation alone when it cannot
			// list the classes, which is what a universe of one gives.
			if all, err := opts.StorageClasses(); err == nil {
				universe = make([]*storagev1.StorageClass, 0, len(all))
				for i := range all {
					universe = append(universe, &all[i])
				}
			}
		}
		effective := effectiveDefaultStorageClass(universe)

		rows := make([]metav1.TableRow, 0, len(classes))
		for _, sc := range classes {
			name := sc.Name
			if effective != "" && sc.Name == effective {
				name += " (default)"
			}
			reclaim := string(corev1.PersistentVolumeReclaimDelete)
			if sc.ReclaimPolicy != nil {
				reclaim = string(*sc.ReclaimPolicy)
			}
			binding := string(storagev1.VolumeBindingImmediate)
			if sc.VolumeBindingMode != nil {
				binding = string(*sc.VolumeBindingMode)
			}
			expansion := false
			if sc.AllowVolumeExpansion != nil {
				expansion = *sc.AllowVolumeExpansion
			}
			rows = append(rows, metav1.TableRow{Cells: []interface{}{
				name, sc.Provisioner, reclaim, binding, expansion, age(sc.CreationTimestamp, opts.Now),
			}})
		}
		return rows, nil
	},
}

var volumeAttachmentPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Attacher", Type: "string", Format: "name", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]},
	{Name: "PV", Type: "string", Description: storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]},
	{Name: "Node", Type: "string", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]},
	{Name: "Attached", Type: "boolean", Description: storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]},
	ageColumn,
}, func(obj *storagev1.VolumeAttachment, opts Options) ([]interface{}, error) {
	pv := ""
	if obj.Spec.Source.PersistentVolumeName != nil {
		pv = *obj.Spec.Source.PersistentVolumeName
	}
	return []interface{}{obj.Name, obj.Spec.Attacher, pv, obj.Spec.NodeName, obj.Status.Attached, age(obj.CreationTimestamp, opts.Now)}, nil
})

var csiNodePrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Drivers", Type: "integer", Description: "Drivers indicates the number of CSI drivers registered on the node"},
	ageColumn,
}, func(obj *storagev1.CSINode, opts Options) ([]interface{}, error) {
	return []interface{}{obj.Name, int64(len(obj.Spec.Drivers)), age(obj.CreationTimestamp, opts.Now)}, nil
})

var csiDriverPrinter = NewPrinter([]metav1.TableColumnDefinition{
	nameColumn,
	{Name: "AttachRequired", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]},
	{Name: "PodInfoOnMount", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]},
	{Name: "StorageCapacity", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]},
	{Name: "TokenRequests", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"]},
	{Name: "RequiresRepublish", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]},
	{Name: "Modes", Type: "string", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"]},
	ageColumn,
}, func(obj *storagev1.CSIDriver, opts Options) ([]interface{}, error) {
	deref := func(b *bool, def bool) bool {
		if b == nil {
			return def
		}
		return *b
	}
	modes := make([]string, 0, len(obj.Spec.VolumeLifecycleModes))
	for _, m := range obj.Spec.VolumeLifecycleModes {
		modes = append(modes, string(m))
	}
	modesText := strings.Join(modes, ",")
	if modesText == "" {
		modesText = none
	}
	tokenRequests := unset
	if obj.Spec.TokenRequests != nil {
		audiences := make([]string, 0, len(obj.Spec.TokenRequests))
		for _, t := range obj.Spec.TokenRequests {
			audiences = append(audiences, t.Audience)
		}
		tokenRequests = strings.Join(audiences, ",")
	}
	return []interface{}{
		obj.Name, deref(obj.Spec.AttachRequired, true), deref(obj.Spec.PodInfoOnMount, false),
		deref(obj.Spec.StorageCapacity, false), tokenRequests, deref(obj.Spec.RequiresRepublish, false),
		modesText, age(obj.CreationTimestamp, opts.Now),
	}, nil
})
