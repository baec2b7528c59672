package kubelet

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The API objects a pod refers to (podobjects.go): the ConfigMaps and
// Secrets of its volumes and environment, the service account tokens of
// its projected volumes and the Services whose variables its containers
// get. volumes.go and env.go read them through podObjects; apiObjects
// reads them from the API server with plain GETs and LISTs, and keeps
// the tokens until they need renewing, as upstream's token manager.

// podObjects is what volumes and env read from the API. A missing
// ConfigMap or Secret is an apierrors NotFound worded as upstream's
// kubelet words it: `configmap "x" not found`, `secret "x" not found`.
type podObjects interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// ServiceAccountToken returns a token for the projected volume source
	// (audience, expirationSeconds) bound to the pod, fetched through
	// serviceaccounts/token and cached until 80% of its lifetime (as
	// upstream's token manager).
	ServiceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error)
	// Services lists a namespace's services, for the docker-link env vars.
	Services(ctx context.Context, namespace string) ([]corev1.Service, error)
	// PersistentVolumeClaim and PersistentVolume read a pod's claim and
	// the volume bound to it.
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
}

// objectNotFound is the NotFound of the object a pod refers to, with the
// singular resource name of upstream's configMap and secret managers.
func objectNotFound(resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}

// Token lifetimes, as upstream's token manager and API defaults.
const (
	// defaultTokenExpiration is a projected token's lifetime when the
	// volume source names none (the API's default).
	defaultTokenExpiration = 3600 // seconds
	// maxTokenAge: a token older than this is renewed whatever its
	// lifetime.
	maxTokenAge = 24 * time.Hour
)

// apiObjects is podObjects over the API server.
type apiObjects struct {
	cs  kubernetes.Interface
	now func() time.Time

	mu      sync.Mutex
	tokens  map[tokenKey]cachedToken
	objects map[string]*cachedObject // by kind/namespace/name
}

// tokenKey is what a token is requested for.
type tokenKey struct {
	namespace, serviceAccount string
	pod                       string
	podUID                    types.UID
	audience                  string
	expirationSeconds         int64
}

type cachedToken struct {
	token string
	// renewAt is when the token is renewed: at 80% of its lifetime, or
	// when it is maxTokenAge old; expires is when it stops working.
	renewAt, expires time.Time
}

// newAPIObjects reads the objects through cs.
func newAPIObjects(cs kubernetes.Interface) podObjects {
	return &apiObjects{cs: cs, now: time.Now, tokens: map[tokenKey]cachedToken{}}
}

func (a *apiObjects) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	v, err := a.cached(ctx, "configmap/"+namespace+"/"+name, func(ctx context.Context) (any, error) {
		cm, err := a.cs.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, objectNotFound("configmap", name)
		}
		return cm, err
	})
	cm, _ := v.(*corev1.ConfigMap)
	return cm, err
}

func (a *apiObjects) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	v, err := a.cached(ctx, "secret/"+namespace+"/"+name, func(ctx context.Context) (any, error) {
		s, err := a.cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, objectNotFound("secret", name)
		}
		return s, err
	})
	s, _ := v.(*corev1.Secret)
	return s, err
}

func (a *apiObjects) PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	v, err := a.cached(ctx, "persistentvolumeclaim/"+namespace+"/"+name, func(ctx context.Context) (any, error) {
		return a.cs.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	pvc, _ := v.(*corev1.PersistentVolumeClaim)
	return pvc, err
}

func (a *apiObjects) PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	v, err := a.cached(ctx, "persistentvolume/"+name, func(ctx context.Context) (any, error) {
		return a.cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	})
	pv, _ := v.(*corev1.PersistentVolume)
	return pv, err
}

func (a *apiObjects) Services(ctx context.Context, namespace string) ([]corev1.Service, error) {
	v, err := a.cached(ctx, "services/"+namespace, func(ctx context.Context) (any, error) {
		list, err := a.cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	})
	items, _ := v.([]corev1.Service)
	return items, err
}

// objectTTL is how long a read object (or its absence) is used again:
// the pods of one namespace starting together share one GET of their
// kube-root-ca.crt, and a change still reaches the pods within a
// resync, as upstream's TTL cache strategy does. The objects are shared:
// callers must not change them.
const objectTTL = 2 * time.Second

type cachedObject struct {
	ready   chan struct{} // closed when obj and err are set
	obj     any
	err     error
	fetched time.Time
}

// cached returns what fetch gives for key, fetching at most once per
// objectTTL; callers that come during a fetch wait for it.
func (a *apiObjects) cached(ctx context.Context, key string, fetch func(context.Context) (any, error)) (any, error) {
	a.mu.Lock()
	if a.objects == nil {
		a.objects = map[string]*cachedObject{}
	}
	e := a.objects[key]
	if e != nil {
		select {
		case <-e.ready:
			if a.now().Sub(e.fetched) < objectTTL && (e.err == nil || apierrors.IsNotFound(e.err)) {
				a.mu.Unlock()
				return e.obj, e.err
			}
			e = nil
		default:
		}
	}
	if e != nil {
		a.mu.Unlock()
		select {
		case <-e.ready:
			return e.obj, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if len(a.objects) > 1000 {
		for k, old := range a.objects {
			select {
			case <-old.ready:
				if a.now().Sub(old.fetched) >= objectTTL {
					delete(a.objects, k)
				}
			default:
			}
		}
	}
	e = &cachedObject{ready: make(chan struct{})}
	a.objects[key] = e
	a.mu.Unlock()
	e.obj, e.err = fetch(ctx)
	e.fetched = a.now()
	close(e.ready)
	return e.obj, e.err
}

func (a *apiObjects) ServiceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(defaultTokenExpiration)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	key := tokenKey{namespace: pod.Namespace, serviceAccount: sa, pod: pod.Name, podUID: pod.UID,
		audience: src.Audience, expirationSeconds: exp}
	now := a.now()

	a.mu.Lock()
	cached, ok := a.tokens[key]
	for k, t := range a.tokens {
		if !now.Before(t.expires) {
			delete(a.tokens, k)
		}
	}
	a.mu.Unlock()
	if ok && now.Before(cached.renewAt) {
		return cached.token, nil
	}

	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := a.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		if ok && now.Before(cached.expires) {
			// The old token still works: keep it until the API gives a new one.
			return cached.token, nil
		}
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	expires := tr.Status.ExpirationTimestamp.Time
	lifetime := time.Duration(exp) * time.Second
	if tr.Spec.ExpirationSeconds != nil {
		lifetime = time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	}
	if expires.IsZero() {
		expires = now.Add(lifetime)
	}
	renewAt := expires.Add(-lifetime / 5)
	if issued := expires.Add(-lifetime); renewAt.After(issued.Add(maxTokenAge)) {
		renewAt = issued.Add(maxTokenAge)
	}
	a.mu.Lock()
	a.tokens[key] = cachedToken{token: tr.Status.Token, renewAt: renewAt, expires: expires}
	a.mu.Unlock()
	return tr.Status.Token, nil
}
