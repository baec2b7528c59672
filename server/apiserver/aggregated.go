package apiserver

// Aggregated discovery (apidiscovery.k8s.io v2 and v2beta1), as upstream's
// k8s.io/apiserver/pkg/endpoints/discovery/aggregated serves it.
//
// Legacy discovery costs a client two requests plus one per group-version
// (about twenty here); aggregated discovery puts every group, version and
// resource in the answer to /api (the core group) and /apis (the named
// groups), so kubectl discovers in two. A client asks for it through
// Accept, e.g. client-go since 1.30:
//
//	application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,
//	application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json
//
// and kubectl 1.26 to 1.29 the v2beta1 clause alone before application/json.
// The client tells the two answers apart by the response's Content-Type
// (application/json;g=...;v=...;as=APIGroupDiscoveryList), not its body, so
// that header must carry the parameters; a request whose Accept does not
// ask for the aggregated form gets legacy discovery, unchanged.
//
// Upstream removed v2beta1 in 1.35 (AggregatedDiscoveryRemoveBetaType);
// labctl keeps it because the kubectl versions the course uses, 1.27 to
// 1.29, know only v2beta1 and would fall back to legacy discovery.
//
// The document is built from the registry on every request, because
// resources come and go at run time (custom resources) and the registry
// offers no change counter to key a cache on. Building costs some 30 µs of
// the 130-250 µs that serving the 11 KB /apis takes, encoding and hashing
// being the rest (BenchmarkAggregatedDocumentBuild,
// BenchmarkAggregatedDiscovery); the twenty legacy requests it replaces
// take 400-600 µs. Its ETag is a hash of the v2 JSON encoding, as
// upstream's, the same for every format and version of the same content
// (Vary: Accept keeps caches apart); a client that sends it back in
// If-None-Match gets 304 Not Modified.

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/munnerz/goautoneg"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// aggregatedKind is the kind a client names in Accept's as= parameter.
const aggregatedKind = "APIGroupDiscoveryList"

// discoveryCodecs encode the aggregated documents: a scheme of their own
// (as upstream's handler has), so that JSON, YAML and protobuf are offered
// exactly as upstream offers them for this endpoint.
var discoveryCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	if err := apidiscoveryv2.AddToScheme(scheme); err != nil {
		panic(err) // only a programming error: the types are compiled in
	}
	if err := apidiscoveryv2beta1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme)
}()

// aggregatedMedia is what negotiateAggregated chose.
type aggregatedMedia struct {
	info   runtime.SerializerInfo
	gv     schema.GroupVersion // apidiscovery.k8s.io/v2 or v2beta1
	pretty bool                // pretty=1 in the chosen clause
}

// contentType is the response's Content-Type: the media type with the
// g, v and as parameters, which is how clients recognise the document.
func (m aggregatedMedia) contentType() string {
	return m.info.MediaType + ";g=" + m.gv.Group + ";v=" + m.gv.Version + ";as=" + aggregatedKind
}

// negotiateAggregated reports whether the Accept header asks for
// aggregated discovery, and in which format and version. It walks the
// clauses as upstream's negotiation.NegotiateMediaTypeOptions does with the
// discovery endpoint's restrictions: in goautoneg's order (by q-value,
// then the specific before the wildcards, otherwise as written), each
// against JSON, YAML and protobuf, and the first clause that is a format
// served and names apidiscovery.k8s.io v2 or v2beta1 APIGroupDiscoveryList
// wins. Clauses without those parameters are passed over, not taken as a
// preference for legacy discovery: upstream does the same, so
// "application/json, application/json;g=...;as=APIGroupDiscoveryList" is
// answered aggregated. One difference: a clause with q=0 ("not
// acceptable", RFC 9110) is never chosen, where upstream would.
func negotiateAggregated(header string) (aggregatedMedia, bool) {
	if header == "" || !strings.Contains(header, aggregatedKind) {
		return aggregatedMedia{}, false // the common legacy request: no parsing
	}
	supported := discoveryCodecs.SupportedMediaTypes()
	for _, clause := range goautoneg.ParseAccept(header) {
		if clause.Q <= 0 {
			continue
		}
		for _, info := range supported {
			match := (clause.Type == info.MediaTypeType && (clause.SubType == info.MediaTypeSubType || clause.SubType == "*")) ||
				(clause.Type == "*" && clause.SubType == "*")
			if !match {
				continue
			}
			if m, ok := aggregatedClause(clause.Params, info); ok {
				return m, true
			}
		}
	}
	return aggregatedMedia{}, false
}

