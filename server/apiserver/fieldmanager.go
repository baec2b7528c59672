package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"labctl/server/openapi"
)

// Server-side apply and metadata.managedFields, as kube-apiserver keeps
// them: every write records which manager set which fields
// (k8s.io/apimachinery's managedfields.FieldManager does the bookkeeping),
// and an apply (PATCH application/apply-patch+yaml) merges the applied
// configuration into the object, taking the fields it names from other
// managers only with force.
//
// The manager of a write is the fieldManager query parameter, else the
// User-Agent up to its first '/' (kubectl, kube-controller-manager...).
// Where upstream's handlers call the field manager, these do:
//
//   - create: after the kind's defaults (upstream decodes with defaulting)
//     and before PrepareForCreate, admission and allocation, so that a
//     pod's service account volume or a Service's cluster IP are nobody's;
//   - update, json/merge/strategic patch: after the strategy kept what the
//     write may not change (status on the main resource, everything but
//     status on /status), so only what the write changed is attributed;
//   - /scale: through managedfields.ScaleHandler, which moves the
//     ownership of spec.replicas between the object and its Scale;
//   - apply: in place of the patch, on the object read from storage (or
//     on an empty one when there is none: apply creates).
//
// Objects carry their managedFields in storage and in every answer.
//
// The field managers type objects with a TypeConverter: for the built-in
// kinds, one built from server/openapi's generated definitions (the same
// schemas /openapi/v2 and /openapi/v3 publish), made once per process on
// the first write that needs it (some 50 ms and 1 MB kept; the start-up
// path never builds it); for a custom resource, the Resource's own.
//
// A custom resource's Resource sets typeConverter: from
// openapi.CustomTypeConverter over the schemas of every served version of
// its CRD, or managedfields.NewDeducedTypeConverter() for a CRD that keeps
// unknown fields at the top (x-kubernetes-preserve-unknown-fields, no
// schema). Its field managers are then upstream's for custom resources
// (managedfields.NewDefaultCRDFieldManager) over *unstructured.Unstructured
// objects, which go from one version to another by their apiVersion alone
// (conversion None) and are defaulted by the Resource's strategy. A new
// Resource (a changed CRD) makes new field managers.

// builtinTypes is the type converter of every built-in kind.
var builtinTypes = sync.OnceValues(func() (managedfields.TypeConverter, error) {
	// A scheme of its own: the server's may gain kinds while it runs.
	scheme, _, _ := newScheme()
	tc, err := openapi.NewTypeConverter(scheme, nil)
	// The build allocates some 12 MB it drops at once: hand them back
	// now rather than keep the heap that high (as the OpenAPI documents
	// do after their build).
	debug.FreeOSMemory()
	return tc, err
})

// fieldManagers are one Resource's field managers, made on first use.
type fieldManagers struct {
	mu       sync.Mutex
	managers map[string]*managedfields.FieldManager // by subresource: "", "status", "scale"
	// off leaves managedFields alone on ordinary writes (apply still
	// works): benchmarks measure what the bookkeeping costs with it.
	off bool
}

// replicasPath is where the built-in kinds with a scale subresource keep
// their replicas.
var replicasPath = fieldpath.MakePathOrDie("spec", "replicas")

// fieldManager returns r's field manager for a subresource ("", "status"
// or "scale").
func (s *Server) fieldManager(r *Resource, sub string) (*managedfields.FieldManager, error) {
	r.fields.mu.Lock()
	defer r.fields.mu.Unlock()
	if fm := r.fields.managers[sub]; fm != nil {
		return fm, nil
	}
	fm, err := s.newFieldManager(r, sub)
	if err != nil {
		s.cfg.Logger.Error("field manager", "resource", r.GVR().String(), "subresource", sub, "err", err)
		return nil, apierrors.NewInternalError(err)
	}
	if r.fields.managers == nil {
		r.fields.managers = map[string]*managedfields.FieldManager{}
	}
	r.fields.managers[sub] = fm
	return fm, nil
}

func (s *Server) newFieldManager(r *Resource, sub string) (*managedfields.FieldManager, error) {
	kind, hub := r.GVK, r.GVK.GroupVersion()
	if r.hub != nil {
		// Served as this version, kept as the hub's: the managers see
		// the served version (their entries name it, as upstream's),
		// the handlers the hub's.
		hub = r.hub.GVK.GroupVersion()
	}
	conv := runtime.ObjectConvertor(objectConverter{s})
	var creater runtime.ObjectCreater = s.scheme
	tc := r.typeConverter
	if sub == "scale" {
		// The Scale is a built-in kind whatever the resource.
		kind, hub, tc = scaleGV.WithKind("Scale"), scaleGV, nil
	}
	custom := tc != nil
	if custom {
		// A custom resource: unstructured objects whose versions differ
		// only in apiVersion (conversion None); the handlers keep them in
		// the served version.
		conv, creater = unstructuredConverter{}, unstructuredCreater{}
	} else {
		var err error
		if tc, err = builtinTypes(); err != nil {
			return nil, err
		}
	}
	reset := resetFields(r, sub)
	def := defaulter{s: s, r: r}
	if custom {
		return managedfields.NewDefaultCRDFieldManager(tc, conv, def, creater, kind, hub, sub, reset)
	}
	return managedfields.NewDefaultFieldManager(tc, conv, def, creater, kind, hub, sub, reset)
}

