package openapi

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/google/gnostic-models/compiler"
	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// v2Doc is the built /openapi/v2 document, in both encodings.
type v2Doc struct {
	fingerprint string
	json        *blob
	proto       *blob
}

// v3Doc is the built document of one group-version. The protobuf encoding
// is made on its first request: kubectl and client-go read JSON.
type v3Doc struct {
	fingerprint string
	json        *blob

	protoOnce sync.Once
	proto     *blob
	protoErr  error
}

func (d *v3Doc) protobuf() (*blob, error) {
	d.protoOnce.Do(func() {
		raw, err := d.json.raw()
		if err != nil {
			d.protoErr = err
			return
		}
		doc, err := openapi_v3.ParseDocument(raw)
		if err != nil {
			d.protoErr = fmt.Errorf("openapi: v3 to protobuf: %v", err)
			return
		}
		pb, err := proto.Marshal(doc)
		if err != nil {
			d.protoErr = fmt.Errorf("openapi: v3 to protobuf: %v", err)
			return
		}
		d.proto, d.protoErr = newBlob(pb)
	})
	return d.proto, d.protoErr
}

func (s *Service) info() *spec.Info {
	return &spec.Info{InfoProps: spec.InfoProps{Title: s.cfg.Title, Version: s.cfg.Version}}
}

// Warm builds every document now rather than on first request.
func (s *Service) Warm() error {
	if _, err := s.v2Doc(); err != nil {
		return err
	}
	_, err := s.v3Index()
	return err
}

// v2Doc returns the /openapi/v2 document, building it when needed.
func (s *Service) v2Doc() (*v2Doc, error) {
	s.mu.RLock()
	d, snap := s.v2, s.snap
	s.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	s.mu.RLock()
	d, snap = s.v2, s.snap
	s.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	d, err := s.buildV2(snap)
	s.released()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.snap.fingerprint == d.fingerprint {
		s.v2 = d
	}
	s.mu.Unlock()
	return d, nil
}

func (s *Service) buildV2(snap *snapshot) (*v2Doc, error) {
	cfg := &common.Config{
		ProtocolList: []string{"https"},
		Info:         s.info(),
		GetDefinitions: func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
			return s.definitions(snap, ref)
		},
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              snap.namer.name,
		CommonResponses:                map[int]spec.Response{401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}}},
		SecurityDefinitions: &spec.SecurityDefinitions{"BearerToken": &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
		DefaultSecurity: []map[string][]string{{"BearerToken": {}}},
		PostProcessSpec: func(sw *spec.Swagger) (*spec.Swagger, error) {
			pushDownV2(sw)
			return sw, nil
		},
	}
	sw, err := builder.BuildOpenAPISpecFromRoutes(snap.containers(snap.paths), cfg)
	if err != nil {
		return nil, fmt.Errorf("openapi: building v2: %v", err)
	}
	raw, pb, err := encodeV2(sw)
	if err != nil {
		return nil, err
	}
	d := &v2Doc{fingerprint: snap.fingerprint}
	if d.json, err = newBlob(raw); err != nil {
		return nil, err
	}
	if d.proto, err = newBlob(pb); err != nil {
		return nil, err
	}
	return d, nil
}

