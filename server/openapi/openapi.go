package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Resource describes one resource the API server serves.
type Resource struct {
	// GVK is the group, version and kind of the resource's objects.
	GVK schema.GroupVersionKind
	// Plural is the resource name in paths: "pods", "deployments".
	Plural string
	// Namespaced resources live below /namespaces/{namespace}.
	Namespaced bool
	// Verbs are the discovery verbs: get, list, watch, create, update,
	// patch, delete, deletecollection. Others are ignored.
	Verbs []string
	// Subresources are the subresource names: "status", "scale",
	// "eviction", "binding", "log", "exec", "attach", "portforward",
	// "proxy", "token", "finalize", "approval", "ephemeralcontainers",
	// "resize". Unknown names get get/put/patch of the resource's kind,
	// like "status".
	Subresources []string
	// Schema is the OpenAPI schema of kinds the scheme does not know
	// (custom resources); apiVersion, kind and metadata are added to it.
	// Nil means a permissive object schema. Ignored for kinds in the
	// scheme: those use the generated definitions.
	Schema *spec.Schema
}

// Config tunes the documents. The zero value is ready to use.
type Config struct {
	// Title and Version fill the documents' info object; defaults
	// "Kubernetes" and "unversioned".
	Title   string
	Version string
	// MediaTypes are the media types the API server encodes objects in,
	// listed as the operations' response types. Default application/json
	// and application/yaml.
	MediaTypes []string
	// Definitions returns the definitions of Go types, keyed by model
	// name. Default GetOpenAPIDefinitions (generated from k8s.io/api and
	// k8s.io/apimachinery, see the package comment).
	Definitions common.GetOpenAPIDefinitions
	// KeepFreedMemory skips the debug.FreeOSMemory call that follows New
	// and each document build. Building the v2 document of the built-in
	// resources allocates over 100 MB in about half a second and takes the
	// heap some 20 MB up, while the documents left behind take under 2 MB
	// (gzip-compressed); freeing at once brings the resident size of an
	// idle server back down rather than over the following minutes.
	KeepFreedMemory bool
	// Logger receives the errors of document builds (which also fail
	// the request with 503). Default: discard.
	Logger *slog.Logger
}

// New returns a Service with the default Config.
func New(resources []Resource, scheme *runtime.Scheme) (*Service, error) {
	return Config{}.New(resources, scheme)
}

// New returns a Service publishing resources. scheme maps kinds to their Go
// types (k8s.io/api): it names each kind's definition and lists the
// group-version-kinds of every definition in x-kubernetes-group-version-kind.
// Kinds the scheme does not know are served as custom resources with
// Resource.Schema. No document is built until it is first requested or
// Warm is called.
func (c Config) New(resources []Resource, scheme *runtime.Scheme) (*Service, error) {
	if scheme == nil {
		return nil, fmt.Errorf("openapi: nil scheme")
	}
	if c.Title == "" {
		c.Title = "Kubernetes"
	}
	if c.Version == "" {
		c.Version = "unversioned"
	}
	if len(c.MediaTypes) == 0 {
		c.MediaTypes = []string{"application/json", "application/yaml"}
	}
	if c.Definitions == nil {
		c.Definitions = GetOpenAPIDefinitions
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: c, scheme: scheme, v3: map[string]*v3Doc{}}
	// The keys of the definitions, to reject resources without one up front
	// rather than on the first request. The map itself is dropped.
	s.keys = map[string]bool{}
	for k := range c.Definitions(func(string) spec.Ref { return spec.Ref{} }) {
		s.keys[k] = true
	}
	cfgJSON, err := json.Marshal(struct{ Title, Version, MediaTypes interface{} }{c.Title, c.Version, c.MediaTypes})
	if err != nil {
		return nil, err
	}
	s.cfgHash = string(cfgJSON)
	snap, err := s.newSnapshot(resources)
	if err != nil {
		return nil, err
	}
	s.snap = snap
	s.released()
	return s, nil
}

