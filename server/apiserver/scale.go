package apiserver

import (
	"fmt"
	"net/http"
	"strings"

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

// scalePaths are where a kind keeps what its Scale shows: spec.replicas,
// status.replicas and the selector of the built-in workloads, or the
// paths a CRD's scale subresource names.
type scalePaths struct {
	spec, status []string
	// selector is a label selector (spec.selector) for the built-in
	// kinds; for custom resources, labelSelector is a string in
	// selector's form (status.selector), or nil.
	selector, labelSelector []string
}

func scalePathsOf(r *Resource) scalePaths {
	if r.custom == nil || r.custom.Scale == nil {
		return scalePaths{spec: []string{"spec", "replicas"}, status: []string{"status", "replicas"}, selector: []string{"spec", "selector"}}
	}
	sc := r.custom.Scale
	p := scalePaths{spec: jsonPathFields(sc.SpecReplicasPath), status: jsonPathFields(sc.StatusReplicasPath)}
	if sc.LabelSelectorPath != nil {
		p.labelSelector = jsonPathFields(*sc.LabelSelectorPath)
	}
	return p
}

// jsonPathFields splits a CRD's simple JSON path (.spec.replicas).
func jsonPathFields(path string) []string {
	return strings.Split(strings.TrimPrefix(path, "."), ".")
}

// scaleOf builds the Scale of a workload.
func scaleOf(r *Resource, obj runtime.Object) (*autoscalingv1.Scale, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	paths := scalePathsOf(r)
	m, _ := meta.Accessor(obj)
	sc := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{
		Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
		ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
	}}
	replicas, found, _ := unstructured.NestedInt64(u, paths.spec...)
	if !found && r.custom == nil {
		replicas = 1
	}
	sc.Spec.Replicas = int32(replicas)
	status, _, _ := unstructured.NestedInt64(u, paths.status...)
	sc.Status.Replicas = int32(status)
	if paths.labelSelector != nil {
		sc.Status.Selector, _, _ = unstructured.NestedString(u, paths.labelSelector...)
	}
	if sel, ok, _ := unstructured.NestedMap(u, paths.selector...); paths.selector != nil && ok {
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
	sc, err := scaleOf(c.res, obj)
	if err != nil {
		return err
	}
	c.writeWarnings()
	c.s.writeObject(c.w, c.r, http.StatusOK, sc, scaleGV, c.acc)
	return nil
}

// setReplicas stores want.Spec.Replicas into the workload, if want's
// resourceVersion (when given) is still the workload's. want gets the
// current Scale with the managedFields of its spec.replicas and returns
// the new one with its managedFields (trackScale or an apply), which go
// back to the workload's: as upstream, the manager of a write through
// /scale owns spec.replicas with subresource "scale".
func (c *call) setReplicas(name string, dry bool, want func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error)) error {
	return c.write(name, dry, func(cur runtime.Object) (runtime.Object, error) {
		sc, err := scaleOf(c.res, cur)
		if err != nil {
			return nil, err
		}
		m, err := meta.Accessor(cur)
		if err != nil {
			return nil, err
		}
		handler := scaleHandler(c.res, m.GetManagedFields())
		if sc.ManagedFields, err = handler.ToSubresource(); err != nil {
			// Unreadable entries: start the Scale's afresh, as the field
			// manager resets invalid managedFields.
			sc.ManagedFields = nil
		}
		next, err := want(sc)
		if err != nil {
			return nil, err
		}
		if next.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), name, fieldErrors("spec.replicas", "must be greater than or equal to 0"))
		}
		// A copy: the converter hands an unstructured object's own map back.
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if err := unstructured.SetNestedField(u, int64(next.Spec.Replicas), scalePathsOf(c.res).spec...); err != nil {
			return nil, err
		}
		out := c.res.newStored()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, out); err != nil {
			return nil, err
		}
		if entries, err := handler.ToParent(next.ManagedFields); err == nil {
			om, _ := meta.Accessor(out)
			om.SetManagedFields(entries)
		} else {
			c.s.cfg.Logger.Error("managedFields not updated", "resource", c.res.GVR().String(), "subresource", "scale", "name", name, "err", err)
		}
		if next.ResourceVersion != "" && next.ResourceVersion != sc.ResourceVersion {
			return nil, apierrors.NewConflict(c.res.GroupResource(), name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		saved := c.info.Subresource
		c.info.Subresource = ""
		defer func() { c.info.Subresource = saved }()
		if err := c.prepareUpdate(out, cur, false); err != nil {
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
	return c.setReplicas(name, dry, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		next := sent.DeepCopy()
		c.trackScale(cur, next)
		return next, nil
	})
}

// trackScale records what next changes from cur as the writer's, through
// the Scale's field manager.
func (c *call) trackScale(cur, next *autoscalingv1.Scale) {
	c.track(cur, next, "scale")
}

// applyScale serves an apply to /scale: the configuration is a Scale.
func (c *call) applyScale(name string, req *applyRequest, dry bool) error {
	fm, err := c.s.fieldManager(c.res, "scale")
	if err != nil {
		return err
	}
	return c.setReplicas(name, dry, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		out, err := c.applyTo(fm, cur, req)
		if err != nil {
			return nil, err
		}
		next, ok := out.(*autoscalingv1.Scale)
		if !ok {
			return nil, fmt.Errorf("apply to a Scale gave a %T", out)
		}
		if next.Name != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", next.Name, name))
		}
		if next.ResourceVersion == cur.ResourceVersion {
			next.ResourceVersion = "" // the configuration named no version: no precondition
		}
		return next, nil
	})
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
		c.trackScale(cur, &next)
		return &next, nil
	})
}
