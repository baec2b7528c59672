package apiserver_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"labctl/server/apiserver"
	"labctl/server/authn"
	"labctl/server/pki"
)

// createServiceAccount creates service account name in ns, as the service
// account controller does for "default" in a real cluster.
func createServiceAccount(t testing.TB, cs kubernetes.Interface, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

const saIssuer = "https://kubernetes.default.svc.cluster.local"

// secured is the API behind authentication and authorization, as
// server.Run serves it: client certificates or service account tokens,
// and only system:masters authorized.
type secured struct {
	url   string
	certs *pki.PKI
	admin kubernetes.Interface
}

func startSecured(t *testing.T) *secured {
	t.Helper()
	certs, err := pki.Ensure(pki.Config{Dir: t.TempDir(), NodeName: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	authz := authn.AuthorizerUnion{authn.Masters{}, authn.AuthenticatedDefaults{}}
	api, err := apiserver.New(ctx, apiserver.Config{
		Store:       memStore(t),
		ServiceCIDR: netip.MustParsePrefix("10.43.0.0/16"),
		Authorizer:  authz,
		ServiceAccounts: apiserver.ServiceAccountConfig{
			Key: certs.ServiceAccountKey, Issuer: saIssuer, APIAudiences: []string{saIssuer, "labctl"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := authn.NewHandler(authn.Config{Authenticator: authn.Union{authn.X509{}, api.TokenAuthenticator()}, Authorizer: authz}, api)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{certs.Serving.TLSCertificate()},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    certs.CertPool(),
	}
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		api.Wait()
	})
	s := &secured{url: srv.URL, certs: certs}
	s.admin = kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAData: certs.CA.CertPEM, CertData: certs.Admin.CertPEM, KeyData: certs.Admin.KeyPEM}})
	return s
}

// as returns a client that sends token, and no certificate.
func (s *secured) as(token string) kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: s.url, QPS: -1, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.certs.CA.CertPEM}})
}

// claims decodes a token's payload.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func review(t *testing.T, cs kubernetes.Interface, token string, auds ...string) authenticationv1.TokenReviewStatus {
	t.Helper()
	rev, err := cs.AuthenticationV1().TokenReviews().Create(context.Background(), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: auds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rev.Status
}