// encodeV2 returns the JSON and protobuf encodings of sw, emptying sw.
//
// The protobuf form is gnostic's, which parses the JSON into a YAML node
// tree first: for the whole document that tree takes tens of megabytes.
// Parsing the definitions and paths one by one gives the same document
// (the tests compare it with gnostic's whole-document parse) in a fraction
// of the live memory.
func encodeV2(sw *spec.Swagger) (raw, pb []byte, err error) {
	fail := func(err error) ([]byte, []byte, error) {
		return nil, nil, fmt.Errorf("openapi: encoding v2: %v", err)
	}
	// parse converts one JSON value with a gnostic constructor.
	parse := func(name string, js []byte, f func(*yaml.Node, *compiler.Context) error) error {
		var node yaml.Node
		if err := yaml.Unmarshal(js, &node); err != nil {
			return err
		}
		if len(node.Content) != 1 {
			return fmt.Errorf("%s: empty", name)
		}
		return f(node.Content[0], compiler.NewContextWithExtensions(name, node.Content[0], nil, nil))
	}

	// Everything but the paths and definitions, parsed whole.
	skeleton := *sw
	skeleton.Paths = &spec.Paths{Paths: map[string]spec.PathItem{}}
	skeleton.Definitions = nil
	skeletonJSON, err := json.Marshal(&skeleton)
	if err != nil {
		return fail(err)
	}
	doc, err := openapi_v2.ParseDocument(skeletonJSON)
	if err != nil {
		return fail(err)
	}

	defNames := make([]string, 0, len(sw.Definitions))
	for name := range sw.Definitions {
		defNames = append(defNames, name)
	}
	sort.Strings(defNames)
	defsJSON := map[string]json.RawMessage{}
	doc.Definitions = &openapi_v2.Definitions{}
	for _, name := range defNames {
		s := sw.Definitions[name]
		delete(sw.Definitions, name) // sw is consumed: let the GC have it piecemeal
		js, err := json.Marshal(&s)
		if err != nil {
			return fail(err)
		}
		defsJSON[name] = js
		err = parse(name, js, func(n *yaml.Node, c *compiler.Context) error {
			v, err := openapi_v2.NewSchema(n, c)
			doc.Definitions.AdditionalProperties = append(doc.Definitions.AdditionalProperties, &openapi_v2.NamedSchema{Name: name, Value: v})
			return err
		})
		if err != nil {
			return fail(err)
		}
	}

	var paths []string
	if sw.Paths != nil {
		for p := range sw.Paths.Paths {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	pathsJSON := map[string]json.RawMessage{}
	for _, p := range paths {
		item := sw.Paths.Paths[p]
		delete(sw.Paths.Paths, p)
		js, err := json.Marshal(&item)
		if err != nil {
			return fail(err)
		}
		pathsJSON[p] = js
		err = parse(p, js, func(n *yaml.Node, c *compiler.Context) error {
			v, err := openapi_v2.NewPathItem(n, c)
			doc.Paths.Path = append(doc.Paths.Path, &openapi_v2.NamedPathItem{Name: p, Value: v})
			return err
		})
		if err != nil {
			return fail(err)
		}
	}
	if pb, err = proto.Marshal(doc); err != nil {
		return fail(err)
	}
	doc = nil

	// The JSON document: the skeleton with the paths and definitions put in.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(skeletonJSON, &top); err != nil {
		return fail(err)
	}
	if top["paths"], err = json.Marshal(pathsJSON); err != nil {
		return fail(err)
	}
	pathsJSON = nil
	if len(defsJSON) > 0 {
		if top["definitions"], err = json.Marshal(defsJSON); err != nil {
			return fail(err)
		}
	}
	defsJSON = nil
	if raw, err = json.Marshal(top); err != nil {
		return fail(err)
	}
	return raw, pb, nil
}

// v3GroupDoc returns the document of the group-version at path ("apis/apps/v1"),
// building it when needed; nil when no such group-version is served.
func (s *Service) v3GroupDoc(path string) (*v3Doc, error) {
	s.mu.RLock()
	g, d := s.snap.groups[path], s.v3[path]
	s.mu.RUnlock()
	if g == nil {
		return nil, nil
	}
	if d != nil {
		return d, nil
	}
	docs, err := s.buildMissingV3([]string{path})
	if err != nil {
		return nil, err
	}
	return docs[path], nil
}

// v3Index returns the /openapi/v3 index, building what it needs: it carries
// the hash of every group-version document.
func (s *Service) v3Index() (*blob, error) {
	s.mu.RLock()
	idx, snap := s.index, s.snap
	s.mu.RUnlock()
	if idx != nil {
		return idx, nil
	}
	docs, err := s.buildMissingV3(snap.paths)
	if err != nil {
		return nil, err
	}
	disc := handler3.OpenAPIV3Discovery{Paths: map[string]handler3.OpenAPIV3DiscoveryGroupVersion{}}
	for path, d := range docs {
		disc.Paths[path] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: serverRelativeURL(path, d.json.hash)}
	}
	raw, err := json.Marshal(disc)
	if err != nil {
		return nil, err
	}
	if idx, err = newBlob(raw); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.snap == snap {
		s.index = idx
	}
	s.mu.Unlock()
	return idx, nil
}

func serverRelativeURL(path, hash string) string {
	return "/openapi/v3/" + path + "?hash=" + hash
}

