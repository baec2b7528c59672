package openapi

import (
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
)

// This file turns Resources into the route descriptions the kube-openapi
// builders consume (common.RouteContainer / Route / Parameter), following
// the paths, operation ids, actions and parameters kube-apiserver
// publishes. The descriptions are our own wording.

// Media types of request bodies.
const (
	mtAny        = "*/*"
	mtJSONPatch  = "application/json-patch+json"
	mtMergePatch = "application/merge-patch+json"
	mtSMPatch    = "application/strategic-merge-patch+json"
	mtApplyPatch = "application/apply-patch+yaml"
)

// Definition keys of the apimachinery and fixed subresource models.
var (
	keyStatus        = metav1.Status{}.OpenAPIModelName()
	keyDeleteOptions = metav1.DeleteOptions{}.OpenAPIModelName()
	keyPatch         = metav1.Patch{}.OpenAPIModelName()
	keyWatchEvent    = metav1.WatchEvent{}.OpenAPIModelName()
	keyObjectMeta    = metav1.ObjectMeta{}.OpenAPIModelName()
	keyListMeta      = metav1.ListMeta{}.OpenAPIModelName()
	keyScale         = autoscalingv1.Scale{}.OpenAPIModelName()
	keyEviction      = policyv1.Eviction{}.OpenAPIModelName()
	keyBinding       = corev1.Binding{}.OpenAPIModelName()
	keyTokenRequest  = authenticationv1.TokenRequest{}.OpenAPIModelName()
)

var (
	gvkScale        = schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
	gvkEviction     = schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}
	gvkBinding      = schema.GroupVersionKind{Version: "v1", Kind: "Binding"}
	gvkTokenRequest = schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}
)

// modelString is the response model of log and connect operations.
const modelString = model("string")

// ---- common.Parameter, common.StatusCodeResponse, common.Route, common.RouteContainer

type param struct {
	name     string
	desc     string
	kind     common.ParameterKind
	dataType string
	required bool
}

func (p *param) Name() string                 { return p.name }
func (p *param) Description() string          { return p.desc }
func (p *param) Required() bool               { return p.required }
func (p *param) Kind() common.ParameterKind   { return p.kind }
func (p *param) DataType() string             { return p.dataType }
func (p *param) AllowMultiple() bool          { return false }
func (p *param) MarshalJSON() ([]byte, error) { return []byte(`"` + p.name + `"`), nil }

type response struct {
	code  int
	msg   string
	model model
}

func (r response) Code() int          { return r.code }
func (r response) Message() string    { return r.msg }
func (r response) Model() interface{} { return r.model }

type route struct {
	method    string
	path      string
	opID      string
	tag       string
	desc      string
	params    []common.Parameter
	consumes  []string
	produces  []string
	action    string
	gvk       schema.GroupVersionKind
	body      model // "" when the operation takes no body
	responses []common.StatusCodeResponse
}

