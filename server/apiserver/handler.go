package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/printers"
	"labctl/server/request"
)

// call is one resource request on its way through the handlers.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	info *request.Info
	res  *Resource
	acc  accepted
	// warnings go out as Warning headers before the body.
	warnings []string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if s.serveDiscovery(w, r, parts) {
		return
	}
	info, ok := request.InfoFrom(r.Context())
	if !ok {
		var err error
		if info, err = request.Parse(r); err != nil {
			s.writeError(w, r, apierrors.NewBadRequest(err.Error()))
			return
		}
	}
	if !info.IsResourceRequest {
		s.writeError(w, r, notFoundPath(r))
		return
	}
	res, ok := s.reg.get(schema.GroupVersionResource{Group: info.APIGroup, Version: info.APIVersion, Resource: info.Resource})
	if !ok {
		s.writeError(w, r, notFoundPath(r))
		return
	}
	info = copyInfo(info, res)
	c := &call{s: s, w: w, r: r, ctx: r.Context(), info: info, res: res}
	if err := c.serve(); err != nil {
		c.writeWarnings()
		s.writeError(w, r, err)
	}
}

// copyInfo returns the request's info as the handlers use it: the path of
// a namespace (/api/v1/namespaces/x) names the namespace as its object,
// not as the namespace it lives in, although authorization sees it so.
func copyInfo(info *request.Info, res *Resource) *request.Info {
	out := *info
	if res.GVK.Group == "" && res.Plural == "namespaces" {
		out.Namespace = ""
	}
	return &out
}

// nameFromPath is the object name the path itself gives (a list or watch
// may carry one from its field selector instead).
func (c *call) nameFromPath() string {
	if len(c.info.Parts) > 1 {
		return c.info.Parts[1]
	}
	return ""
}

func (c *call) serve() error {
	info, res := c.info, c.res
	if res.Namespaced != (info.Namespace != "") {
		// A namespaced resource may be listed or watched across all
		// namespaces; everything else needs the namespace in the path,
		// and a cluster-scoped resource has none.
		acrossAll := res.Namespaced && (info.Verb == request.VerbList || info.Verb == request.VerbWatch || (info.Verb == request.VerbGet && c.nameFromPath() == ""))
		if !acrossAll {
			return notFoundPath(c.r)
		}
	}
	if info.Subresource != "" && !res.hasSubresource(info.Subresource) {
		return notFoundPath(c.r)
	}
	if kubeletSubresource(res, info.Subresource) {
		return c.serveKubelet() // podstream.go
	}
	if !res.allows(info.Verb) {
		return apierrors.NewMethodNotSupported(res.GroupResource(), info.Verb)
	}
	acc, err := c.s.negotiateFor(c.r, res)
	if err != nil {
		return err
	}
	c.acc = acc
	if res.custom != nil && res.custom.DeprecationWarning != "" {
		c.warnings = append(c.warnings, res.custom.DeprecationWarning)
	}
	name := c.nameFromPath()
	switch {
	case info.Verb == request.VerbGet && name != "":
		return c.get(name)
	case info.Verb == request.VerbList || info.Verb == request.VerbGet:
		return c.list()
	case info.Verb == request.VerbWatch:
		return c.watch(name)
	case info.Verb == request.VerbCreate && name == "":
		if review := c.s.review(res); review != nil {
			return c.createReview(review)
		}
		return c.create()
	case info.Verb == request.VerbCreate && info.Subresource == "binding":
		return c.bind(name)
	case info.Verb == request.VerbCreate && info.Subresource == "eviction":
		return c.evict(name)
	case info.Verb == request.VerbCreate && info.Subresource == "token":
		return c.createToken(name)
	case info.Verb == request.VerbUpdate && name != "":
		return c.update(name)
	case info.Verb == request.VerbPatch && name != "":
		return c.patch(name)
	case info.Verb == request.VerbDelete && name != "":
		return c.delete(name)
	case info.Verb == request.VerbDeleteCollection:
		return c.deleteCollection()
	}
	return apierrors.NewMethodNotSupported(res.GroupResource(), strings.ToLower(c.r.Method))
}

func (c *call) writeWarnings() {
	for _, w := range c.warnings {
		c.w.Header().Add("Warning", fmt.Sprintf("299 - %q", w))
	}
}

// respond writes obj (an object or a list of the resource's kind, or a
// Status) in the negotiated format, as a Table when asked for one.
func (c *call) respond(code int, obj runtime.Object) {
	obj, err := c.out(obj)
	if err != nil {
		c.s.writeError(c.w, c.r, err)
		return
	}
	c.writeWarnings()
	gv := c.res.GVK.GroupVersion()
	if c.acc.as == "Table" {
		if _, isStatus := obj.(*metav1.Status); !isStatus {
			table, err := c.table(obj, false)
			if err != nil {
				c.s.writeError(c.w, c.r, err)
				return
			}
			c.s.writeObject(c.w, c.r, code, table, metav1.SchemeGroupVersion, c.acc)
			return
		}
	}
	if _, isStatus := obj.(*metav1.Status); isStatus {
		gv = schema.GroupVersion{Version: "v1"}
	}
	c.s.writeObject(c.w, c.r, code, obj, gv, c.acc)
}

// table renders obj (an object or a list) as a Table with the object as
// includeObject asks (default: its metadata).
func (c *call) table(obj runtime.Object, noHeaders bool) (*metav1.Table, error) {
	opts := metav1.TableOptions{}
	if err := c.decodeQuery(c.r.URL.Query(), &opts); err != nil {
		return nil, err
	}
	var table *metav1.Table
	var err error
	if c.res.custom != nil {
		table, err = c.res.custom.Table(obj, noHeaders || opts.NoHeaders, c.s.cfg.Now())
	} else {
		table, err = printers.Table(obj, printers.Options{NoHeaders: noHeaders || opts.NoHeaders, Now: c.s.cfg.Now()})
	}
	if err != nil {
		return nil, err
	}
	if err := printers.SetIncludeObject(table, opts.IncludeObject, obj, c.res.GVK); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return table, nil
}

// selectors parses labelSelector and fieldSelector; a field the kind does
// not support is refused as upstream refuses it.
func (c *call) selectors(lsel, fsel string) (labels.Selector, fields.Selector, error) {
	l, err := labels.Parse(lsel)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	f, err := fields.ParseSelector(fsel)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
	}
	supported := c.res.strategy.Fields(c.res.newStored())
	for _, req := range f.Requirements() {
		if _, ok := supported[req.Field]; !ok {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return l, f, nil
}

func (c *call) dryRun(values []string) (bool, error) {
	for _, v := range values {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q: only All is supported", v))
		}
	}
	return len(values) > 0, nil
}

// strictFields reads fieldValidation: Strict refuses unknown fields,
// Warn (the default) and Ignore accept them, Warn with a warning.
func (c *call) strictFields(v string) (strict, warn bool, err error) {
	switch v {
	case "Strict":
		return true, false, nil
	case "", "Warn":
		return false, true, nil
	case "Ignore":
		return false, false, nil
	}
	return false, false, apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn or Strict, not %q", v))
}
