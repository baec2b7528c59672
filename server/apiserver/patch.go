package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
)

// patch applies a JSON patch, a JSON merge patch or a strategic merge
// patch to the current object (retrying on a fresh read when someone wrote
// in between, unless the patch itself names a resourceVersion), then
// stores the result as an update; an apply patch goes to apply.
func (c *call) patch(name string) error {
	mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	pt := types.PatchType(mt)
	if err != nil || !c.acceptsPatch(pt) {
		return c.unsupportedPatch()
	}
	var opts metav1.PatchOptions
	dry, strict, warn, err := c.writeParams(&opts, &opts.DryRun, &opts.FieldValidation, pt)
	if err != nil {
		return err
	}
	patch, err := readBody(c.r)
	if err != nil {
		return err
	}
	if err := checkPatch(pt, patch); err != nil {
		return err
	}
	if pt == types.ApplyYAMLPatchType {
		return c.apply(name, patch, opts, dry, strict, warn)
	}
	if c.info.Subresource == "scale" {
		return c.patchScale(name, pt, patch, dry)
	}
	jsonInfo, _ := runtime.SerializerInfoForMediaType(c.s.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	jsonEnc := c.s.codecs.EncoderForVersion(jsonInfo.Serializer, c.res.GVK.GroupVersion())
	return c.write(name, dry, func(cur runtime.Object) (runtime.Object, error) {
		served, err := c.out(cur)
		if err != nil {
			return nil, err
		}
		curJSON, err := runtime.Encode(jsonEnc, served)
		if err != nil {
			return nil, err
		}
		patched, err := applyPatch(pt, curJSON, patch, c.res.newObj())
		if err != nil {
			return nil, err
		}
		next, warnings, err := c.s.decodeJSON(c.res, patched, strict)
		if err != nil {
			return nil, err
		}
		if warn {
			c.warnings = append(c.warnings[:0], warnings...)
		}
		if next, err = c.in(next); err != nil {
			return nil, err
		}
		if err := c.prepareUpdate(next, cur, true); err != nil {
			return nil, err
		}
		return next, nil
	})
}

// patchTypes are the patch media types a resource accepts, in upstream's
// order: strategic merge needs Go types (struct tags say how lists merge),
// so custom resources refuse it.
func (c *call) patchTypes() []string {
	if _, custom := c.res.newStored().(runtime.Unstructured); custom {
		return []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.ApplyYAMLPatchType)}
	}
	return []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType), string(types.ApplyYAMLPatchType)}
}

// acceptsPatch reports whether pt is one of patchTypes. Apply in CBOR is
// not among them: upstream accepts it only behind the alpha
// CBORServingAndStorage feature gate, off by default.
func (c *call) acceptsPatch(pt types.PatchType) bool {
	for _, t := range c.patchTypes() {
		if string(pt) == t {
			return true
		}
	}
	return false
}

func (c *call) unsupportedPatch() error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
		"the body of the request was in an unknown format - accepted media types include: "+strings.Join(c.patchTypes(), ", "), 0, false)
}

// checkPatch refuses a body that is not the YAML or JSON its type says, as
// upstream does before looking at the object.
func checkPatch(pt types.PatchType, patch []byte) error {
	if pt == types.ApplyYAMLPatchType {
		if json.Valid(patch) {
			return nil // JSON is YAML; what kubectl, client-go and Helm send
		}
		if _, err := yaml.ToJSON(patch); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("error encoding patch: %v", err))
		}
		return nil
	}
	if !json.Valid(patch) {
		return apierrors.NewBadRequest("invalid JSON patch")
	}
	return nil
}