func (r *route) Method() string                 { return r.method }
func (r *route) Path() string                   { return r.path }
func (r *route) OperationName() string          { return r.opID }
func (r *route) Parameters() []common.Parameter { return r.params }
func (r *route) Description() string            { return r.desc }
func (r *route) Consumes() []string             { return r.consumes }
func (r *route) Produces() []string             { return r.produces }
func (r *route) Metadata() map[string]interface{} {
	return map[string]interface{}{extAction: r.action, extGVK: toGVKValue(r.gvk)}
}
func (r *route) RequestPayloadSample() interface{} {
	if r.body == "" {
		return nil
	}
	return r.body
}
func (r *route) ResponsePayloadSample() interface{}               { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse { return r.responses }

type container struct {
	root   string
	routes []common.Route
}

func (c *container) RootPath() string                   { return c.root }
func (c *container) PathParameters() []common.Parameter { return nil }
func (c *container) Routes() []common.Route             { return c.routes }

// operationIDAndTags is the builders' GetOperationIDAndTagsFromRoute.
func operationIDAndTags(r common.Route) (string, []string, error) {
	if rt, ok := r.(*route); ok && rt.tag != "" {
		return rt.opID, []string{rt.tag}, nil
	}
	return r.OperationName(), nil, nil
}

// ---- parameters

func query(name, dataType, desc string) *param {
	return &param{name: name, desc: desc, kind: common.QueryParameterKind, dataType: dataType}
}

var (
	pPretty          = query("pretty", "string", "If 'true', the output is pretty printed.")
	pDryRun          = query("dryRun", "string", "When present, the modifications are not persisted. The only valid value is All: run all dry-run stages.")
	pFieldManager    = query("fieldManager", "string", "Name of the actor making the change, used for field ownership (managedFields). At most 128 printable characters. Required for apply patches.")
	pFieldValidation = query("fieldValidation", "string", "How the server treats unknown or duplicate fields in the request object: Ignore (drop them silently), Warn (drop them with a warning header; the default) or Strict (fail the request with BadRequest).")
	pForce           = query("force", "boolean", "Force an apply request: take over fields owned by other field managers. Must be unset for other patch types.")

	pAllowWatchBookmarks  = query("allowWatchBookmarks", "boolean", "Ask a watch for BOOKMARK events; servers may ignore it. Ignored unless watch is true.")
	pContinue             = query("continue", "string", "Continue token returned by a previous list call with limit, to fetch the next chunk.")
	pFieldSelector        = query("fieldSelector", "string", "Restrict the returned objects by their fields. Defaults to everything.")
	pLabelSelector        = query("labelSelector", "string", "Restrict the returned objects by their labels. Defaults to everything.")
	pLimit                = query("limit", "integer", "Maximum number of objects to return; the response carries a continue token when more remain.")
	pResourceVersion      = query("resourceVersion", "string", "Constrain which resource versions the request may be served from; see resourceVersionMatch.")
	pResourceVersionMatch = query("resourceVersionMatch", "string", "How resourceVersion applies to list calls: Exact or NotOlderThan.")
	pSendInitialEvents    = query("sendInitialEvents", "boolean", "With watch=true, start the watch stream with synthetic events for the current state, followed by a bookmark.")
	pTimeoutSeconds       = query("timeoutSeconds", "integer", "Timeout for the list or watch call, regardless of activity.")
	pWatch                = query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update and remove notifications.")

	pGracePeriodSeconds = query("gracePeriodSeconds", "integer", "Seconds before the object is deleted; zero means immediately. Defaults to the per-type default.")
	pOrphanDependents   = query("orphanDependents", "boolean", "Deprecated: use propagationPolicy. Whether dependents are orphaned.")
	pPropagationPolicy  = query("propagationPolicy", "string", "Whether and how garbage collection is performed: Orphan, Background or Foreground.")

	pNamespace = &param{name: "namespace", desc: "object name and auth scope, such as for teams and projects", kind: common.PathParameterKind, dataType: "string", required: true}
)

var listParams = []common.Parameter{pAllowWatchBookmarks, pContinue, pFieldSelector, pLabelSelector, pLimit,
	pResourceVersion, pResourceVersionMatch, pSendInitialEvents, pTimeoutSeconds, pWatch}

var deleteParams = []common.Parameter{pDryRun, pGracePeriodSeconds, pOrphanDependents, pPropagationPolicy}

var deleteCollectionParams = []common.Parameter{pContinue, pDryRun, pFieldSelector, pGracePeriodSeconds,
	pLabelSelector, pLimit, pOrphanDependents, pPropagationPolicy, pResourceVersion, pResourceVersionMatch,
	pSendInitialEvents, pTimeoutSeconds}

var writeParams = []common.Parameter{pDryRun, pFieldManager, pFieldValidation}

var patchParams = []common.Parameter{pDryRun, pFieldManager, pFieldValidation, pForce}

func nameParam(kind string) *param {
	return &param{name: "name", desc: "name of the " + kind, kind: common.PathParameterKind, dataType: "string", required: true}
}

func bodyParam(required bool) *param {
	return &param{name: "body", kind: common.BodyParameterKind, dataType: "body", required: required}
}

// Parameters of the pod log and connect subresources.
var (
	pContainer = query("container", "string", "The container to use; defaults to the only container when there is one.")
	pStdin     = query("stdin", "boolean", "Redirect the standard input stream of the container.")
	pStdout    = query("stdout", "boolean", "Redirect the standard output stream of the container.")
	pStderr    = query("stderr", "boolean", "Redirect the standard error stream of the container.")
	pTTY       = query("tty", "boolean", "Allocate a terminal; stderr is merged into stdout.")
	pCommand   = query("command", "string", "The command to run, one argument per parameter.")
	pPorts     = query("ports", "integer", "Ports to forward.")
	pProxyPath = query("path", "string", "Path of the request sent on by the proxy.")

	logParams = []common.Parameter{pContainer,
		query("follow", "boolean", "Follow the log stream."),
		query("insecureSkipTLSVerifyBackend", "boolean", "Do not verify the serving certificate of the kubelet the logs are read from."),
		query("limitBytes", "integer", "Stop after this many bytes of log output."),
		query("previous", "boolean", "Return the logs of the previous, terminated, container instance."),
		query("sinceSeconds", "integer", "Only logs newer than this many seconds."),
		query("stream", "string", "Which stream to return: All, Stdout or Stderr."),
		query("tailLines", "integer", "Number of lines from the end of the log to show."),
		query("timestamps", "boolean", "Prefix every line with an RFC3339 timestamp."),
	}
)

// ---- naming

// groupCamel is the group as it appears in operation ids: "" is Core,
// "rbac.authorization.k8s.io" is RbacAuthorization, "stable.example.com"
// is StableExampleCom.
func groupCamel(group string) string {
	if group == "" {
		return "Core"
	}
	group = strings.TrimSuffix(group, ".k8s.io")
	var b strings.Builder
	for _, part := range strings.FieldsFunc(group, func(r rune) bool { return r == '.' || r == '-' }) {
		b.WriteString(upperFirst(part))
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// gvPath is the group-version's path below /openapi/v3 and its API root
// without the leading slash: "api/v1" or "apis/apps/v1".
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// ---- route building

// resolved is a Resource with the definition keys of its kind and list.
type resolved struct {
	Resource
	kindKey string
	listKey string // "" when the scheme has no list kind (create-only resources)
	custom  bool   // not in the scheme: a custom resource
}

// routeBuilder builds the routes of one group-version.
type routeBuilder struct {
	gv         schema.GroupVersion
	root       string // "/api/v1"
	gvName     string // "CoreV1"
	tag        string // "core_v1"
	mediaTypes []string
	watchTypes []string
	routes     []common.Route
	models     map[string]bool // definition keys the routes refer to
}

func newRouteBuilder(gv schema.GroupVersion, mediaTypes []string) *routeBuilder {
	g := groupCamel(gv.Group)
	b := &routeBuilder{
		gv:         gv,
		root:       "/" + gvPath(gv),
		gvName:     g + upperFirst(gv.Version),
		tag:        lowerFirst(g) + "_" + gv.Version,
		mediaTypes: mediaTypes,
		models:     map[string]bool{},
	}
	for _, mt := range mediaTypes {
		switch mt {
		case "application/json", "application/vnd.kubernetes.protobuf", "application/cbor":
			b.watchTypes = append(b.watchTypes, mt+";stream=watch")
		}
	}
	return b
}

func (b *routeBuilder) container() *container {
	return &container{root: b.root, routes: b.routes}
}

func responses(m model, codes ...int) []common.StatusCodeResponse {
	out := make([]common.StatusCodeResponse, 0, len(codes))
	for _, c := range codes {
		out = append(out, response{code: c, msg: http.StatusText(c), model: m})
	}
	return out
}

func join(lists ...[]common.Parameter) []common.Parameter {
	var out []common.Parameter
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func (b *routeBuilder) add(r *route) {
	r.tag = b.tag
	if r.body != "" && r.body != modelString {
		b.models[string(r.body)] = true
	}
	for _, resp := range r.responses {
		if m := resp.Model().(model); m != modelString {
			b.models[string(m)] = true
		}
	}
	b.routes = append(b.routes, r)
}

// addResource adds the routes of one resource and its subresources.
func (b *routeBuilder) addResource(res resolved) {
	kind := res.GVK.Kind
	has := map[string]bool{}
	for _, v := range res.Verbs {
		has[v] = true
	}
	ns, nsName := []common.Parameter(nil), ""
	prefix := b.root
	if res.Namespaced {
		ns, nsName = []common.Parameter{pNamespace}, "Namespaced"
		prefix += "/namespaces/{namespace}"
	}
	collection := prefix + "/" + res.Plural
	item := collection + "/{name}"
	name := nameParam(kind)
	kindModel, listModel := model(res.kindKey), model(res.listKey)
	objectTypes := b.mediaTypes
	patchTypes := []string{mtJSONPatch, mtMergePatch, mtApplyPatch}
	if !res.custom {
		patchTypes = []string{mtJSONPatch, mtMergePatch, mtSMPatch, mtApplyPatch}
	}
	id := func(verb, suffix string) string { return verb + b.gvName + nsName + kind + suffix }
	pretty := []common.Parameter{pPretty}

	if has["list"] && res.listKey != "" {
		b.add(&route{method: "GET", path: collection, opID: id("list", ""),
			desc:   "list or watch objects of kind " + kind,
			params: join(ns, pretty, listParams), consumes: []string{mtAny}, produces: append(append([]string{}, objectTypes...), b.watchTypes...),
			action: "list", gvk: res.GVK, responses: responses(listModel, 200)})
		if res.Namespaced {
			b.add(&route{method: "GET", path: b.root + "/" + res.Plural, opID: "list" + b.gvName + kind + "ForAllNamespaces",
				desc:   "list or watch objects of kind " + kind + " in all namespaces",
				params: join(pretty, listParams), consumes: []string{mtAny}, produces: append(append([]string{}, objectTypes...), b.watchTypes...),
				action: "list", gvk: res.GVK, responses: responses(listModel, 200)})
		}
	}
	if has["create"] {
		b.add(&route{method: "POST", path: collection, opID: id("create", ""),
			desc:   "create a " + kind,
			params: join(ns, pretty, []common.Parameter{bodyParam(true)}, writeParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "post", gvk: res.GVK, body: kindModel, responses: responses(kindModel, 200, 201, 202)})
	}
	if has["deletecollection"] {
		b.add(&route{method: "DELETE", path: collection, opID: "delete" + b.gvName + "Collection" + nsName + kind,
			desc:   "delete collection of " + kind,
			params: join(ns, pretty, []common.Parameter{bodyParam(false)}, deleteCollectionParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "deletecollection", gvk: res.GVK, body: model(keyDeleteOptions), responses: responses(model(keyStatus), 200)})
	}
	if has["get"] {
		b.add(&route{method: "GET", path: item, opID: id("read", ""),
			desc:   "read the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty), consumes: []string{mtAny}, produces: objectTypes,
			action: "get", gvk: res.GVK, responses: responses(kindModel, 200)})
	}
	if has["update"] {
		b.add(&route{method: "PUT", path: item, opID: id("replace", ""),
			desc:   "replace the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, writeParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "put", gvk: res.GVK, body: kindModel, responses: responses(kindModel, 200, 201)})
	}
	if has["patch"] {
		b.add(&route{method: "PATCH", path: item, opID: id("patch", ""),
			desc:   "partially update the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, patchParams), consumes: patchTypes, produces: objectTypes,
			action: "patch", gvk: res.GVK, body: model(keyPatch), responses: responses(kindModel, 200, 201)})
	}
	if has["delete"] {
		b.add(&route{method: "DELETE", path: item, opID: id("delete", ""),
			desc:   "delete a " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(false)}, deleteParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "delete", gvk: res.GVK, body: model(keyDeleteOptions), responses: responses(model(keyStatus), 200, 202)})
	}
	if has["watch"] {
		watchRoot := b.root + "/watch"
		watchPrefix := watchRoot
		if res.Namespaced {
			watchPrefix += "/namespaces/{namespace}"
		}
		watchTypes := b.watchTypes
		if len(watchTypes) == 0 {
			watchTypes = objectTypes
		}
		watchResp := responses(model(keyWatchEvent), 200)
		if has["get"] {
			b.add(&route{method: "GET", path: watchPrefix + "/" + res.Plural + "/{name}", opID: id("watch", ""),
				desc:   "watch changes to an object of kind " + kind + ". Deprecated: use the 'watch' parameter with a list operation, filtered to one object with 'fieldSelector'.",
				params: join([]common.Parameter{name}, ns, pretty, listParams), consumes: []string{mtAny}, produces: watchTypes,
				action: "watch", gvk: res.GVK, responses: watchResp})
		}
		b.add(&route{method: "GET", path: watchPrefix + "/" + res.Plural, opID: id("watch", "List"),
			desc:   "watch individual changes to a list of " + kind + ". Deprecated: use the 'watch' parameter with a list operation.",
			params: join(ns, pretty, listParams), consumes: []string{mtAny}, produces: watchTypes,
			action: "watchlist", gvk: res.GVK, responses: watchResp})
		if res.Namespaced {
			b.add(&route{method: "GET", path: watchRoot + "/" + res.Plural, opID: "watch" + b.gvName + kind + "ListForAllNamespaces",
				desc:   "watch individual changes to a list of " + kind + " in all namespaces. Deprecated: use the 'watch' parameter with a list operation.",
				params: join(pretty, listParams), consumes: []string{mtAny}, produces: watchTypes,
				action: "watchlist", gvk: res.GVK, responses: watchResp})
		}
	}
	for _, sub := range res.Subresources {
		b.addSubresource(res, sub, item, name, ns, nsName, kindModel, patchTypes)
	}
}

// addSubresource adds the routes of res/sub below the item path.
func (b *routeBuilder) addSubresource(res resolved, sub, item string, name *param, ns []common.Parameter, nsName string, kindModel model, patchTypes []string) {
	kind := res.GVK.Kind
	path := item + "/" + sub
	suffix := upperFirst(sub)
	id := func(verb string) string { return verb + b.gvName + nsName + kind + suffix }
	pretty := []common.Parameter{pPretty}
	objectTypes := b.mediaTypes

	// getPutPatch adds read, replace and partially update operations whose
	// objects are m (with the group-version-kind gvk).
	getPutPatch := func(m model, gvk schema.GroupVersionKind, what string) {
		b.add(&route{method: "GET", path: path, opID: id("read"),
			desc:   "read " + what + " of the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty), consumes: []string{mtAny}, produces: objectTypes,
			action: "get", gvk: gvk, responses: responses(m, 200)})
		b.add(&route{method: "PUT", path: path, opID: id("replace"),
			desc:   "replace " + what + " of the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, writeParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "put", gvk: gvk, body: m, responses: responses(m, 200, 201)})
		b.add(&route{method: "PATCH", path: path, opID: id("patch"),
			desc:   "partially update " + what + " of the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, patchParams), consumes: patchTypes, produces: objectTypes,
			action: "patch", gvk: gvk, body: model(keyPatch), responses: responses(m, 200, 201)})
	}
	// create adds a POST taking and returning m.
	create := func(m model, gvk schema.GroupVersionKind) {
		b.add(&route{method: "POST", path: path, opID: id("create"),
			desc:   "create " + lowerFirst(gvk.Kind) + " of a " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, writeParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "post", gvk: gvk, body: m, responses: responses(m, 200, 201, 202)})
	}
	// connect adds streaming operations; their kind is <Kind><Sub>Options
	// (PodExecOptions, ServiceProxyOptions, ...), as upstream.
	connectGVK := res.GVK.GroupVersion().WithKind(kind + suffix + "Options")
	connect := func(p string, methods []string, params []common.Parameter, idSuffix string) {
		for _, m := range methods {
			b.add(&route{method: m, path: p, opID: "connect" + b.gvName + upperFirst(strings.ToLower(m)) + nsName + kind + suffix + idSuffix,
				desc:   "connect " + m + " requests to " + sub + " of " + kind,
				params: params, consumes: []string{mtAny}, produces: []string{mtAny},
				action: "connect", gvk: connectGVK, responses: responses(modelString, 200)})
		}
	}

	switch sub {
	case "scale":
		getPutPatch(model(keyScale), gvkScale, "scale")
	case "eviction":
		create(model(keyEviction), gvkEviction)
	case "binding":
		create(model(keyBinding), gvkBinding)
	case "token":
		create(model(keyTokenRequest), gvkTokenRequest)
	case "finalize":
		b.add(&route{method: "PUT", path: path, opID: id("replace"),
			desc:   "replace finalize of the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, []common.Parameter{bodyParam(true)}, writeParams), consumes: []string{mtAny}, produces: objectTypes,
			action: "put", gvk: res.GVK, body: kindModel, responses: responses(kindModel, 200, 201)})
	case "log":
		b.add(&route{method: "GET", path: path, opID: id("read"),
			desc:   "read log of the specified " + kind,
			params: join([]common.Parameter{name}, ns, pretty, logParams), consumes: []string{mtAny}, produces: append([]string{"text/plain"}, objectTypes...),
			action: "get", gvk: res.GVK, responses: responses(modelString, 200)})
	case "exec":
		connect(path, []string{"GET", "POST"}, join([]common.Parameter{name}, ns, []common.Parameter{pCommand, pContainer, pStderr, pStdin, pStdout, pTTY}), "")
	case "attach":
		connect(path, []string{"GET", "POST"}, join([]common.Parameter{name}, ns, []common.Parameter{pContainer, pStderr, pStdin, pStdout, pTTY}), "")
	case "portforward":
		connect(path, []string{"GET", "POST"}, join([]common.Parameter{name}, ns, []common.Parameter{pPorts}), "")
	case "proxy":
		methods := []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
		connect(path, methods, join([]common.Parameter{name}, ns, []common.Parameter{pProxyPath}), "")
		pathParam := &param{name: "path", desc: "path to the resource", kind: common.PathParameterKind, dataType: "string", required: true}
		connect(path+"/{path}", methods, join([]common.Parameter{name}, ns, []common.Parameter{pathParam}), "WithPath")
	default: // status, approval, ephemeralcontainers, resize and others
		getPutPatch(kindModel, res.GVK, sub)
	}
}
