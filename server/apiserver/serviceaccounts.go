package apiserver

// Service accounts, as kube-apiserver serves them:
//
//   - serviceaccounts/token (TokenRequest): a token for the service
//     account, for the audiences asked (default: the API's), valid for
//     expirationSeconds (default 3600, at least 600), optionally bound to
//     a Pod, Secret or Node, signed with the service account key
//     (`kubectl create token`).
//   - tokenreviews (TokenReview): whether a bearer token authenticates,
//     as whom and for which audiences.
//   - The authenticator of bearer tokens (TokenAuthenticator), which
//     checks each token against the live ServiceAccount and the objects
//     it is bound to, read from the store.
//   - The ServiceAccount admission plugin on pod creates: the pod runs as
//     "default" unless it names a service account, which must exist; it
//     gets the service account's imagePullSecrets, and, unless
//     automountServiceAccountToken says no, the kube-api-access-<random>
//     projected volume (token, ca.crt, namespace) mounted read-only at
//     /var/run/secrets/kubernetes.io/serviceaccount in every container.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"labctl/server/authn"
)

// DefaultServiceAccountIssuer is the iss of service account tokens when
// ServiceAccountConfig names none: kube-apiserver's (and k3s's) issuer for
// the cluster domain cluster.local.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// ServiceAccountConfig configures service account tokens.
type ServiceAccountConfig struct {
	// Key signs tokens (RSA or ECDSA); its public half verifies them.
	// Nil: serviceaccounts/token is not served (404) and no token
	// authenticates.
	Key crypto.Signer
	// Issuer is the tokens' iss (default DefaultServiceAccountIssuer).
	Issuer string
	// APIAudiences are the audiences the API accepts, and those a token
	// gets when its request names none (default: Issuer alone).
	APIAudiences []string
}

// The ServiceAccount admission plugin's names.
const (
	defaultServiceAccountName = "default"
	// enforceMountableSecretsAnnotation on a service account limits its
	// pods to the secrets it lists.
	enforceMountableSecretsAnnotation = "kubernetes.io/enforce-mountable-secrets"
	// serviceAccountVolumePrefix starts the projected token volume's name.
	serviceAccountVolumePrefix = "kube-api-access-"
	// serviceAccountMountPath is where containers find the token.
	serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// projectedTokenExpirationSeconds is the projected token's lifetime:
	// upstream's WarnOnlyBoundTokenExpirationSeconds (1 h + 7 s).
	projectedTokenExpirationSeconds = 3607
	// defaultTokenExpirationSeconds is a TokenRequest's default lifetime.
	defaultTokenExpirationSeconds = 3600
)

var (
	serviceAccountsGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	podsGVR            = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	secretsGVR         = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	nodesGVR           = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	tokenRequestGVK    = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")
)

// serviceAccountTokens is what the server keeps for tokens.
type serviceAccountTokens struct {
	issuer    *authn.TokenIssuer // nil without a key
	bearer    authn.BearerToken
	audiences []string
}

// initServiceAccounts sets up token issuing and authentication from
// cfg.ServiceAccounts.
func (s *Server) initServiceAccounts() error {
	sc := s.cfg.ServiceAccounts
	if sc.Issuer == "" {
		sc.Issuer = DefaultServiceAccountIssuer
	}
	if len(sc.APIAudiences) == 0 {
		sc.APIAudiences = []string{sc.Issuer}
	}
	tokens := &authn.ServiceAccountTokens{
		Issuers:      []string{sc.Issuer},
		APIAudiences: sc.APIAudiences,
		Getter:       storeGetter{s},
		Now:          s.cfg.Now,
	}
	st := &serviceAccountTokens{bearer: authn.BearerToken{Tokens: tokens}, audiences: sc.APIAudiences}
	if sc.Key != nil {
		issuer, err := authn.NewTokenIssuer(sc.Issuer, sc.Key, s.cfg.Now)
		if err != nil {
			return fmt.Errorf("apiserver: %w", err)
		}
		st.issuer = issuer
		tokens.Keys = []crypto.PublicKey{sc.Key.Public()}
	}
	s.saTokens = st
	return nil
}

// TokenAuthenticator authenticates requests by their service account
// bearer tokens (Authorization: Bearer), for authn.Union.
func (s *Server) TokenAuthenticator() authn.Authenticator {
	return s.saTokens.bearer
}

// storeGetter reads what tokens name from the store.
type storeGetter struct{ s *Server }

func (g storeGetter) get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (runtime.Object, error) {
	r, ok := g.s.reg.get(gvr)
	if !ok {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return r.store.Get(ctx, ns, name, "")
}

func (g storeGetter) GetServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	obj, err := g.get(ctx, serviceAccountsGVR, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ServiceAccount), nil
}

