package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Vendor extensions this package writes.
const (
	extGVK    = "x-kubernetes-group-version-kind"
	extAction = "x-kubernetes-action"
)

// gvkValue is how a group-version-kind appears in x-kubernetes-group-version-kind:
// an object with the keys group, kind and version (in that order, as upstream).
type gvkValue struct {
	Group   string `json:"group"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

func toGVKValue(gvk schema.GroupVersionKind) gvkValue {
	return gvkValue{Group: gvk.Group, Kind: gvk.Kind, Version: gvk.Version}
}

// modelNamer is implemented by the k8s.io/api and k8s.io/apimachinery types
// (zz_generated.model_name.go): it returns the definition name, such as
// "io.k8s.api.core.v1.Pod".
type modelNamer interface {
	OpenAPIModelName() string
}

// model stands for a definition in a route: the kube-openapi builders
// resolve route models through util.GetCanonicalTypeName, which asks
// OpenAPIModelName first. A model can also name a primitive ("string").
type model string

func (m model) OpenAPIModelName() string { return string(m) }

// typeKey returns the key under which the definition of the Go type t is
// found in the map GetOpenAPIDefinitions returns: its OpenAPIModelName when
// it has one, otherwise "<package path>.<type name>" as openapi-gen writes
// for types without a model name.
func typeKey(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n, ok := reflect.New(t).Interface().(modelNamer); ok {
		return n.OpenAPIModelName()
	}
	if t.PkgPath() == "" {
		return t.Name()
	}
	return t.PkgPath() + "." + t.Name()
}

// definitionName turns a definition key into the name used in the
// documents. Model names ("io.k8s.api.core.v1.Pod") are kept; Go paths
// ("example.com/x/v1.Foo") become "com.example.x.v1.Foo".
func definitionName(key string) string {
	if !strings.Contains(key, "/") {
		return key
	}
	return util.ToRESTFriendlyName(key)
}

// customKey is the definition name of a kind the scheme does not know (a
// custom resource): the group reversed, then version and kind, as the
// apiextensions server names them ("com.example.stable.v1.CronTab").
func customKey(gvk schema.GroupVersionKind) string {
	parts := strings.Split(gvk.Group, ".")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	prefix := strings.Join(parts, ".")
	if prefix != "" {
		prefix += "."
	}
	return prefix + gvk.Version + "." + gvk.Kind
}

// namer maps definition keys to document names and to the
// x-kubernetes-group-version-kind extension kubectl looks kinds up by.
type namer struct {
	gvks   map[string][]gvkValue // by document name
	scheme string                // fingerprint of the scheme's part of gvks
}

// newNamer indexes every external kind of scheme plus the custom kinds.
func newNamer(scheme *runtime.Scheme, custom []schema.GroupVersionKind) *namer {
	n := &namer{gvks: map[string][]gvkValue{}}
	add := func(name string, gvk schema.GroupVersionKind) {
		v := toGVKValue(gvk)
		for _, have := range n.gvks[name] {
			if have == v {
				return
			}
		}
		n.gvks[name] = append(n.gvks[name], v)
	}
	keys := map[reflect.Type]string{}
	for gvk, t := range scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || gvk.Version == "" {
			continue
		}
		key, ok := keys[t]
		if !ok {
			key = definitionName(typeKey(t))
			keys[t] = key
		}
		add(key, gvk)
	}
	sortGVKs(n.gvks)
	h := sha256.New()
	names := make([]string, 0, len(n.gvks))
	for name := range n.gvks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(h, "%s=%v\n", name, n.gvks[name])
	}
	n.scheme = hex.EncodeToString(h.Sum(nil))
	for _, gvk := range custom {
		add(customKey(gvk), gvk)
	}
	sortGVKs(n.gvks)
	return n
}

func sortGVKs(m map[string][]gvkValue) {
	for _, list := range m {
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
	}
}

// fingerprint identifies the group-version-kinds that come from the scheme.
func (n *namer) fingerprint() string { return n.scheme }

// name is a common.Config GetDefinitionName.
func (n *namer) name(key string) (string, spec.Extensions) {
	name := definitionName(key)
	if list := n.gvks[name]; len(list) > 0 {
		return name, spec.Extensions{extGVK: list}
	}
	return name, nil
}

// refFunc returns the ReferenceCallback for definitions living under prefix
// ("#/definitions/" for v2, "#/components/schemas/" for v3).
func (n *namer) refFunc(prefix string) common.ReferenceCallback {
	return func(key string) spec.Ref {
		return spec.MustCreateRef(prefix + common.EscapeJsonPointer(definitionName(key)))
	}
}
