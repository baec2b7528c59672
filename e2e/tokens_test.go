package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// tokenKubeconfig writes a kubeconfig for the cluster that carries no
// credentials of its own, for `kubectl --token`: with the admin
// kubeconfig's client certificate beside the token, the certificate
// would authenticate, as it does against kube-apiserver.
func tokenKubeconfig(t *testing.T, c *cluster) string {
	t.Helper()
	data, err := os.ReadFile(c.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeconfigFile
	if err := yaml.Unmarshal(data, &kc); err != nil || len(kc.Clusters) == 0 {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	cl := kc.Clusters[0].Cluster
	return writeFile(t, t.TempDir(), "token.kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: labctl
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: token
  user: {}
contexts:
- name: token
  context:
    cluster: labctl
    user: token
current-context: token
`, cl.Server, cl.CA))
}

// jwtClaims decodes the payload of a compact JWT, or fails t.
func jwtClaims(t *testing.T, r result, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("want a JWT (three dot-separated parts), got %q\n%s", token, r)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &claims)
	}
	if err != nil {
		t.Fatalf("JWT payload: %v\n%s", err, r)
	}
	return claims
}

func TestServiceAccountTokens(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		// The service account controller makes default/default soon
		// after the server starts.
		eventuallyRun(t, k, func(r result) bool { return r.code == 0 }, "get", "serviceaccount", "default")
		tokenConfig := tokenKubeconfig(t, c)
		var token string
		t.Run("create-token", func(t *testing.T) {
			r := k.run(t, "create", "token", "default")
			if !ok(t, r) {
				t.FailNow()
			}
			token = strings.TrimSpace(r.stdout)
			claims := jwtClaims(t, r, token)
			if claims["sub"] != "system:serviceaccount:default:default" || claims["iss"] != "https://kubernetes.default.svc.cluster.local" {
				t.Errorf("token claims %v\n%s", claims, r)
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
				t.Errorf("token valid for %v s, want 3600\n%s", exp-iat, r)
			}
			fails(t, k.run(t, "create", "token", "default", "--duration=1m"),
				`spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes`)
			fails(t, k.run(t, "create", "token", "nobody"), `serviceaccounts "nobody" not found`)
		})
		if token == "" {
			return
		}
		// The last --kubeconfig wins over the harness's.
		withToken := func(args ...string) []string {
			return append([]string{"--kubeconfig", tokenConfig, "--token", token}, args...)
		}
		t.Run("forbidden", func(t *testing.T) {
			// No RBAC yet: the service account may do nothing, and hears
			// so in upstream's words.
			fails(t, k.run(t, withToken("get", "pods")...),
				`Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default"`)
		})
		t.Run("whoami", func(t *testing.T) {
			if k.minor < 28 {
				// 1.27's whoami asks for authentication.k8s.io v1alpha1 or
				// v1beta1, which current servers (labctl's too) no longer serve.
				t.Skip("kubectl auth whoami needs authentication.k8s.io/v1 (kubectl 1.28+)")
			}
			r := k.run(t, withToken("auth", "whoami")...)
			if okWith(t, r, "system:serviceaccount:default:default", "[system:serviceaccounts system:serviceaccounts:default system:authenticated]") {
				if !regexp.MustCompile(`(?m)^Extra: authentication\.kubernetes\.io/credential-id\s+\[JTI=[0-9a-f-]{36}\]$`).MatchString(r.stdout) {
					t.Errorf("want the token's JTI as its credential id\n%s", r)
				}
			}
		})
		t.Run("bad-token", func(t *testing.T) {
			fails(t, k.run(t, "--kubeconfig", tokenConfig, "--token", token+"x", "get", "pods"),
				"error: You must be logged in to the server (Unauthorized)")
		})
		t.Run("pod-volume", func(t *testing.T) {
			// The ServiceAccount admission plugin mounts the token in the
			// pod, as `kubectl get pod -o yaml` shows upstream.
			ns := newNamespace(t, k, nsFor("tokens", k))
			okWith(t, k.run(t, "-n", ns, "run", "bb", "--image=busybox"), "pod/bb created")
			r := k.run(t, "-n", ns, "get", "pod", "bb", "-o", "json")
			obj, good := decodeJSON(t, r)
			if !good {
				return
			}
			fieldIs(t, r, obj, "spec.serviceAccountName", "default")
			fieldIs(t, r, obj, "spec.serviceAccount", "default")
			fieldIs(t, r, obj, "spec.containers.0.volumeMounts.0.mountPath", "/var/run/secrets/kubernetes.io/serviceaccount")
			fieldIs(t, r, obj, "spec.containers.0.volumeMounts.0.readOnly", "true")
			fieldIs(t, r, obj, "spec.volumes.0.projected.defaultMode", "420")
			fieldIs(t, r, obj, "spec.volumes.0.projected.sources.0.serviceAccountToken.expirationSeconds", "3607")
			fieldIs(t, r, obj, "spec.volumes.0.projected.sources.1.configMap.name", "kube-root-ca.crt")
			fieldIs(t, r, obj, "spec.volumes.0.projected.sources.2.downwardAPI.items.0.fieldRef.fieldPath", "metadata.namespace")
			if name, _ := field(obj, "spec.volumes.0.name"); !regexp.MustCompile(`^kube-api-access-[a-z0-9]{5}$`).MatchString(fmt.Sprint(name)) {
				t.Errorf("want the volume kube-api-access-<5 characters>, got %v\n%s", name, r)
			}
			fails(t, k.run(t, "-n", ns, "run", "x", "--image=busybox", `--overrides={"spec":{"serviceAccountName":"nope"}}`),
				`pods "x" is forbidden: error looking up service account `+ns+`/nope: serviceaccount "nope" not found`)
		})
		t.Run("legacy-secret", func(t *testing.T) {
			ns := nsFor("tokens", k)
			must(t, k, "-n", ns, "create", "serviceaccount", "robot")
			dir := t.TempDir()
			path := writeFile(t, dir, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: robot-token\n  annotations:\n    kubernetes.io/service-account.name: robot\ntype: kubernetes.io/service-account-token\n")
			okWith(t, k.run(t, "-n", ns, "apply", "-f", path), "secret/robot-token created")
			r := eventuallyRun(t, k, func(r result) bool { return r.code == 0 && strings.TrimSpace(r.stdout) != "" },
				"-n", ns, "get", "secret", "robot-token", "-o", "jsonpath={.data.token}")
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
			if err != nil {
				t.Fatalf("the secret's token: %v\n%s", err, r)
			}
			legacy := string(raw)
			if claims := jwtClaims(t, r, legacy); claims["iss"] != "kubernetes/serviceaccount" {
				t.Errorf("legacy token claims %v", claims)
			}
			fails(t, k.run(t, "--kubeconfig", tokenConfig, "--token", legacy, "-n", ns, "get", "configmaps"),
				`configmaps is forbidden: User "system:serviceaccount:`+ns+`:robot" cannot list resource "configmaps" in API group "" in the namespace "`+ns+`"`)
		})
	})
}