func (g storeGetter) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	obj, err := g.get(ctx, podsGVR, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

func (g storeGetter) GetSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	obj, err := g.get(ctx, secretsGVR, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

func (g storeGetter) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	obj, err := g.get(ctx, nodesGVR, "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Node), nil
}

// ---- serviceaccounts/token

// createToken is POST serviceaccounts/<name>/token: a TokenRequest,
// answered as upstream's TokenREST does.
func (c *call) createToken(name string) error {
	st := c.s.saTokens
	if st.issuer == nil {
		return notFoundPath(c.r)
	}
	data, err := readBody(c.r)
	if err != nil {
		return err
	}
	var req authenticationv1.TokenRequest
	gvk := tokenRequestGVK
	if _, _, err := c.s.codecs.UniversalDeserializer().Decode(data, &gvk, &req); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body of the request could not be decoded as a TokenRequest: %v", err))
	}
	ns := c.info.Namespace
	if req.Name != "" && req.Name != name {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "name"), req.Name, "must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != ns {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace, "must match the service account namespace if specified")})
	}
	getter := storeGetter{c.s}
	sa, err := getter.GetServiceAccount(c.ctx, ns, name)
	if err != nil {
		return err
	}
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = append([]string(nil), st.audiences...)
	}
	if req.Spec.ExpirationSeconds == nil {
		req.Spec.ExpirationSeconds = ptr.To[int64](defaultTokenExpirationSeconds)
	}
	req.Name, req.Namespace = sa.Name, sa.Namespace
	now := c.s.cfg.Now()
	req.CreationTimestamp = metav1.NewTime(now)
	req.Status = authenticationv1.TokenRequestStatus{}
	exp := *req.Spec.ExpirationSeconds
	var errs field.ErrorList
	if exp < authn.MinTokenExpirationSeconds {
		errs = append(errs, field.Invalid(field.NewPath("spec", "expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
	}
	if exp > authn.MaxTokenExpirationSeconds {
		errs = append(errs, field.Invalid(field.NewPath("spec", "expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), "", errs)
	}

	var bound authn.BoundObjects
	if ref := req.Spec.BoundObjectRef; ref != nil {
		var uid string
		gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
		switch {
		case gvk.Group == "" && gvk.Kind == "Pod":
			pod, err := getter.GetPod(c.ctx, ns, ref.Name)
			if err != nil {
				return err
			}
			if name != pod.Spec.ServiceAccountName {
				return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", name))
			}
			bound.Pod, uid = pod, string(pod.UID)
			if pod.Spec.NodeName != "" {
				// The node joins the claims when it is known, as upstream.
				if node, err := getter.GetNode(c.ctx, pod.Spec.NodeName); err == nil {
					bound.Node = node
				}
			}
		case gvk.Group == "" && gvk.Kind == "Secret":
			secret, err := getter.GetSecret(c.ctx, ns, ref.Name)
			if err != nil {
				return err
			}
			bound.Secret, uid = secret, string(secret.UID)
		case gvk.Group == "" && gvk.Kind == "Node":
			node, err := getter.GetNode(c.ctx, ref.Name)
			if err != nil {
				return err
			}
			bound.Node, uid = node, string(node.UID)
		default:
			return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
		}
		if ref.UID != "" && string(ref.UID) != uid {
			return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
				fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
		}
	}

	token, _, err := st.issuer.ServiceAccountToken(sa, bound, req.Spec.Audiences, time.Duration(exp)*time.Second)
	if err != nil {
		return fmt.Errorf("failed to generate token: %w", err)
	}
	req.Status = authenticationv1.TokenRequestStatus{
		Token:               token,
		ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(exp) * time.Second)),
	}
	c.writeWarnings()
	c.s.writeObject(c.w, c.r, http.StatusCreated, &req, authenticationv1.SchemeGroupVersion, c.acc)
	return nil
}

// ---- tokenreviews

// reviewToken answers a TokenReview as upstream's tokenreview REST does.
func (s *Server) reviewToken(ctx context.Context, rev *authenticationv1.TokenReview) error {
	if rev.Spec.Token == "" {
		return apierrors.NewBadRequest("token is required for TokenReview in authentication")
	}
	rev.Status = authenticationv1.TokenReviewStatus{}
	resp, err := s.saTokens.bearer.ReviewToken(ctx, rev.Spec.Token, rev.Spec.Audiences)
	if err != nil {
		rev.Status.Error = err.Error()
		return nil
	}
	rev.Status.Authenticated = true
	u := resp.User
	rev.Status.User = authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		rev.Status.User.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			rev.Status.User.Extra[k] = v
		}
	}
	rev.Status.Audiences = resp.Audiences
	return nil
}

// ---- the ServiceAccount admission plugin

// admitServiceAccount runs the ServiceAccount admission plugin on a new
// pod (other objects pass): upstream's Admit, then Validate.
func (s *Server) admitServiceAccount(ctx context.Context, obj runtime.Object) error {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	forbidden := func(err error) error {
		// Upstream admits before the name is generated: it names the
		// pod by its generateName then.
		name := pod.Name
		if g := pod.GenerateName; g != "" && strings.HasPrefix(name, g[:min(len(g), 58)]) && len(name) == min(len(g), 58)+5 {
			name = g
		}
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, name, err)
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		// The kubelet's copies of static pods: never changed, and they
		// may use neither service accounts nor secrets.
		switch {
		case pod.Spec.ServiceAccountName != "":
			return forbidden(errors.New("a mirror pod may not reference service accounts"))
		case len(podSecretNames(pod)) > 0:
			return forbidden(errors.New("a mirror pod may not reference secrets"))
		}
		for _, v := range pod.Spec.Volumes {
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.ServiceAccountToken != nil {
						return forbidden(errors.New("a mirror pod may not use ServiceAccountToken volume projections"))
					}
				}
			}
		}
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = defaultServiceAccountName
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	sa, err := s.podServiceAccount(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return forbidden(fmt.Errorf("error looking up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err))
	}
	if automount(sa, pod) {
		mountServiceAccountToken(pod)
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = make([]corev1.LocalObjectReference, len(sa.ImagePullSecrets))
		for i, ref := range sa.ImagePullSecrets {
			pod.Spec.ImagePullSecrets[i].Name = ref.Name
		}
	}
	if enforce, _ := strconv.ParseBool(sa.Annotations[enforceMountableSecretsAnnotation]); enforce {
		if err := limitSecretReferences(sa, pod); err != nil {
			return forbidden(err)
		}
	}
	return nil
}

// podServiceAccount reads the pod's service account. The default one may
// not exist yet in a namespace just created (the service account
// controller makes it): it is looked for ten times, 100 to 200 ms apart,
// as upstream does.
func (s *Server) podServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	attempts := 1
	if name == defaultServiceAccountName {
		attempts = 10
	}
	interval := time.Duration(100+rand.IntN(100)) * time.Millisecond
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(interval):
			}
		}
		sa, err := storeGetter{s}.GetServiceAccount(ctx, ns, name)
		if err == nil {
			return sa, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
}