// aggregatedClause checks one clause's parameters against info as
// upstream's acceptMediaTypeOptions does for the discovery endpoint:
// stream=watch only where the format can stream, no sv, and the g, v and
// as of an aggregated discovery list. Other parameters (profile=nopeer from
// client-go 1.35 and later) do not matter to a single server.
func aggregatedClause(params map[string]string, info runtime.SerializerInfo) (aggregatedMedia, bool) {
	if st := params["stream"]; st != "" && (info.StreamSerializer == nil || st != "watch") {
		return aggregatedMedia{}, false
	}
	if params["sv"] != "" {
		return aggregatedMedia{}, false
	}
	if params["g"] != apidiscoveryv2.SchemeGroupVersion.Group || params["as"] != aggregatedKind {
		return aggregatedMedia{}, false
	}
	var gv schema.GroupVersion
	switch params["v"] {
	case apidiscoveryv2.SchemeGroupVersion.Version:
		gv = apidiscoveryv2.SchemeGroupVersion
	case apidiscoveryv2beta1.SchemeGroupVersion.Version:
		gv = apidiscoveryv2beta1.SchemeGroupVersion
	default:
		return aggregatedMedia{}, false
	}
	return aggregatedMedia{info: info, gv: gv, pretty: params["pretty"] == "1"}, true
}

// serveAggregated answers /api (core) or /apis with the aggregated document
// when Accept asks for it, and reports whether it did; otherwise the caller
// serves legacy discovery.
func (s *Server) serveAggregated(w http.ResponseWriter, r *http.Request, core bool) bool {
	media, ok := negotiateAggregated(r.Header.Get("Accept"))
	if !ok {
		return false
	}
	list := &apidiscoveryv2.APIGroupDiscoveryList{Items: s.aggregatedGroups(core)}
	// The ETag comes from the compact v2 JSON encoding, which is also the
	// body most clients ask for.
	var v2JSON bytes.Buffer
	if err := discoveryCodecs.EncoderForVersion(jsonInfo().Serializer, apidiscoveryv2.SchemeGroupVersion).Encode(list, &v2JSON); err != nil {
		s.writeError(w, r, err)
		return true
	}
	sum := sha512.Sum512(v2JSON.Bytes())
	etag := `"` + strings.ToUpper(hex.EncodeToString(sum[:])) + `"`

	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "public")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return true
	}

	body := v2JSON.Bytes()
	pretty := media.pretty || prettyRequested(r)
	if media.gv != apidiscoveryv2.SchemeGroupVersion || media.info.MediaType != runtime.ContentTypeJSON || pretty {
		var obj runtime.Object = list
		if media.gv == apidiscoveryv2beta1.SchemeGroupVersion {
			obj = toV2beta1(list)
		}
		ser := media.info.Serializer
		if pretty && media.info.PrettySerializer != nil {
			ser = media.info.PrettySerializer
		}
		var buf bytes.Buffer
		if err := discoveryCodecs.EncoderForVersion(ser, media.gv).Encode(obj, &buf); err != nil {
			h.Del("ETag")
			h.Del("Cache-Control")
			s.writeError(w, r, err)
			return true
		}
		body = buf.Bytes()
	}
	h.Set("Content-Type", media.contentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if _, err := w.Write(body); err != nil {
			s.cfg.Logger.Debug("write response", "err", err)
		}
	}
	return true
}