func TestTokenRequestAndBearerTokens(t *testing.T) {
	s := startSecured(t)
	ctx := context.Background()
	sa := createServiceAccount(t, s.admin, "default", "default")

	// Discovery lists the subresource as upstream does.
	res, err := s.admin.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "serviceaccounts/token" })
	if i < 0 {
		t.Fatal("discovery does not list serviceaccounts/token")
	}
	if r := res.APIResources[i]; r.Group != "authentication.k8s.io" || r.Version != "v1" || r.Kind != "TokenRequest" || !slices.Equal(r.Verbs, []string{"create"}) || !r.Namespaced {
		t.Errorf("serviceaccounts/token in discovery: %+v", r)
	}
	res, err = s.admin.Discovery().ServerResourcesForGroupVersion("authentication.k8s.io/v1")
	if err != nil || !slices.ContainsFunc(res.APIResources, func(r metav1.APIResource) bool { return r.Name == "tokenreviews" && !r.Namespaced }) {
		t.Errorf("discovery of authentication.k8s.io/v1 lacks tokenreviews: %v %v", res, err)
	}

	// kubectl create token default
	before := time.Now().Truncate(time.Second)
	tr, err := s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "default" || tr.Namespace != "default" || *tr.Spec.ExpirationSeconds != 3600 ||
		!slices.Equal(tr.Spec.Audiences, []string{saIssuer, "labctl"}) {
		t.Errorf("token request: %+v", tr)
	}
	if exp := tr.Status.ExpirationTimestamp.Time; exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("expirationTimestamp %v, want an hour from now", exp)
	}
	token := tr.Status.Token
	c := claims(t, token)
	if c["iss"] != saIssuer || c["sub"] != "system:serviceaccount:default:default" ||
		mustJSON(c["kubernetes.io"]) != `{"namespace":"default","serviceaccount":{"name":"default","uid":"`+string(sa.UID)+`"}}` {
		t.Errorf("claims %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 {
		t.Errorf("exp - iat = %v, want 3600", exp-iat)
	}

	// The token authenticates; the service account may do nothing yet
	// (RBAC comes later), with upstream's words.
	sac := s.as(token)
	_, err = sac.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if want := `pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default"`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("list pods as the service account: %v, want 403 %q", err, want)
	}
	if v, err := sac.Discovery().ServerVersion(); err != nil || v.Major != "1" {
		t.Errorf("/version as the service account: %v %v", v, err)
	}
	// kubectl auth whoami
	who, err := sac.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := who.Status.UserInfo
	if u.Username != "system:serviceaccount:default:default" || u.UID != string(sa.UID) ||
		!slices.Equal(u.Groups, []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}) ||
		len(u.Extra) != 1 || !slices.Equal(u.Extra[authn.CredentialIDKey], []string{"JTI=" + c["jti"].(string)}) {
		t.Errorf("whoami as the service account: %+v", u)
	}

	// TokenReview of a good token, and of bad ones.
	st := review(t, s.admin, token)
	if !st.Authenticated || st.Error != "" || st.User.Username != "system:serviceaccount:default:default" ||
		!slices.Equal(st.Audiences, []string{saIssuer, "labctl"}) || !slices.Equal(st.User.Groups, u.Groups) {
		t.Errorf("review of a good token: %+v", st)
	}
	if st := review(t, s.admin, token, "labctl", "vault"); !st.Authenticated || !slices.Equal(st.Audiences, []string{"labctl"}) {
		t.Errorf("review for labctl or vault: %+v", st)
	}
	if st := review(t, s.admin, "not-a-token"); st.Authenticated || st.Error != "invalid bearer token" || st.User.Username != "" {
		t.Errorf("review of nonsense: %+v", st)
	}
	if st := review(t, s.admin, token, "vault"); st.Authenticated ||
		st.Error != `[invalid bearer token, token audiences ["https://kubernetes.default.svc.cluster.local" "labctl"] is invalid for the target audiences ["vault"]]` {
		t.Errorf("review for another audience: %+v", st)
	}
	if _, err := s.admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{}, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) ||
		!strings.Contains(err.Error(), "token is required for TokenReview in authentication") {
		t.Errorf("review without a token: %v", err)
	}
	// Reviews are for the authorized: the service account gets 403.
	if _, err := sac.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("review by the service account: %v", err)
	}

	// Typed clients that speak protobuf get the same.
	pbCfg := &rest.Config{Host: s.url, QPS: -1, TLSClientConfig: rest.TLSClientConfig{
		CAData: s.certs.CA.CertPEM, CertData: s.certs.Admin.CertPEM, KeyData: s.certs.Admin.KeyPEM}}
	pbCfg.ContentType = "application/vnd.kubernetes.protobuf"
	pbCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pb := kubernetes.NewForConfigOrDie(pbCfg)
	if tr, err := pb.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); err != nil ||
		claims(t, tr.Status.Token)["sub"] != "system:serviceaccount:default:default" {
		t.Errorf("token request in protobuf: %v", err)
	} else if rev, err := pb.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{}); err != nil || !rev.Status.Authenticated {
		t.Errorf("token review in protobuf: %+v %v", rev, err)
	}

	// A token for another audience is no good for the API.
	vault, err := s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := claims(t, vault.Status.Token); mustJSON(c["aud"]) != `["vault"]` || c["exp"].(float64)-c["iat"].(float64) != 600 {
		t.Errorf("vault token claims %v", c)
	}
	if _, err := s.as(vault.Status.Token).Discovery().ServerVersion(); !apierrors.IsUnauthorized(err) {
		t.Errorf("a vault token on the API: %v, want 401", err)
	}
	if st := review(t, s.admin, vault.Status.Token, "vault"); !st.Authenticated || !slices.Equal(st.Audiences, []string{"vault"}) {
		t.Errorf("review of the vault token for vault: %+v", st)
	}

	// Refused requests.
	_, err = s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes") {
		t.Errorf("a one-minute token: %v", err)
	}
	if _, err := s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) ||
		err.Error() != `serviceaccounts "nobody" not found` {
		t.Errorf("a token for a missing service account: %v", err)
	}
	_, err = s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "ConfigMap", APIVersion: "v1", Name: "x"}}}, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "cannot bind token to object of type /v1, Kind=ConfigMap") {
		t.Errorf("a token bound to a ConfigMap: %v", err)
	}

	// Deleting the service account ends its tokens.
	if err := s.admin.CoreV1().ServiceAccounts("default").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sac.Discovery().ServerVersion(); !apierrors.IsUnauthorized(err) {
		t.Errorf("/version with the token of a deleted service account: %v, want 401", err)
	}
	if st := review(t, s.admin, token); st.Authenticated || st.Error != `[invalid bearer token, serviceaccounts "default" not found]` {
		t.Errorf("review after the service account went: %+v", st)
	}
	// One of the same name is another service account.
	createServiceAccount(t, s.admin, "default", "default")
	if st := review(t, s.admin, token); st.Authenticated || !strings.Contains(st.Error, "does not match claim") {
		t.Errorf("review after the service account came back: %+v", st)
	}
}