// resetFields are the fields a write through sub cannot set (the strategy
// puts them back), which upstream's strategies list in GetResetFields: a
// manager applying them does not own them. The main resource of a kind
// with a status subresource keeps its status; /status keeps the spec.
func resetFields(r *Resource, sub string) map[fieldpath.APIVersion]fieldpath.Filter {
	var paths []fieldpath.Path
	switch {
	case sub == "" && r.hasSubresource("status"):
		paths = []fieldpath.Path{fieldpath.MakePathOrDie("status")}
	case sub == "status":
		paths = []fieldpath.Path{fieldpath.MakePathOrDie("spec")}
	default:
		return nil
	}
	filter := fieldpath.NewExcludeSetFilter(fieldpath.NewSet(paths...))
	out := map[fieldpath.APIVersion]fieldpath.Filter{fieldpath.APIVersion(r.GVK.GroupVersion().String()): filter}
	if r.hub != nil {
		out[fieldpath.APIVersion(r.hub.GVK.GroupVersion().String())] = filter
	}
	return out
}

// objectConverter converts built-in objects between the versions the
// field managers meet: unstructured to typed (what apply produces), a kind
// to itself (the handlers' objects already are the served version), and
// between a served version and its hub with convert.go's conversions
// (HorizontalPodAutoscaler autoscaling/v1 and v2, Event core/v1 and
// events.k8s.io/v1), as a manager of one version may own fields of an
// object written in the other. As upstream's unsafe converter, it sets the
// kind on the object it is given rather than copying it.
type objectConverter struct{ s *Server }

func (c objectConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	if u, ok := in.(runtime.Unstructured); ok {
		gvk := in.GetObjectKind().GroupVersionKind()
		typed, err := c.s.scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err != nil {
			return nil, fmt.Errorf("converting %v from unstructured: %w", gvk, err)
		}
		in = typed
	}
	kinds, _, err := c.s.scheme.ObjectKinds(in)
	if err != nil {
		return nil, err
	}
	if gvk, ok := target.KindForGroupVersionKinds(kinds); ok {
		for _, k := range kinds {
			if k == gvk {
				in.GetObjectKind().SetGroupVersionKind(gvk)
				return in, nil
			}
		}
	}
	for _, k := range kinds {
		for _, v := range c.s.versionConversions(k) {
			if gvk, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{v.to}); ok && gvk == v.to {
				out, err := v.fn(in)
				if err != nil {
					return nil, err
				}
				out.GetObjectKind().SetGroupVersionKind(v.to)
				return out, nil
			}
		}
	}
	return nil, runtime.NewNotRegisteredErrForTarget(c.s.scheme.Name(), reflect.TypeOf(in), target)
}

func (objectConverter) Convert(in, out, context interface{}) error {
	return errors.New("apiserver: the field managers' converter converts whole objects only")
}

func (objectConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return "", "", fmt.Errorf("apiserver: field label %q of %v: not supported by the field managers' converter", label, gvk)
}

// versionConversion turns an object of one kind into another version's.
type versionConversion struct {
	to schema.GroupVersionKind
	fn func(runtime.Object) (runtime.Object, error)
}

// versionConversions lists the conversions from kind: each resource served
// as one version and kept as another converts both ways.
func (s *Server) versionConversions(from schema.GroupVersionKind) []versionConversion {
	var out []versionConversion
	for _, r := range s.reg.all() {
		if r.hub == nil || r.conv == nil {
			continue
		}
		switch from {
		case r.GVK:
			out = append(out, versionConversion{to: r.hub.GVK, fn: r.conv.toHub})
		case r.hub.GVK:
			out = append(out, versionConversion{to: r.GVK, fn: r.conv.fromHub})
		}
	}
	return out
}

// unstructuredConverter converts custom objects between versions as a CRD
// without a conversion webhook does: only apiVersion changes.
type unstructuredConverter struct{}