func jsonInfo() runtime.SerializerInfo {
	info, _ := runtime.SerializerInfoForMediaType(discoveryCodecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	return info
}

// prettyRequested is upstream's isPrettyPrint: ?pretty=true, or a browser,
// curl or wget, for which upstream indents JSON unasked.
func prettyRequested(r *http.Request) bool {
	if strings.Contains(r.URL.RawQuery, "pretty") {
		if p := r.URL.Query().Get("pretty"); p != "" {
			b, _ := strconv.ParseBool(p)
			return b
		}
	}
	ua := r.UserAgent()
	return strings.HasPrefix(ua, "curl") || strings.HasPrefix(ua, "Wget") || strings.HasPrefix(ua, "Mozilla/5.0")
}

// etagMatches reports whether If-None-Match names etag: upstream compares
// the header with the quoted hash as a whole, which is what client-go's
// and kubectl's HTTP caches send; a list of tags, weak tags and * match
// too, as RFC 9110 has it.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// aggregatedGroups describes the core group (core) or the named groups,
// in legacy discovery's order: groups as /apis lists them, each group's
// preferred version first. Each version's resources are what legacy
// discovery lists for it (apiResources), turned into the aggregated form
// as upstream's ConvertGroupVersionIntoToDiscovery does. A version left
// without resources (removed while this ran) is left out, and so is a group
// left without versions.
func (s *Server) aggregatedGroups(core bool) []apidiscoveryv2.APIGroupDiscovery {
	groups := []groupInfo{{name: "", preferred: "v1", versions: []string{"v1"}}}
	if !core {
		groups = s.reg.groupList()
	}
	out := make([]apidiscoveryv2.APIGroupDiscovery, 0, len(groups))
	for _, g := range groups {
		group := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.name}}
		for _, v := range preferredFirst(g) {
			gv := schema.GroupVersion{Group: g.name, Version: v}
			resources := discoveryResources(s.apiResources(gv, false))
			if len(resources) == 0 {
				continue
			}
			s.nameCustomKinds(gv, resources)
			group.Versions = append(group.Versions, apidiscoveryv2.APIVersionDiscovery{
				Version:   v,
				Resources: resources,
				Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			})
		}
		if len(group.Versions) > 0 {
			out = append(out, group)
		}
	}
	return out
}

// preferredFirst is g's versions with the preferred one first, the order
// clients read as preference (client-go takes the first as preferred).
func preferredFirst(g groupInfo) []string {
	out := make([]string, 0, len(g.versions))
	for _, v := range g.versions {
		if v == g.preferred {
			out = append(out, v)
		}
	}
	for _, v := range g.versions {
		if v != g.preferred {
			out = append(out, v)
		}
	}
	return out
}

// discoveryResources turns one group-version's legacy list (resources and
// "resource/subresource" entries) into aggregated resources with their
// subresources, as upstream's ConvertGroupVersionIntoToDiscovery: the
// responseKind is the legacy entry's group, version and kind (group and
// version empty for the resource's own kind, as upstream's built-in
// resources show; nameCustomKinds fills them for custom resources), and a
// subresource whose resource is not listed gets an empty parent, which
// clients skip.
func discoveryResources(list []metav1.APIResource) []apidiscoveryv2.APIResourceDiscovery {
	out := make([]apidiscoveryv2.APIResourceDiscovery, 0, len(list))
	// One block for every responseKind rather than an allocation each.
	kinds := make([]metav1.GroupVersionKind, len(list))
	kindOf := func(i int, r metav1.APIResource) *metav1.GroupVersionKind {
		kinds[i] = metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
		return &kinds[i]
	}
	parent := make(map[string]int, len(list))
	for i, r := range list {
		if strings.Contains(r.Name, "/") {
			continue
		}
		parent[r.Name] = len(out)
		out = append(out, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			SingularResource: r.SingularName,
			Scope:            scopeOf(r.Namespaced),
			ResponseKind:     kindOf(i, r),
			Verbs:            r.Verbs,
			ShortNames:       r.ShortNames,
			Categories:       r.Categories,
		})
	}
	for i, r := range list {
		name, sub, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue
		}
		p, ok := parent[name]
		if !ok {
			// Upstream's empty responseKind keeps client-go 1.26.0-1.26.3
			// from a nil dereference (kubernetes#118361).
			p = len(out)
			parent[name] = p
			out = append(out, apidiscoveryv2.APIResourceDiscovery{Resource: name, Scope: scopeOf(r.Namespaced), ResponseKind: &metav1.GroupVersionKind{}})
		}
		out[p].Subresources = append(out[p].Subresources, apidiscoveryv2.APISubresourceDiscovery{
			Subresource:  sub,
			ResponseKind: kindOf(i, r),
			Verbs:        r.Verbs,
		})
	}
	return out
}