func TestPodBoundToken(t *testing.T) {
	s := startSecured(t)
	ctx := context.Background()
	createServiceAccount(t, s.admin, "default", "default")
	createServiceAccount(t, s.admin, "default", "builder")
	pod, err := s.admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(uid types.UID) *authenticationv1.BoundObjectReference {
		return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: uid}
	}
	tr, err := s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: ref(pod.UID)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k := claims(t, tr.Status.Token)["kubernetes.io"].(map[string]any); mustJSON(k["pod"]) != `{"name":"web","uid":"`+string(pod.UID)+`"}` {
		t.Errorf("pod claim %v", k)
	}
	st := review(t, s.admin, tr.Status.Token)
	if !st.Authenticated || !slices.Equal(st.User.Extra[authn.PodNameKey], []string{"web"}) || !slices.Equal(st.User.Extra[authn.PodUIDKey], []string{string(pod.UID)}) {
		t.Errorf("review of a pod-bound token: %+v", st)
	}
	_, err = s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "builder", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: ref("")}}, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `cannot bind token for serviceaccount "builder" to pod running with different serviceaccount name.`) {
		t.Errorf("a token of another service account bound to the pod: %v", err)
	}
	_, err = s.admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: ref("not-the-uid")}}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("a token bound to the pod by another UID: %v", err)
	}
	// The pod goes (it is on no node: at once), and its token with it.
	if err := s.admin.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.as(tr.Status.Token).Discovery().ServerVersion(); !apierrors.IsUnauthorized(err) {
		t.Errorf("the token of a deleted pod: %v, want 401", err)
	}
	if st := review(t, s.admin, tr.Status.Token); st.Authenticated || st.Error != "[invalid bearer token, service account token has been invalidated]" {
		t.Errorf("review of the token of a deleted pod: %+v", st)
	}
}