// buildMissingV3 returns the documents of paths of the current snapshot,
// building those not built yet. One build evaluates the definitions once
// for all of them.
func (s *Service) buildMissingV3(paths []string) (map[string]*v3Doc, error) {
	out := map[string]*v3Doc{}
	collect := func() (*snapshot, []string) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		var missing []string
		for _, p := range paths {
			if s.snap.groups[p] == nil {
				continue
			}
			if d := s.v3[p]; d != nil {
				out[p] = d
			} else {
				missing = append(missing, p)
			}
		}
		return s.snap, missing
	}
	if _, missing := collect(); len(missing) == 0 {
		return out, nil
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	snap, missing := collect()
	if len(missing) == 0 {
		return out, nil
	}
	sort.Strings(missing)
	err := s.buildV3Batch(snap, missing, out)
	s.released()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// buildV3Batch builds the documents of paths into out and the cache.
func (s *Service) buildV3Batch(snap *snapshot, paths []string, out map[string]*v3Doc) error {
	// The builder changes the definitions it is given (it adds extensions)
	// in the same way for every group-version, so one evaluation serves
	// the whole batch; it is garbage once the batch is done.
	defs := s.definitions(snap, snap.namer.refFunc("#/components/schemas/"))
	for _, p := range paths {
		d, err := s.buildV3(snap, p, defs)
		if err != nil {
			return err
		}
		out[p] = d
		s.mu.Lock()
		if g := s.snap.groups[p]; g != nil && g.fingerprint == d.fingerprint {
			s.v3[p] = d
		}
		s.mu.Unlock()
	}
	return nil
}

// released runs after a build: the build's garbage (tens of megabytes of
// heap for a few hundred milliseconds) goes back to the operating system at
// once, rather than over minutes through the runtime's scavenger.
func (s *Service) released() {
	if !s.cfg.KeepFreedMemory {
		debug.FreeOSMemory()
	}
}

func (s *Service) buildV3(snap *snapshot, path string, defs map[string]common.OpenAPIDefinition) (*v3Doc, error) {
	g := snap.groups[path]
	cfg := &common.OpenAPIV3Config{
		Info:                           s.info(),
		Definitions:                    defs,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              snap.namer.name,
		CommonResponses:                map[int]*spec3.Response{401: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}}},
		SecuritySchemes: spec3.SecuritySchemes{"BearerToken": &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
		PostProcessSpec: func(o *spec3.OpenAPI) (*spec3.OpenAPI, error) {
			pushDownV3(o)
			o.SecurityRequirement = []map[string][]string{{"BearerToken": {}}}
			return o, nil
		},
	}
	o, err := builder3.BuildOpenAPISpecFromRoutes([]common.RouteContainer{g.container}, cfg)
	if err != nil {
		return nil, fmt.Errorf("openapi: building v3 %s: %v", path, err)
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("openapi: encoding v3 %s: %v", path, err)
	}
	b, err := newBlob(raw)
	if err != nil {
		return nil, err
	}
	return &v3Doc{fingerprint: g.fingerprint, json: b}, nil
}

// The builders move a parameter every operation of a path shares to the
// path. kubectl's fieldValidation check (cli-runtime QueryParamVerifier)
// only reads the PATCH operation's own parameters, so on paths with a
// PATCH the shared query parameters other than pretty go back to the
// operations.

func pushDownV2(sw *spec.Swagger) {
	if sw.Paths == nil {
		return
	}
	for path, item := range sw.Paths.Paths {
		if item.Patch == nil {
			continue
		}
		var keep, move []spec.Parameter
		for _, p := range item.Parameters {
			if p.In == "query" && p.Name != "pretty" {
				move = append(move, p)
			} else {
				keep = append(keep, p)
			}
		}
		if len(move) == 0 {
			continue
		}
		item.Parameters = keep
		for _, op := range []*spec.Operation{item.Get, item.Put, item.Post, item.Delete, item.Options, item.Head, item.Patch} {
			if op == nil {
				continue
			}
			op.Parameters = append(op.Parameters, move...)
			sort.SliceStable(op.Parameters, func(i, j int) bool { return op.Parameters[i].Name < op.Parameters[j].Name })
		}
		sw.Paths.Paths[path] = item
	}
}

func pushDownV3(o *spec3.OpenAPI) {
	if o.Paths == nil {
		return
	}
	for _, item := range o.Paths.Paths {
		if item == nil || item.Patch == nil {
			continue
		}
		var keep, move []*spec3.Parameter
		for _, p := range item.Parameters {
			if p.In == "query" && p.Name != "pretty" {
				move = append(move, p)
			} else {
				keep = append(keep, p)
			}
		}
		if len(move) == 0 {
			continue
		}
		item.Parameters = keep
		for _, op := range []*spec3.Operation{item.Get, item.Put, item.Post, item.Delete, item.Options, item.Head, item.Patch} {
			if op == nil {
				continue
			}
			op.Parameters = append(op.Parameters, move...)
			sort.SliceStable(op.Parameters, func(i, j int) bool { return op.Parameters[i].Name < op.Parameters[j].Name })
		}
	}
}