// nameCustomKinds fills in the group and version of the responseKinds of
// gv's custom resources and of their status subresources, as
// apiextensions-apiserver's discovery does, where kube-apiserver's built-in
// resources leave them empty. Custom resources are those whose kind the
// server's scheme does not know: crd.go serves them unstructured, while
// Add takes only kinds of the scheme.
func (s *Server) nameCustomKinds(gv schema.GroupVersion, resources []apidiscoveryv2.APIResourceDiscovery) {
	full := func(k *metav1.GroupVersionKind) *metav1.GroupVersionKind {
		if k == nil || k.Kind == "" || k.Group != "" || k.Version != "" {
			return k
		}
		return &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: k.Kind}
	}
	for i := range resources {
		r := &resources[i]
		if r.ResponseKind == nil || r.ResponseKind.Kind == "" || s.scheme.Recognizes(gv.WithKind(r.ResponseKind.Kind)) {
			continue
		}
		r.ResponseKind = full(r.ResponseKind)
		for j := range r.Subresources {
			r.Subresources[j].ResponseKind = full(r.Subresources[j].ResponseKind)
		}
	}
}

func scopeOf(namespaced bool) apidiscoveryv2.ResourceScope {
	if namespaced {
		return apidiscoveryv2.ScopeNamespace
	}
	return apidiscoveryv2.ScopeCluster
}

// toV2beta1 copies the document into the v2beta1 types, which have the
// same fields (upstream converts with generated code to the same effect).
func toV2beta1(in *apidiscoveryv2.APIGroupDiscoveryList) *apidiscoveryv2beta1.APIGroupDiscoveryList {
	out := &apidiscoveryv2beta1.APIGroupDiscoveryList{ListMeta: in.ListMeta, Items: make([]apidiscoveryv2beta1.APIGroupDiscovery, len(in.Items))}
	for i, g := range in.Items {
		og := &out.Items[i]
		og.ObjectMeta = g.ObjectMeta
		og.Versions = make([]apidiscoveryv2beta1.APIVersionDiscovery, len(g.Versions))
		for j, v := range g.Versions {
			ov := &og.Versions[j]
			ov.Version, ov.Freshness = v.Version, apidiscoveryv2beta1.DiscoveryFreshness(v.Freshness)
			ov.Resources = make([]apidiscoveryv2beta1.APIResourceDiscovery, len(v.Resources))
			for k, r := range v.Resources {
				or := &ov.Resources[k]
				or.Resource, or.SingularResource, or.ResponseKind = r.Resource, r.SingularResource, r.ResponseKind
				or.Scope = apidiscoveryv2beta1.ResourceScope(r.Scope)
				or.Verbs, or.ShortNames, or.Categories = r.Verbs, r.ShortNames, r.Categories
				if r.Subresources != nil {
					or.Subresources = make([]apidiscoveryv2beta1.APISubresourceDiscovery, len(r.Subresources))
				}
				for l, sr := range r.Subresources {
					or.Subresources[l] = apidiscoveryv2beta1.APISubresourceDiscovery{
						Subresource: sr.Subresource, ResponseKind: sr.ResponseKind, AcceptedTypes: sr.AcceptedTypes, Verbs: sr.Verbs,
					}
				}
			}
		}
	}
	return out
}
