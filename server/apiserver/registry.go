package apiserver

import (
	"fmt"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"

	"labctl/server/customresource"
	"labctl/server/storage"
)

// Strategy is what the server needs to know about one kind beyond its Go
// type: defaults, what a client may not set, validation and the fields a
// field selector can use. server/strategy implements it per built-in kind.
type Strategy interface {
	Default(obj runtime.Object)
	PrepareForCreate(obj runtime.Object)
	PrepareForUpdate(obj, old runtime.Object)
	PrepareForStatusUpdate(obj, old runtime.Object)
	Validate(obj runtime.Object) field.ErrorList
	ValidateUpdate(obj, old runtime.Object) field.ErrorList
	ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList
	Fields(obj runtime.Object) fields.Set
}

// Resource is one served resource of one group-version.
type Resource struct {
	// GVK is the kind served; its group and version are the resource's.
	GVK schema.GroupVersionKind
	// Plural is the resource name in paths (pods), Singular its singular.
	Plural, Singular string
	// ShortNames and Categories go into discovery (po; all).
	ShortNames, Categories []string
	// Namespaced resources live in namespaces.
	Namespaced bool
	// Subresources served besides the resource itself: status, scale.
	Subresources []string
	// Verbs overrides the default verbs (all of them).
	Verbs []string

	// hub and conv: a resource served in this version but stored as the
	// hub's (see convert.go); nil for most.
	hub  *Resource
	conv *conversion
	// custom is the CRD version a custom resource serves (crd.go); nil
	// for built-in resources.
	custom *customresource.Version
	// typeConverter types the objects of a kind the built-in types do not
	// cover, for managedFields and server-side apply (fieldmanager.go):
	// a custom resource's, from its CRD's schemas. nil: the built-in one.
	typeConverter managedfields.TypeConverter
	// fields are the resource's field managers, made on first use.
	fields fieldManagers

	// Filled by the registry.
	store    *storage.Store
	strategy Strategy
	newObj   func() runtime.Object
	newList  func() runtime.Object
}

// GVR is the resource's group, version and resource.
func (r *Resource) GVR() schema.GroupVersionResource {
	return r.GVK.GroupVersion().WithResource(r.Plural)
}

// GroupResource is what errors name (deployments.apps).
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.GVK.Group, Resource: r.Plural}
}

var defaultVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// newStored returns an empty object of the type stored: the hub's when the
// resource has one.
func (r *Resource) newStored() runtime.Object {
	if r.hub != nil {
		return r.hub.newObj()
	}
	return r.newObj()
}

func (r *Resource) verbs() []string {
	if r.Verbs != nil {
		return r.Verbs
	}
	return defaultVerbs
}

func (r *Resource) allows(verb string) bool {
	for _, v := range r.verbs() {
		if v == verb {
			return true
		}
	}
	return false
}

func (r *Resource) hasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// registry holds the served resources. Resources are added and removed
// while the server runs as CustomResourceDefinitions come and go.
type registry struct {
	mu        sync.RWMutex
	resources map[schema.GroupVersionResource]*Resource
	// preferred is each group's preferred version, in the order groups
	// appear in discovery.
	groups    []string
	preferred map[string]string
	versions  map[string][]string
	// custom holds the groups of CRDs.
	custom map[string]bool
}

func newRegistry() *registry {
	return &registry{
		resources: make(map[schema.GroupVersionResource]*Resource),
		preferred: make(map[string]string),
		versions:  make(map[string][]string),
		custom:    make(map[string]bool),
	}
}

// add registers r. The first version added for a group is its preferred.
func (g *registry) add(r *Resource) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	gvr := r.GVR()
	if _, ok := g.resources[gvr]; ok {
		return fmt.Errorf("resource %s is already served", gvr)
	}
	g.resources[gvr] = r
	grp, ver := r.GVK.Group, r.GVK.Version
	if _, ok := g.preferred[grp]; !ok {
		g.groups = append(g.groups, grp)
		g.preferred[grp] = ver
	}
	for _, v := range g.versions[grp] {
		if v == ver {
			return nil
		}
	}
	g.versions[grp] = append(g.versions[grp], ver)
	if r.custom != nil {
		g.custom[grp] = true
		// A CRD's group lists its versions by Kubernetes' version
		// priority (v2, v1, v1beta1, ...), the first preferred.
		sort.Slice(g.versions[grp], func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(g.versions[grp][i], g.versions[grp][j]) > 0
		})
		g.preferred[grp] = g.versions[grp][0]
	}
	return nil
}

// remove stops serving gvr; a group-version (and a group) left without
// resources goes from discovery.
func (g *registry) remove(gvr schema.GroupVersionResource) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.resources[gvr]; !ok {
		return
	}
	delete(g.resources, gvr)
	for other := range g.resources {
		if other.GroupVersion() == gvr.GroupVersion() {
			return
		}
	}
	grp := gvr.Group
	versions := g.versions[grp][:0]
	for _, v := range g.versions[grp] {
		if v != gvr.Version {
			versions = append(versions, v)
		}
	}
	if len(versions) > 0 {
		g.versions[grp] = versions
		if g.preferred[grp] == gvr.Version {
			g.preferred[grp] = versions[0]
		}
		return
	}
	delete(g.versions, grp)
	delete(g.preferred, grp)
	delete(g.custom, grp)
	groups := g.groups[:0]
	for _, name := range g.groups {
		if name != grp {
			groups = append(groups, name)
		}
	}
	g.groups = groups
}

func (g *registry) get(gvr schema.GroupVersionResource) (*Resource, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	r, ok := g.resources[gvr]
	return r, ok
}

// inGroupVersion returns the resources of one group-version, by name.
func (g *registry) inGroupVersion(gv schema.GroupVersion) []*Resource {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*Resource
	for gvr, r := range g.resources {
		if gvr.GroupVersion() == gv {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Plural < out[j].Plural })
	return out
}

// all returns every resource.
func (g *registry) all() []*Resource {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*Resource, 0, len(g.resources))
	for _, r := range g.resources {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GVR().String() < out[j].GVR().String() })
	return out
}

// groupList returns the groups (not the core group) with their versions,
// preferred version first.
func (g *registry) groupList() []groupInfo {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out, custom []groupInfo
	for _, name := range g.groups {
		if name == "" {
			continue
		}
		info := groupInfo{name: name, preferred: g.preferred[name], versions: append([]string(nil), g.versions[name]...)}
		if g.custom[name] {
			custom = append(custom, info)
		} else {
			out = append(out, info)
		}
	}
	// CRDs' groups come after the built-in ones, by name, as upstream's
	// aggregator orders them (their priority is the lowest).
	sort.Slice(custom, func(i, j int) bool { return custom[i].name < custom[j].name })
	return append(out, custom...)
}

type groupInfo struct {
	name, preferred string
	versions        []string
}