// applyPatch returns doc with patch applied; kind is an object of the
// kind, whose struct tags tell strategic merge how lists merge.
func applyPatch(pt types.PatchType, doc, patch []byte, kind runtime.Object) ([]byte, error) {
	var out []byte
	var err error
	switch pt {
	case types.JSONPatchType:
		p, derr := jsonpatch.DecodePatch(patch)
		if derr != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be decoded: %v", derr))
		}
		if out, err = p.Apply(doc); err != nil {
			// A well-formed patch that does not apply (a failed test, a
			// missing path) is unprocessable, as upstream answers it.
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	case types.MergePatchType:
		out, err = jsonpatch.MergePatch(doc, patch)
	case types.StrategicMergePatchType:
		out, err = strategicpatch.StrategicMergePatch(doc, patch, kind)
	default:
		err = fmt.Errorf("%s: not a patch this server applies here", pt)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	return out, nil
}

// decodeJSON decodes a patched document of r's kind.
func (s *Server) decodeJSON(r *Resource, data []byte, strict bool) (runtime.Object, []string, error) {
	info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	return decodeAs(info.StrictSerializer, r, data, strict)
}

// ---- server-side apply

// applyRequest is one apply: the applied configuration and how to merge it.
type applyRequest struct {
	applied *unstructured.Unstructured
	patch   []byte
	manager string
	force   bool
	// strict and warn are fieldValidation's (Strict, Warn): the YAML may
	// not repeat a key. Unknown fields fail the apply whatever they say,
	// as the schema has no place for them.
	strict, warn bool
	// unique: the configuration is known to repeat no key; checked: the
	// check is done.
	unique, checked bool
}

// apply serves PATCH application/apply-patch+yaml as upstream does: the
// field manager merges the applied configuration into the object, owning
// what it names for the fieldManager and refusing with 409 what other
// managers own unless force is set. On the main resource an object that
// does not exist is created from the configuration (201), named by the
// URL, in an existing namespace.
func (c *call) apply(name string, patch []byte, opts metav1.PatchOptions, dry, strict, warn bool) error {
	req := &applyRequest{patch: patch, manager: opts.FieldManager, force: opts.Force != nil && *opts.Force, strict: strict, warn: warn}
	req.applied = &unstructured.Unstructured{Object: map[string]interface{}{}}
	// Clients send JSON: decoded as JSON (numbers as int64 or float64,
	// as the YAML decoding gives them), it costs a fraction of the YAML
	// parses upstream makes and tells at once whether a key repeats.
	// Anything else, and any JSON that does not decode to an object, goes
	// the YAML way, for upstream's errors.
	if dups, err := kjson.UnmarshalStrict(patch, &req.applied.Object, kjson.DisallowDuplicateFields); err == nil && req.applied.Object != nil {
		req.unique = len(dups) == 0
	} else {
		req.applied.Object = map[string]interface{}{}
		if err := yaml.Unmarshal(patch, &req.applied.Object); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("error decoding patch: %v", err))
		}
	}
	if c.info.Subresource == "scale" {
		return c.applyScale(name, req, dry)
	}
	fm, err := c.s.fieldManager(c.res, c.info.Subresource)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		found := false
		err := c.write(name, dry, func(cur runtime.Object) (runtime.Object, error) {
			found = true
			next, err := c.applyTo(fm, cur, req)
			if err != nil {
				return nil, err
			}
			if err := c.prepareUpdate(next, cur, false); err != nil {
				return nil, err
			}
			return next, nil
		})
		if found || !apierrors.IsNotFound(err) || c.info.Subresource != "" {
			return err
		}
		// Nothing to apply to: create, as upstream's apply does. Should
		// someone create it first, apply to theirs.
		obj, err := c.applyTo(fm, c.res.newStored(), req)
		if err != nil {
			return err
		}
		m, _ := meta.Accessor(obj)
		if m.GetName() != name {
			return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
		}
		// As upstream, where storage ignores it when creating.
		m.SetResourceVersion("")
		err = c.createNew(obj, dry, false)
		if apierrors.IsAlreadyExists(err) && attempt < 3 {
			continue
		}
		return err
	}
}

// applyTo merges req into live (of the hub's type), returning the new
// object of the hub's type with its managedFields.
func (c *call) applyTo(fm applier, live runtime.Object, req *applyRequest) (runtime.Object, error) {
	liveHasUID := hasUID(live)
	out, err := fm.Apply(live, req.applied.DeepCopy(), req.manager, req.force)
	if err != nil {
		return nil, fieldManagerError(err)
	}
	if !liveHasUID && hasUID(out) {
		m, _ := meta.Accessor(out)
		return nil, apierrors.NewConflict(c.res.GroupResource(), m.GetName(), fmt.Errorf("uid mismatch: the provided object specified uid %s, and no existing object was found", m.GetUID()))
	}
	if err := c.checkApplyStrict(req); err != nil {
		return nil, err
	}
	return out, nil
}

// checkApplyStrict refuses (Strict) or warns about (Warn) a key repeated
// in the applied YAML, once per request, after the merge as upstream.
func (c *call) checkApplyStrict(req *applyRequest) error {
	if req.checked || req.unique || !(req.strict || req.warn) {
		return nil
	}
	req.checked = true
	if err := yaml.UnmarshalStrict(req.patch, &map[string]interface{}{}); err != nil {
		if req.strict {
			return apierrors.NewBadRequest(fmt.Sprintf("error strict decoding patch: %v", err))
		}
		c.warnings = append(c.warnings, err.Error())
	}
	return nil
}

// applier is what apply needs of managedfields.FieldManager.
type applier interface {
	Apply(liveObj, appliedObj runtime.Object, manager string, force bool) (runtime.Object, error)
}

func hasUID(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	return err == nil && m.GetUID() != ""
}
