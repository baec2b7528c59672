package apiserver

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxBodyBytes bounds a request body, as upstream's 3 MiB limit does.
const maxBodyBytes = 3 << 20

// accepted is what the client asked for in Accept.
type accepted struct {
	info runtime.SerializerInfo
	// as is "Table" or "" (the object itself).
	as string
}

// negotiate picks the response format: the first media type in Accept
// that the server can write, JSON when Accept allows anything or names
// nothing it knows. Table is honoured as JSON (or protobuf) tables.
func (s *Server) negotiate(r *http.Request) (accepted, error) {
	return s.negotiateFor(r, nil)
}

// negotiateFor negotiates the answer of a request about res: custom
// resources have no protobuf form, as upstream's, so a client that lists
// protobuf first gets JSON when it accepts that.
func (s *Server) negotiateFor(r *http.Request, res *Resource) (accepted, error) {
	header := r.Header.Get("Accept")
	if header == "" {
		header = "application/json"
	}
	for _, clause := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		if mt == "*/*" || mt == "application/*" {
			mt = runtime.ContentTypeJSON
		}
		info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mt)
		if !ok {
			continue
		}
		if res != nil && res.custom != nil && mt == runtime.ContentTypeProtobuf {
			continue
		}
		as := params["as"]
		switch {
		case as == "":
		case as == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1"):
		default:
			continue // PartialObjectMetadata and friends: not served yet
		}
		return accepted{info: info, as: as}, nil
	}
	return accepted{}, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf", 0, false)
}

// writeObject encodes obj as version gv in the negotiated format.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object, gv schema.GroupVersion, acc accepted) {
	ser := acc.info.Serializer
	if pretty := r.URL.Query().Get("pretty"); (pretty == "true" || pretty == "1") && acc.info.PrettySerializer != nil {
		ser = acc.info.PrettySerializer
	}
	var enc runtime.Encoder = ser
	if _, custom := obj.(runtime.Unstructured); !custom {
		// Custom objects come in their version already; the scheme
		// does not know their kinds.
		enc = s.codecs.EncoderForVersion(ser, gv)
	}
	w.Header().Set("Content-Type", acc.info.MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	if err := enc.Encode(obj, w); err != nil {
		s.cfg.Logger.Debug("write response", "err", err)
	}
}

// writeJSON writes a discovery or meta object as JSON whatever Accept says
// (aggregated-discovery clients read plain JSON as legacy discovery).
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	if err := info.Serializer.Encode(obj, w); err != nil {
		s.cfg.Logger.Debug("write response", "err", err)
	}
}

// writeError writes err as a metav1.Status: API errors keep their code
// and reason, anything else is a 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var status metav1.Status
	if se, ok := err.(apierrors.APIStatus); ok {
		status = se.Status()
	} else {
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		status = apierrors.NewInternalError(err).ErrStatus
	}
	status.Kind, status.APIVersion = "Status", "v1"
	if status.Status == "" {
		status.Status = metav1.StatusFailure
	}
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	acc, nerr := s.negotiate(r)
	if nerr != nil || acc.as != "" {
		info, _ := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
		acc = accepted{info: info}
	}
	s.writeObject(w, r, int(status.Code), &status, schema.GroupVersion{Version: "v1"}, acc)
}

func notFoundPath(r *http.Request) error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, r.Method, schema.GroupResource{}, "", "the server could not find the requested resource", 0, false)
}

// readBody reads the request body up to maxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading the request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("the request body is over the limit of %d bytes", maxBodyBytes))
	}
	return data, nil
}

// decodeBody decodes a create or update body into a new object of r's
// kind. The body may be JSON, YAML or protobuf; its apiVersion and kind,
// when given, must be the resource's. strict reports unknown and
// duplicate fields (fieldValidation=Strict) as errors; otherwise they come
// back as warnings.
func (s *Server) decodeBody(req *http.Request, res *Resource, data []byte, strict bool) (runtime.Object, []string, error) {
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, err = runtime.ContentTypeJSON, nil
	}
	if err != nil {
		return nil, nil, unsupportedMediaType(ct)
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mt)
	if !ok || (res.custom != nil && mt == runtime.ContentTypeProtobuf) {
		return nil, nil, unsupportedMediaType(ct)
	}
	dec := info.Serializer
	if info.StrictSerializer != nil {
		dec = info.StrictSerializer
	}
	return decodeAs(dec, res, data, strict)
}

// decodeAs decodes data into a new object of res's kind with dec, a
// strict decoder where the format has one: unknown and duplicate fields
// are an error when strict, warnings otherwise. The data's apiVersion and
// kind, when given, must be res's.
func decodeAs(dec runtime.Decoder, res *Resource, data []byte, strict bool) (runtime.Object, []string, error) {
	gvk := res.GVK
	obj, got, err := dec.Decode(data, &gvk, res.newObj())
	var warnings []string
	if err != nil && runtime.IsStrictDecodingError(err) && obj != nil {
		errs := err.(interface{ Errors() []error }).Errors()
		if strict {
			return nil, nil, apierrors.NewBadRequest(notHandled(res, strictMessage(errs)))
		}
		for _, e := range errs {
			warnings = append(warnings, e.Error())
		}
		err = nil
	}
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(notHandled(res, err.Error()))
	}
	if got != nil && (got.Group != gvk.Group || got.Version != gvk.Version || got.Kind != gvk.Kind) {
		if got.GroupVersion() != gvk.GroupVersion() {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
		}
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", got.Kind, gvk.Kind))
	}
	if res.custom != nil {
		// Fields the schema does not declare are dropped, as upstream
		// prunes them, and reported as unknown fields.
		var unknown []string
		for _, f := range res.custom.Prune(obj) {
			unknown = append(unknown, fmt.Sprintf("unknown field %q", f))
		}
		if len(unknown) > 0 && strict {
			return nil, nil, apierrors.NewBadRequest(notHandled(res, "strict decoding error: "+strings.Join(unknown, ", ")))
		}
		warnings = append(warnings, unknown...)
	}
	return obj, warnings, nil
}

// notHandled words a decoding error as upstream does.
func notHandled(r *Resource, msg string) string {
	return fmt.Sprintf("%s in version %q cannot be handled as a %s: %s", r.GVK.Kind, r.GVK.Version, r.GVK.Kind, msg)
}

func strictMessage(errs []error) string {
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return "strict decoding error: " + strings.Join(msgs, ", ")
}

func unsupportedMediaType(ct string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got %q)", ct), 0, false)
}
