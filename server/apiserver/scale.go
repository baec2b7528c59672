package apiserver

import (
	"fmt"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// The scale subresource shows and sets spec.replicas of a workload as an
// autoscaling/v1 Scale, as kubectl scale and the HPA use it.

var scaleGV = autoscalingv1.SchemeGroupVersion

// scaleOf builds the Scale of a workload.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	m, _ := meta.Accessor(obj)
	sc := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{
		Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
	}}
	replicas, found, _ := unstructured.NestedInt64(u, "spec", "replicas")
	if !found {
		replicas = 1
	}
	sc.Spec.Replicas = int32(replicas)
	status, _, _ := unstructured.NestedInt64(u, "status", "replicas")
	sc.Status.Replicas = int32(status)
	if sel, ok, _ := unstructured.NestedMap(u, "spec", "selector"); ok {
		if _, isLabelSelector := sel["matchLabels"]; isLabelSelector || sel["matchExpressions"] != nil {
			var ls metav1.LabelSelector
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err == nil {
				if s, err := metav1.LabelSelectorAsSelector(&ls); err == nil {
					sc.Status.Selector = s.String()
				}
			}
		} else {
			set := labels.Set{}
			for k, v := range sel {
				set[k] = fmt.Sprint(v)
			}
			sc.Status.Selector = labels.SelectorFromSet(set).String()
		}
	}
	return sc, nil
}

func (c *call) respondScale(obj runtime.Object) error {
	sc, err := scaleOf(obj)
	if err != nil {
		return err
	}
	c.writeWarnings()
	c.s.writeObject(c.w, c.r, http.StatusOK, sc, scaleGV, c.acc)
	return nil
}

// setReplicas stores want.Spec.Replicas into the workload, if want's
// resourceVersion (when given) is still the workload's.
func (c *call) setReplicas(name string, dry bool, want func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)) error {
	return c.write(name, dry, func(cur runtime.Object) (runtime.Object, error) {
		sc, err := scaleOf(cur)
		if err != nil {
			return nil, err
		}
		next, err := want(sc)
		if err != nil {
			return nil, err
		}
		if next.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), name, fieldErrors("spec.replicas", "must be greater than or equal to 0"))
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
		if err != nil {
			return nil, err
		}
		if err := unstructured.SetNestedField(u, int64(next.Spec.Replicas), "spec", "replicas"); err != nil {
			return nil, err
		}
		out := c.res.newStored()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, out); err != nil {
			return nil, err
		}
		if next.ResourceVersion != "" && next.ResourceVersion != sc.ResourceVersion {
			return nil, apierrors.NewConflict(c.res.GroupResource(), name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		saved := c.info.Subresource
		c.info.Subresource = ""
		defer func() { c.info.Subresource = saved }()
		if err := c.prepareUpdate(out, cur); err != nil {
			return nil, err
		}
		return out, nil
	})
}

func (c *call) updateScale(name string, data []byte, dry bool) error {
	var sent autoscalingv1.Scale
	gvk := scaleGV.WithKind("Scale")
	if _, _, err := c.s.codecs.UniversalDeserializer().Decode(data, &gvk, &sent); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as a Scale: %v", err))
	}
	return c.setReplicas(name, dry, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return &sent, nil })
}

func (c *call) patchScale(name string, pt types.PatchType, patch []byte, dry bool) error {
	jsonInfo, _ := runtime.SerializerInfoForMediaType(c.s.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	enc := c.s.codecs.EncoderForVersion(jsonInfo.Serializer, scaleGV)
	return c.setReplicas(name, dry, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		doc, err := runtime.Encode(enc, cur)
		if err != nil {
			return nil, err
		}
		patched, err := applyPatch(pt, doc, patch, &autoscalingv1.Scale{})
		if err != nil {
			return nil, err
		}
		var next autoscalingv1.Scale
		gvk := scaleGV.WithKind("Scale")
		if _, _, err := c.s.codecs.UniversalDeserializer().Decode(patched, &gvk, &next); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the patched Scale could not be decoded: %v", err))
		}
		if next.ResourceVersion == cur.ResourceVersion {
			next.ResourceVersion = "" // the patch named no version: no precondition
		}
		return &next, nil
	})
}
