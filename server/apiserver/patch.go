package apiserver

import (
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patch applies a JSON patch, a JSON merge patch or a strategic merge
// patch to the current object (retrying on a fresh read when someone wrote
// in between, unless the patch itself names a resourceVersion), then
// stores the result as an update.
func (c *call) patch(name string) error {
	var opts metav1.PatchOptions
	dry, strict, warn, err := c.writeParams(&opts, &opts.DryRun, &opts.FieldValidation)
	if err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil {
		return unsupportedPatch(c.r.Header.Get("Content-Type"))
	}
	pt := types.PatchType(mt)
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return apierrors.NewGenericServerResponse(415, "PATCH", c.res.GroupResource(), name, "server-side apply is not supported yet: apply without --server-side", 0, false)
	default:
		return unsupportedPatch(mt)
	}
	patch, err := readBody(c.r)
	if err != nil {
		return err
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
		if err := c.prepareUpdate(next, cur); err != nil {
			return nil, err
		}
		return next, nil
	})
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

func unsupportedPatch(ct string) error {
	return apierrors.NewGenericServerResponse(415, "PATCH", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got %q)", ct), 0, false)
}