func (unstructuredConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("apiserver: custom resource converter given %T", in)
	}
	gvk := u.GroupVersionKind()
	to, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk})
	if !ok {
		return nil, runtime.NewNotRegisteredErrForTarget("custom resources", reflect.TypeOf(in), target)
	}
	if to == gvk {
		return u, nil
	}
	out := u.DeepCopy()
	out.SetGroupVersionKind(to)
	return out, nil
}

func (unstructuredConverter) Convert(in, out, context interface{}) error {
	return errors.New("apiserver: the custom resource converter converts whole objects only")
}

func (unstructuredConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return "", "", fmt.Errorf("apiserver: field label %q of %v: not supported by the custom resource converter", label, gvk)
}

// unstructuredCreater makes empty custom objects.
type unstructuredCreater struct{}

func (unstructuredCreater) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{Object: map[string]interface{}{}}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// defaulter fills an applied object's defaults, in the version it was
// applied in, as upstream's apply does before converting it to the hub.
type defaulter struct {
	s *Server
	r *Resource
}

func (d defaulter) Default(obj runtime.Object) {
	if _, ok := obj.(runtime.Unstructured); ok {
		// A custom resource: its strategy defaults from the CRD schema.
		d.r.strategy.Default(obj)
		return
	}
	kinds, _, err := d.s.scheme.ObjectKinds(obj)
	if err != nil || len(kinds) == 0 {
		return
	}
	if st, ok := d.s.cfg.Strategies(kinds[0]); ok {
		st.Default(obj)
	}
}

// ---- the manager of a write

// managerName is who a write's fields go to: the fieldManager query
// parameter, else the User-Agent's product (upstream's managerOrUserAgent).
func (c *call) managerName() string {
	if m := c.r.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	return prefixFromUserAgent(c.r.UserAgent())
}

// prefixFromUserAgent is what comes before the first '/' of a User-Agent,
// printable characters only, cut at the longest fieldManager allowed.
func prefixFromUserAgent(u string) string {
	m, _, _ := strings.Cut(u, "/")
	var buf bytes.Buffer
	for _, r := range m {
		if !unicode.IsPrint(r) {
			continue
		}
		if buf.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		buf.WriteRune(r)
	}
	return buf.String()
}

// ---- bookkeeping on ordinary writes

// trackCreate records the fields of a new object as its creator's: obj
// against an empty live object.
func (c *call) trackCreate(obj runtime.Object) {
	c.track(c.res.newStored(), obj, c.info.Subresource)
}

// trackUpdate records what next changes from live as the writer's.
func (c *call) trackUpdate(next, live runtime.Object) {
	c.track(live, next, c.info.Subresource)
}

// track sets next's managedFields from live's (or from what the client
// sent, when valid) and the fields next changes. Should the bookkeeping
// fail, next keeps live's managedFields and the write goes on, as
// upstream's UpdateNoErrors does.
func (c *call) track(live, next runtime.Object, sub string) {
	if c.res.fields.off {
		return
	}
	nm, err := meta.Accessor(next)
	if err != nil {
		return
	}
	fail := func(err error) {
		c.s.cfg.Logger.Error("managedFields not updated", "resource", c.res.GVR().String(), "subresource", sub, "name", nm.GetName(), "err", err)
		if lm, err := meta.Accessor(live); err == nil {
			nm.SetManagedFields(lm.GetManagedFields())
		}
	}
	fm, err := c.s.fieldManager(c.res, sub)
	if err != nil {
		fail(err)
		return
	}
	out, err := fm.Update(live, next, c.managerName())
	if err != nil {
		fail(err)
		return
	}
	if out != next {
		// The manager returns the object it was given; should it ever
		// return a copy, the managedFields are what it changed.
		if om, err := meta.Accessor(out); err == nil {
			nm.SetManagedFields(om.GetManagedFields())
		}
	}
}

// fieldManagerError turns a field manager's error into the Status upstream
// answers with: its own API errors (apply conflicts, a wrong apiVersion)
// as they are, anything else (an applied field the schema does not have)
// as a 500 whose message is the error, as upstream's handlers word errors
// that are not API errors.
func fieldManagerError(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInternalServerError,
		Reason:  metav1.StatusReasonUnknown,
		Message: err.Error(),
	}}
}

// scaleHandler moves managedFields between r's object and its Scale.
func scaleHandler(r *Resource, parent []metav1.ManagedFieldsEntry) *managedfields.ScaleHandler {
	gv := r.GVK.GroupVersion()
	path := replicasPath
	if r.custom != nil {
		path = fieldpath.MakePathOrDie(toInterfaces(scalePathsOf(r).spec)...)
	}
	return managedfields.NewScaleHandler(parent, gv, managedfields.ResourcePathMappings{gv.String(): path})
}

func toInterfaces(fields []string) []interface{} {
	out := make([]interface{}, len(fields))
	for i, f := range fields {
		out[i] = f
	}
	return out
}