func TestServiceAccountAdmission(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podSpec := func(name string, mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "c", Image: "nginx"}, {Name: "d", Image: "nginx"}},
		}}
		if mutate != nil {
			mutate(p)
		}
		return p
	}

	// A service account that does not exist: refused, as upstream words it.
	_, err := cs.CoreV1().Pods("team").Create(ctx, podSpec("x", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "sa" }), metav1.CreateOptions{})
	if want := `pods "x" is forbidden: error looking up service account team/sa: serviceaccount "sa" not found`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("pod of a missing service account: %v, want %q", err, want)
	}
	// The default one is waited for a little (the controller makes it)...
	start := time.Now()
	_, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("x", nil), metav1.CreateOptions{})
	if want := `pods "x" is forbidden: error looking up service account team/default: serviceaccount "default" not found`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("pod without the default service account: %v, want %q", err, want)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the default service account was looked for only %v", took)
	}
	// ... and found when it comes in time.
	done := make(chan error, 1)
	go func() {
		_, err := cs.CoreV1().Pods("team").Create(ctx, podSpec("early", nil), metav1.CreateOptions{})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	createServiceAccount(t, cs, "team", "default")
	if err := <-done; err != nil {
		t.Errorf("pod created while the default service account appears: %v", err)
	}

	p, err := cs.CoreV1().Pods("team").Create(ctx, podSpec("web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.ServiceAccountName != "default" || p.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("service account %q (serviceAccount %q), want default", p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount)
	}
	if len(p.Spec.Volumes) != 1 {
		t.Fatalf("volumes %+v, want the kube-api-access one", p.Spec.Volumes)
	}
	v := p.Spec.Volumes[0]
	if !strings.HasPrefix(v.Name, "kube-api-access-") || len(v.Name) != len("kube-api-access-")+5 {
		t.Errorf("volume name %q", v.Name)
	}
	wantSource := `{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},` +
		`{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},` +
		`{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}`
	if got := mustJSON(v.VolumeSource); got != `{"projected":`+wantSource+`}` {
		t.Errorf("volume source\n got %s\nwant {\"projected\":%s}", got, wantSource)
	}
	wantMount := corev1.VolumeMount{Name: v.Name, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if len(c.VolumeMounts) != 1 || mustJSON(c.VolumeMounts[0]) != mustJSON(wantMount) {
			t.Errorf("container %s mounts %+v, want %+v", c.Name, c.VolumeMounts, wantMount)
		}
	}

	// automountServiceAccountToken: the pod's word wins over the
	// service account's.
	no, yes := ptr.To(false), ptr.To(true)
	p, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("quiet", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = no }), metav1.CreateOptions{})
	if err != nil || len(p.Spec.Volumes) != 0 || len(p.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("pod with automountServiceAccountToken false: %v %+v", err, p.Spec.Volumes)
	}
	robot, err := cs.CoreV1().ServiceAccounts("team").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"},
		AutomountServiceAccountToken: no, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("r1", func(p *corev1.Pod) { p.Spec.ServiceAccountName = robot.Name }), metav1.CreateOptions{})
	if err != nil || len(p.Spec.Volumes) != 0 || !slices.Equal(p.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry"}}) {
		t.Errorf("pod of a service account without automount: %v %+v %+v", err, p.Spec.Volumes, p.Spec.ImagePullSecrets)
	}
	p, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("r2", func(p *corev1.Pod) {
		p.Spec.ServiceAccountName, p.Spec.AutomountServiceAccountToken = robot.Name, yes
		p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "mine"}}
	}), metav1.CreateOptions{})
	if err != nil || len(p.Spec.Volumes) != 1 || !slices.Equal(p.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "mine"}}) {
		t.Errorf("pod asking for the token of a service account without automount: %v %+v %+v", err, p.Spec.Volumes, p.Spec.ImagePullSecrets)
	}

	// A container with something at the path keeps it; the others get
	// the token.
	p, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("own", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "mine", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "mine", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Volumes) != 2 || len(p.Spec.Containers[0].VolumeMounts) != 1 || p.Spec.Containers[0].VolumeMounts[0].Name != "mine" ||
		len(p.Spec.Containers[1].VolumeMounts) != 1 || p.Spec.Containers[1].VolumeMounts[0].Name != p.Spec.Volumes[1].Name {
		t.Errorf("pod with its own mount there: %+v %+v", p.Spec.Volumes, p.Spec.Containers)
	}

	// Secrets a service account does not list, when it enforces them.
	if _, err := cs.CoreV1().ServiceAccounts("team").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "strict",
		Annotations: map[string]string{"kubernetes.io/enforce-mountable-secrets": "true"}}, Secrets: []corev1.ObjectReference{{Name: "ok"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods("team").Create(ctx, podSpec("strict", func(p *corev1.Pod) {
		p.Spec.ServiceAccountName = "strict"
		p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "other"}}}}
	}), metav1.CreateOptions{})
	if want := `pods "strict" is forbidden: volume with secret.secretName="other" is not allowed because service account strict does not reference that secret`; err == nil || err.Error() != want {
		t.Errorf("pod with a secret its service account does not list: %v, want %q", err, want)
	}

	// A pod with a generated name is named by its generateName, as
	// upstream's admission sees it.
	_, err = cs.CoreV1().Pods("team").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"},
		Spec: corev1.PodSpec{ServiceAccountName: "ghost", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}}, metav1.CreateOptions{})
	if want := `pods "web-" is forbidden: error looking up service account team/ghost: serviceaccount "ghost" not found`; err == nil || err.Error() != want {
		t.Errorf("generated name: %v, want %q", err, want)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