// Service builds and serves the OpenAPI documents of a set of resources.
// It is safe for concurrent use.
type Service struct {
	cfg     Config
	scheme  *runtime.Scheme
	keys    map[string]bool // definition keys cfg.Definitions knows
	cfgHash string

	// buildMu serializes document builds: one at a time keeps the peak
	// memory of a build (all definitions plus a document) bounded.
	buildMu sync.Mutex

	mu    sync.RWMutex
	snap  *snapshot
	v2    *v2Doc            // nil until built for snap
	v3    map[string]*v3Doc // by group-version path; built documents only
	index *blob             // the /openapi/v3 index, nil until built
}

// Update replaces the served resources. Documents are rebuilt on their next
// request; v3 documents of group-versions whose resources did not change
// are kept. On error the previous resources stay in place.
func (s *Service) Update(resources []Resource) error {
	snap, err := s.newSnapshot(resources)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
	if s.v2 != nil && s.v2.fingerprint != snap.fingerprint {
		s.v2 = nil
	}
	for path, d := range s.v3 {
		if g := snap.groups[path]; g == nil || g.fingerprint != d.fingerprint {
			delete(s.v3, path)
		}
	}
	s.index = nil
	return nil
}

// snapshot is an immutable view of the served resources.
type snapshot struct {
	namer       *namer
	groups      map[string]*gvInputs // by group-version path ("apis/apps/v1")
	paths       []string             // sorted keys of groups
	custom      []resolved           // resources whose kind the scheme does not know
	fingerprint string               // of everything that goes into the v2 document
}

// gvInputs is what the document of one group-version is built from.
type gvInputs struct {
	path        string
	container   *container
	fingerprint string
}

func (s *Service) newSnapshot(resources []Resource) (*snapshot, error) {
	known := s.scheme.AllKnownTypes()
	byGV := map[schema.GroupVersion][]resolved{}
	seen := map[string]bool{}
	var custom []resolved
	var customGVKs []schema.GroupVersionKind
	for _, r := range resources {
		if r.GVK.Version == "" || r.GVK.Kind == "" || r.Plural == "" || strings.ContainsAny(r.Plural, "/{}") {
			return nil, fmt.Errorf("openapi: invalid resource %q of %v", r.Plural, r.GVK)
		}
		gv := r.GVK.GroupVersion()
		for _, k := range []string{"plural " + r.Plural, "kind " + r.GVK.Kind} {
			if seen[gv.String()+" "+k] {
				return nil, fmt.Errorf("openapi: %s served twice in %s", k, gv)
			}
			seen[gv.String()+" "+k] = true
		}
		res := resolved{Resource: r}
		if t, ok := known[r.GVK]; ok {
			res.kindKey = typeKey(t)
			if lt, ok := known[gv.WithKind(r.GVK.Kind+"List")]; ok {
				res.listKey = typeKey(lt)
			}
		} else {
			res.custom = true
			res.kindKey = customKey(r.GVK)
			res.listKey = customKey(gv.WithKind(r.GVK.Kind + "List"))
			custom = append(custom, res)
			customGVKs = append(customGVKs, r.GVK, gv.WithKind(r.GVK.Kind+"List"))
		}
		byGV[gv] = append(byGV[gv], res)
	}

	customKeys := map[string]bool{}
	for _, c := range custom {
		customKeys[c.kindKey], customKeys[c.listKey] = true, true
	}
	snap := &snapshot{namer: newNamer(s.scheme, customGVKs), groups: map[string]*gvInputs{}, custom: custom}
	schemeHash := snap.namer.fingerprint()
	all := sha256.New()
	for gv, list := range byGV {
		sort.Slice(list, func(i, j int) bool { return list[i].Plural < list[j].Plural })
		b := newRouteBuilder(gv, s.cfg.MediaTypes)
		for _, r := range list {
			b.addResource(r)
		}
		models := make([]string, 0, len(b.models))
		for key := range b.models {
			models = append(models, key)
		}
		sort.Strings(models)
		for _, key := range models {
			if !s.keys[key] && !customKeys[key] {
				return nil, fmt.Errorf("openapi: no OpenAPI definition %q (used by %s); regenerate zz_generated.openapi.go with the package holding it", key, gv)
			}
		}
		// The document of a group-version depends on its resources, the
		// custom schemas among them, the scheme's kinds (for the
		// group-version-kind lists) and the Config.
		h := sha256.New()
		enc := json.NewEncoder(h)
		if err := enc.Encode([]interface{}{s.cfgHash, schemeHash, list}); err != nil {
			return nil, fmt.Errorf("openapi: %v", err)
		}
		for _, r := range list {
			h.Write([]byte(r.kindKey + "\x00" + r.listKey + "\x00"))
		}
		path := gvPath(gv)
		snap.groups[path] = &gvInputs{path: path, container: b.container(), fingerprint: hex.EncodeToString(h.Sum(nil))}
		snap.paths = append(snap.paths, path)
	}
	sort.Strings(snap.paths)
	for _, p := range snap.paths {
		all.Write([]byte(p + "=" + snap.groups[p].fingerprint + "\n"))
	}
	snap.fingerprint = hex.EncodeToString(all.Sum(nil))
	return snap, nil
}