// automount: the pod's automountServiceAccountToken wins, then the
// service account's; the default is true.
func automount(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountServiceAccountToken adds the kube-api-access volume (or reuses one
// already there) and mounts it in every container and init container
// that has nothing mounted at the service account path.
func mountServiceAccountToken(pod *corev1.Pod) {
	volumeName := ""
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) {
			volumeName = v.Name
			break
		}
	}
	hasVolume := volumeName != ""
	if !hasVolume {
		volumeName = generateName(serviceAccountVolumePrefix)
	}
	mount := corev1.VolumeMount{Name: volumeName, ReadOnly: true, MountPath: serviceAccountMountPath}
	needed := false
	add := func(cs []corev1.Container) {
		for i := range cs {
			mounted := false
			for _, m := range cs[i].VolumeMounts {
				if m.MountPath == serviceAccountMountPath {
					mounted = true
					break
				}
			}
			if !mounted {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, mount)
				needed = true
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	if needed && !hasVolume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         volumeName,
			VolumeSource: corev1.VolumeSource{Projected: tokenVolumeSource()},
		})
	}
}

// tokenVolumeSource is the projected volume upstream mounts: the token,
// the cluster CA from kube-root-ca.crt, and the namespace.
func tokenVolumeSource() *corev1.ProjectedVolumeSource {
	return &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](corev1.ProjectedVolumeSourceDefaultMode),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path:              "token",
				ExpirationSeconds: ptr.To[int64](projectedTokenExpirationSeconds),
			}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{
				Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}},
			}},
		},
	}
}

// podSecretNames lists the secrets a pod refers to: volumes, projected
// volumes, environment and image pull secrets.
func podSecretNames(pod *corev1.Pod) []string {
	var names []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		names = append(names, ref.Name)
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Secret != nil:
			names = append(names, v.Secret.SecretName)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					names = append(names, src.Secret.Name)
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					names = append(names, e.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					names = append(names, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
	}
	return names
}

// limitSecretReferences refuses a pod that uses secrets its service
// account does not list (the kubernetes.io/enforce-mountable-secrets
// annotation), in upstream's words.
func limitSecretReferences(sa *corev1.ServiceAccount, pod *corev1.Pod) error {
	mountable := map[string]bool{}
	for _, ref := range sa.Secrets {
		mountable[ref.Name] = true
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && !mountable[v.Secret.SecretName] {
			return fmt.Errorf("volume with secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", v.Secret.SecretName, sa.Name)
		}
	}
	for _, group := range []struct {
		what string
		cs   []corev1.Container
	}{{"init container", pod.Spec.InitContainers}, {"container", pod.Spec.Containers}} {
		for _, c := range group.cs {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !mountable[e.ValueFrom.SecretKeyRef.Name] {
					return fmt.Errorf("%s %s with envVar %s referencing secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", group.what, c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name, sa.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil && !mountable[e.SecretRef.Name] {
					return fmt.Errorf("%s %s with envFrom referencing secret.secretName=\"%s\" is not allowed because service account %s does not reference that secret", group.what, c.Name, e.SecretRef.Name, sa.Name)
				}
			}
		}
	}
	pull := map[string]bool{}
	for _, ref := range sa.ImagePullSecrets {
		pull[ref.Name] = true
	}
	for i, ref := range pod.Spec.ImagePullSecrets {
		if !pull[ref.Name] {
			return fmt.Errorf(`imagePullSecrets[%d].name="%s" is not allowed because service account %s does not reference that imagePullSecret`, i, ref.Name, sa.Name)
		}
	}
	return nil
}
