package apiserver

import (
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// Legacy discovery: /api, /apis, /apis/<group>, /api/v1, /apis/<group>/<version>.
// /api and /apis answer with the aggregated document instead when Accept
// asks for it (aggregated.go); anything else gets these, in plain
// application/json, which tells a client to read each group-version.
// Both forms describe the resources through apiResources, so they cannot
// disagree.

func (s *Server) serveCoreGroups(w http.ResponseWriter, r *http.Request) {
	if s.serveAggregated(w, r, true) {
		return
	}
	s.writeJSON(w, r, http.StatusOK, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{
			ClientCIDR: "0.0.0.0/0", ServerAddress: serverAddress(r),
		}},
	})
}

func serverAddress(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return "127.0.0.1:6443"
}

func (s *Server) groupOf(g groupInfo) metav1.APIGroup {
	out := metav1.APIGroup{
		TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:             g.name,
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: g.name + "/" + g.preferred, Version: g.preferred},
	}
	for _, v := range g.versions {
		out.Versions = append(out.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g.name + "/" + v, Version: v})
	}
	return out
}

func (s *Server) serveGroups(w http.ResponseWriter, r *http.Request) {
	if s.serveAggregated(w, r, false) {
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, g := range s.reg.groupList() {
		list.Groups = append(list.Groups, s.groupOf(g))
	}
	s.writeJSON(w, r, http.StatusOK, list)
}

// serveDiscovery answers /apis/<group>, /api/v1 and /apis/<group>/<version>;
// it reports false for any other path.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, parts []string) bool {
	var gv schema.GroupVersion
	switch {
	case len(parts) == 2 && parts[0] == "api":
		gv = schema.GroupVersion{Version: parts[1]}
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range s.reg.groupList() {
			if g.name == parts[1] {
				grp := s.groupOf(g)
				s.writeJSON(w, r, http.StatusOK, &grp)
				return true
			}
		}
		s.writeError(w, r, notFoundPath(r))
		return true
	case len(parts) == 3 && parts[0] == "apis":
		gv = schema.GroupVersion{Group: parts[1], Version: parts[2]}
	default:
		return false
	}
	resources := s.apiResources(gv, true)
	if len(resources) == 0 {
		s.writeError(w, r, notFoundPath(r))
		return true
	}
	s.writeJSON(w, r, http.StatusOK, &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: resources,
	})
	return true
}

// apiResources describes the resources of gv and their subresources as
// legacy discovery lists them, by name (pods, pods/attach, pods/binding...),
// with upstream's kinds and verbs for each subresource; nil when gv serves
// nothing. withHash fills storageVersionHash, which only legacy discovery
// carries.
func (s *Server) apiResources(gv schema.GroupVersion, withHash bool) []metav1.APIResource {
	resources := s.reg.inGroupVersion(gv)
	n := len(resources)
	for _, res := range resources {
		n += len(res.Subresources)
	}
	out := make([]metav1.APIResource, 0, n)
	for _, res := range resources {
		ar := metav1.APIResource{
			Name:         res.Plural,
			SingularName: res.Singular,
			Namespaced:   res.Namespaced,
			Kind:         res.GVK.Kind,
			Verbs:        res.verbs(),
			ShortNames:   res.ShortNames,
			Categories:   res.Categories,
		}
		if withHash {
			ar.StorageVersionHash = storageVersionHash(res)
		}
		out = append(out, ar)
		for _, sub := range res.Subresources {
			ar := metav1.APIResource{Name: res.Plural + "/" + sub, Namespaced: res.Namespaced, Kind: res.GVK.Kind}
			switch sub {
			case "status":
				ar.Verbs = subresourceVerbs.getPatchUpdate
			case "scale":
				ar.Group, ar.Version, ar.Kind = "autoscaling", "v1", "Scale"
				ar.Verbs = subresourceVerbs.getPatchUpdate
			case "binding":
				ar.Kind, ar.Verbs = "Binding", subresourceVerbs.create
			case "eviction":
				ar.Group, ar.Version, ar.Kind = "policy", "v1", "Eviction"
				ar.Verbs = subresourceVerbs.create
			case "token":
				ar.Group, ar.Version, ar.Kind = "authentication.k8s.io", "v1", "TokenRequest"
				ar.Verbs = subresourceVerbs.create
			case "approval":
				ar.Verbs = subresourceVerbs.getPatchUpdate
			case "exec", "attach", "portforward":
				ar.Kind = map[string]string{"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}[sub]
				ar.Verbs = subresourceVerbs.createGet
			case "proxy":
				ar.Kind = res.GVK.Kind + "ProxyOptions"
				ar.Verbs = subresourceVerbs.proxy
			default:
				ar.Verbs = subresourceVerbs.get
			}
			out = append(out, ar)
		}
	}
	slices.SortStableFunc(out, func(a, b metav1.APIResource) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// subresourceVerbs are the verb lists of subresources, shared by every
// discovery document (which only reads them) rather than made per request.
var subresourceVerbs = struct {
	get, create, createGet, getPatchUpdate, proxy []string
}{
	get:            []string{"get"},
	create:         []string{"create"},
	createGet:      []string{"create", "get"},
	getPatchUpdate: []string{"get", "patch", "update"},
	proxy:          []string{"create", "delete", "get", "patch", "update"},
}

// storageVersionHash is a short stable hash of where the resource is kept,
// which clients only compare for equality.
func storageVersionHash(r *Resource) string {
	h := uint64(14695981039346656037)
	for _, c := range []byte(r.GVK.Group + "/" + r.GVK.Version + "/" + r.GVK.Kind) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	for i := 0; i < 11; i++ {
		b.WriteByte(alphabet[h&63])
		h >>= 6
	}
	return b.String() + "="
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	v := s.cfg.Version
	if v == "" {
		v = "v1.37.2"
	}
	major, minor := "1", "37"
	if parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&version.Info{
		Major:      major,
		Minor:      minor,
		GitVersion: v + "+labctl",
		GitCommit:  "labctl",
		BuildDate:  "1970-01-01T00:00:00Z",
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	})
}