// containers returns the route containers of the given group-versions.
func (sn *snapshot) containers(paths []string) []common.RouteContainer {
	out := make([]common.RouteContainer, 0, len(paths))
	for _, p := range paths {
		out = append(out, sn.groups[p].container)
	}
	return out
}

// definitions returns all definitions: the generated ones and those of the
// custom resources. It allocates them anew on every call, as the builders
// modify what they are given.
func (s *Service) definitions(sn *snapshot, ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	defs := s.cfg.Definitions(ref)
	for _, r := range sn.custom {
		obj, list := customDefinitions(r, ref)
		defs[r.kindKey] = obj
		defs[r.listKey] = list
	}
	return defs
}

// customDefinitions returns the definitions of a custom resource's kind and
// list kind.
func customDefinitions(r resolved, ref common.ReferenceCallback) (obj, list common.OpenAPIDefinition) {
	str := func(desc string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}, Description: desc}}
	}
	apiVersion := str("APIVersion defines the versioned schema of this representation of an object.")
	kind := str("Kind is a string value representing the REST resource this object represents.")

	var s spec.Schema
	if r.Schema != nil {
		s = *r.Schema // shallow: the maps touched below are copied
	} else {
		s = spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
		s.Extensions = spec.Extensions{"x-kubernetes-preserve-unknown-fields": true}
	}
	props := make(map[string]spec.Schema, len(s.Properties)+3)
	for k, v := range s.Properties {
		props[k] = v
	}
	props["apiVersion"], props["kind"] = apiVersion, kind
	props["metadata"] = spec.Schema{SchemaProps: spec.SchemaProps{Ref: ref(keyObjectMeta), Description: "Standard object's metadata."}}
	s.Properties = props
	if len(s.Type) == 0 {
		s.Type = []string{"object"}
	}
	ext := make(spec.Extensions, len(s.Extensions))
	for k, v := range s.Extensions {
		ext[k] = v
	}
	s.Extensions = ext
	obj = common.OpenAPIDefinition{Schema: s, Dependencies: []string{keyObjectMeta}}

	list = common.OpenAPIDefinition{
		Schema: spec.Schema{SchemaProps: spec.SchemaProps{
			Description: r.GVK.Kind + "List is a list of " + r.GVK.Kind,
			Type:        []string{"object"},
			Required:    []string{"items"},
			Properties: map[string]spec.Schema{
				"apiVersion": apiVersion,
				"kind":       kind,
				"metadata":   {SchemaProps: spec.SchemaProps{Ref: ref(keyListMeta), Description: "Standard list metadata."}},
				"items": {SchemaProps: spec.SchemaProps{
					Type:  []string{"array"},
					Items: &spec.SchemaOrArray{Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Ref: ref(r.kindKey)}}},
				}},
			},
		}},
		Dependencies: []string{r.kindKey, keyListMeta},
	}
	return obj, list
}
