package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"labctl/server/request"
)

// DefaultPublicPaths returns the paths anyone may request by default: those
// kube-apiserver's system:public-info-viewer role opens to everyone.
func DefaultPublicPaths() []string {
	return []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}
}

// Config sets up NewHandler.
type Config struct {
	// Authenticator tells who sends a request; required.
	Authenticator Authenticator
	// Authorizer decides what they may do; required. Requests it does not
	// allow (DecisionDeny or DecisionNoOpinion) get 403.
	Authorizer Authorizer
	// PublicPaths are URL paths, matched exactly, that are served without
	// authorization and, when there are no credentials, as Anonymous
	// (default nil: DefaultPublicPaths; an empty non-nil slice: none).
	PublicPaths []string
	// Logger receives failed authentications, refusals and authorizer
	// errors, at debug level unless something is broken (default:
	// discarded).
	Logger *slog.Logger
}

// NewHandler returns a handler that authenticates and authorizes each
// request, as the package documentation says, before passing it to next
// with its user (UserFrom) and parsed request (request.InfoFrom) in its
// context.
func NewHandler(cfg Config, next http.Handler) (http.Handler, error) {
	switch {
	case cfg.Authenticator == nil:
		return nil, errors.New("authentication handler: no authenticator given")
	case cfg.Authorizer == nil:
		return nil, errors.New("authentication handler: no authorizer given")
	case next == nil:
		return nil, errors.New("authentication handler: no handler to protect given")
	}
	if cfg.PublicPaths == nil {
		cfg.PublicPaths = DefaultPublicPaths()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &handler{cfg: cfg, next: next}, nil
}

type handler struct {
	cfg  Config
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.cfg.Logger.With("method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	public := slices.Contains(h.cfg.PublicPaths, r.URL.Path)

	u, ok, err := h.cfg.Authenticator.AuthenticateRequest(r)
	switch {
	case err != nil:
		// Credentials that do not hold are refused even on public paths,
		// as kube-apiserver does: the client should learn of them.
		log.Info("authentication failed", "error", err)
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	case !ok && !public:
		log.Debug("request without credentials refused")
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	case !ok:
		u = &User{Name: Anonymous, Groups: []string{AllUnauthenticated}}
	}
	log = log.With("user", u.Name)

	info, err := request.Parse(r)
	if err != nil {
		log.Debug("request path not understood", "error", err)
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	ctx := request.WithInfo(WithUser(r.Context(), u), info)

	if !public {
		attrs := AttributesFrom(u, info)
		decision, reason, err := h.cfg.Authorizer.Authorize(ctx, attrs)
		if decision != DecisionAllow {
			if err != nil {
				log.Error("authorization failed", "error", err)
				writeStatus(w, apierrors.NewInternalError(fmt.Errorf("authorize the request: %w", err)))
				return
			}
			log.Debug("request forbidden", "verb", attrs.Verb, "decision", decision, "reason", reason)
			writeStatus(w, forbidden(attrs, reason))
			return
		}
	}
	h.next.ServeHTTP(w, r.WithContext(ctx))
}

// forbidden returns kube-apiserver's 403 for a refused request.
func forbidden(a Attributes, reason string) *apierrors.StatusError {
	name := ""
	if a.User != nil {
		name = a.User.Name
	}
	var msg string
	switch {
	case !a.ResourceRequest:
		msg = fmt.Sprintf("User %q cannot %s path %q", name, a.Verb, a.Path)
	default:
		resource := a.Resource
		if a.Subresource != "" {
			resource += "/" + a.Subresource
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q", name, a.Verb, resource, a.APIGroup)
		if a.Namespace != "" {
			msg += fmt.Sprintf(" in the namespace %q", a.Namespace)
		} else {
			msg += " at the cluster scope"
		}
	}
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// writeStatus sends err's Status as kube-apiserver does, in JSON.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.Status()
	status.Kind, status.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(status.Code))
	_ = json.NewEncoder(w).Encode(&status)
}
