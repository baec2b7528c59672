// Package apiserver is labctl's Kubernetes API: discovery, and the verbs
// (get, list, watch, create, update, patch, delete, deletecollection) on
// every served resource and its status and scale subresources, with
// upstream's semantics for metadata, resourceVersions, selectors, paging,
// dry runs, field validation and errors.
//
// A request arrives authenticated and authorized (server/authn wraps this
// handler). The handler parses the path (server/request), finds the
// Resource in the registry, decodes the body (JSON, YAML or protobuf),
// runs the kind's Strategy (defaults, validation), persists through the
// resource's storage.Store, and encodes the answer in the format the client
// asked for: JSON, YAML, protobuf, or a Table for kubectl get. Every error
// leaves as a metav1.Status with upstream's code and reason.
//
// Logs, exec, attach, port-forward and the node proxy go on to the
// kubelet of the pod's node (podstream.go).
package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"labctl/datastore"
	"labctl/server/authn"
	"labctl/server/openapi"
	"labctl/server/storage"
	"labctl/server/strategy"
)

// Config configures the API.
type Config struct {
	// Store holds every object; required.
	Store datastore.Interface
	// Strategies returns the strategy for a kind; nil means the built-in
	// kinds' (server/strategy). A kind it does not know gets the generic
	// one (metadata only).
	Strategies func(gvk schema.GroupVersionKind) (Strategy, bool)
	// ServiceCIDR is where service cluster IPs come from; the first
	// address is the kubernetes service's.
	ServiceCIDR netip.Prefix
	// Authorizer answers the access reviews (kubectl auth can-i); nil
	// allows everything.
	Authorizer authn.Authorizer
	// ServiceAccounts signs and checks service account tokens (see
	// serviceaccounts.go); its zero value serves no serviceaccounts/token.
	ServiceAccounts ServiceAccountConfig
	// KubeletClientCert is the client certificate the API server shows
	// kubelets for logs, exec, attach, port-forward and the node proxy
	// (server/pki's kube-apiserver-kubelet-client); zero: none.
	KubeletClientCert tls.Certificate
	// Kubelets reaches the kubelets (see podstream.go); nil: over TLS with
	// KubeletClientCert, not verifying the kubelets' self-signed serving
	// certificates, as kube-apiserver without --kubelet-certificate-authority.
	Kubelets Kubelets
	// Version is what /version reports (gitVersion), e.g. v1.37.2.
	Version string
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server serves the Kubernetes API.
type Server struct {
	cfg    Config
	ctx    context.Context // the server's lifetime
	bg     sync.WaitGroup  // background work, such as emptying namespaces
	reg    *registry
	scheme *runtime.Scheme
	codecs serializer.CodecFactory
	params runtime.ParameterCodec
	alloc  allocator
	// openapi serves /openapi/v2 and /openapi/v3 for what reg holds.
	openapi *openapi.Service
	mux     *http.ServeMux
	// saTokens issues and checks service account tokens.
	saTokens *serviceAccountTokens
	// kubelets carries logs, exec, attach, port-forward and the node
	// proxy to the kubelets.
	kubelets *kubeletClient
}

// New builds the API over cfg.Store and creates the namespaces every
// cluster has (default, kube-system, kube-public, kube-node-lease).
// Background work stops when ctx ends; Wait waits for it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("apiserver: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Strategies == nil {
		cfg.Strategies = func(gvk schema.GroupVersionKind) (Strategy, bool) {
			st, ok := strategy.For(gvk)
			return st, ok
		}
	}
	s := &Server{cfg: cfg, ctx: ctx, reg: newRegistry()}
	s.scheme, s.codecs, s.params = newScheme()
	s.alloc.cidr = cfg.ServiceCIDR
	s.kubelets = newKubeletClient(ctx, cfg)
	if err := s.initServiceAccounts(); err != nil {
		return nil, err
	}
	for _, r := range append(builtin(), reviewResources()...) {
		if err := s.Add(r); err != nil {
			return nil, err
		}
	}
	for _, v := range servedVersions() {
		hub, ok := s.reg.get(v.hub)
		if !ok {
			return nil, fmt.Errorf("apiserver: %s is served as %s, which is not", v.res.GVK, v.hub)
		}
		v.res.hub, v.res.conv = hub, &v.conv
		if err := s.Add(v.res); err != nil {
			return nil, err
		}
	}
	var err error
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/api", s.serveCoreGroups)
	s.mux.HandleFunc("/api/", s.serveAPI)
	s.mux.HandleFunc("/apis", s.serveGroups)
	s.mux.HandleFunc("/apis/", s.serveAPI)
	s.mux.HandleFunc("/version", s.serveVersion)
	if s.openapi, err = openapi.New(s.openapiResources(), s.scheme); err != nil {
		return nil, fmt.Errorf("apiserver: openapi: %w", err)
	}
	s.openapi.Register(s.mux)
	if err := s.bootstrapNamespaces(ctx); err != nil {
		return nil, err
	}
	if err := s.startCRDs(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Add serves r from now on.
func (s *Server) Add(r *Resource) error {
	gvk := r.GVK
	if r.Singular == "" {
		r.Singular = strings.ToLower(gvk.Kind)
	}
	r.newObj = func() runtime.Object {
		obj, err := s.scheme.New(gvk)
		if err != nil {
			panic(fmt.Sprintf("apiserver: kind %s is not in the scheme: %v", gvk, err))
		}
		return obj
	}
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	if _, err := s.scheme.New(gvk); err != nil {
		return fmt.Errorf("apiserver: %s: %w", gvk, err)
	}
	if !r.allows("list") {
		// A review: answered, never stored.
		r.strategy = genericStrategy{}
		return s.reg.add(r)
	}
	if _, err := s.scheme.New(listGVK); err != nil {
		return fmt.Errorf("apiserver: %s: %w", listGVK, err)
	}
	r.newList = func() runtime.Object {
		obj, _ := s.scheme.New(listGVK)
		return obj
	}
	if r.hub != nil {
		// Stored as the hub: its storage, its strategy.
		r.store, r.strategy = r.hub.store, r.hub.strategy
		return s.reg.add(r)
	}
	r.strategy = genericStrategy{}
	if s.cfg.Strategies != nil {
		if st, ok := s.cfg.Strategies(gvk); ok {
			r.strategy = st
		}
	}
	st := r.strategy
	r.store = storage.New(storage.Config{
		Store:       s.cfg.Store,
		Resource:    r.GroupResource(),
		Namespaced:  r.Namespaced,
		Codec:       storage.ProtobufCodec(s.scheme, gvk.GroupVersion()),
		NewFunc:     r.newObj,
		NewListFunc: r.newList,
		Attrs:       attrsWith(st),
	})
	return s.reg.add(r)
}

// ServeHTTP serves the API paths: discovery, /version and resources.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// openapiResources describes the served resources for the OpenAPI documents.
func (s *Server) openapiResources() []openapi.Resource {
	var out []openapi.Resource
	for _, r := range s.reg.all() {
		res := openapi.Resource{GVK: r.GVK, Plural: r.Plural, Namespaced: r.Namespaced, Verbs: r.verbs(), Subresources: r.Subresources}
		if r.custom != nil && r.custom.Schema != nil {
			res.Schema = r.custom.Schema.OpenAPI
		}
		out = append(out, res)
	}
	return out
}

// updateOpenAPI gives the OpenAPI documents the resources served now.
func (s *Server) updateOpenAPI() {
	if s.openapi == nil {
		return
	}
	if err := s.openapi.Update(s.openapiResources()); err != nil {
		s.cfg.Logger.Warn("updating the OpenAPI documents", "err", err)
	}
}

// Wait returns when the background work has stopped, after the context
// given to New has ended.
func (s *Server) Wait() { s.bg.Wait() }

// Resources lists what is served, for OpenAPI and tests.
func (s *Server) Resources() []*Resource { return s.reg.all() }
