package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestKubectl runs real kubectl binaries against the documents, with a
// stand-in for the rest of the API server (discovery, and create that
// echoes the object). It runs only when OPENAPI_KUBECTL lists kubectl
// binaries, comma-separated, e.g.
//
//	OPENAPI_KUBECTL=$(ls -d /usr/lib/google-cloud-sdk/bin/kubectl.1.* | paste -sd,) go test -run TestKubectl -v ./server/openapi
func TestKubectl(t *testing.T) {
	env := os.Getenv("OPENAPI_KUBECTL")
	if env == "" {
		t.Skip("OPENAPI_KUBECTL not set")
	}
	s, err := New(kubeResources(), scheme.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeAPIServer{resources: kubeResources()}
	mux := http.NewServeMux()
	s.Register(mux)
	mux.Handle("/", fake)
	var seen sync.Map
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/openapi/") {
			seen.Store(r.UserAgent()+" "+r.URL.Path+" "+r.Header.Get("Accept"), true)
		}
		mux.ServeHTTP(w, r)
	}))
	defer ts.Close()
	defer seen.Range(func(k, _ interface{}) bool { t.Log(k); return true })

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+ts.URL+`"}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`)
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
`)
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, strings.Replace(readFile(t, good), "image: nginx", "image: nginx, imagePullPolicyy: Always", 1))

	for _, bin := range strings.Split(env, ",") {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			cache := t.TempDir()
			run := func(args ...string) (string, error) {
				args = append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cache}, args...)
				out, err := exec.Command(bin, args...).CombinedOutput()
				return string(out), err
			}
			for _, c := range []struct{ args, want []string }{
				{[]string{"explain", "deployment.spec.replicas"}, []string{"replicas", "integer"}},
				{[]string{"explain", "pods.spec.containers.image"}, []string{"image", "string"}},
				{[]string{"explain", "nodes", "--api-version=v1"}, []string{"KIND:", "Node"}},
				// explain through /openapi/v2, as kubectl 1.26 and older did.
				{[]string{"explain", "deployment.spec.strategy", "--output=plaintext-openapiv2"}, []string{"strategy", "DeploymentStrategy"}},
			} {
				out, err := run(c.args...)
				for _, w := range c.want {
					if err != nil || !strings.Contains(out, w) {
						t.Errorf("kubectl %s: %v\n%s", strings.Join(c.args, " "), err, out)
						break
					}
				}
			}

			fake.reset()
			if out, err := run("create", "-f", good); err != nil {
				t.Errorf("create valid: %v\n%s", err, out)
			}
			t.Logf("create valid: fieldValidation=%q", fake.fieldValidation())

			fake.reset()
			out, err := run("apply", "-f", bad)
			switch fv := fake.fieldValidation(); {
			case err != nil && strings.Contains(out, "imagePullPolicyy"):
				t.Logf("apply invalid: rejected by client-side validation: %s", strings.TrimSpace(out))
			case err == nil && fv == "Strict":
				t.Logf("apply invalid: left to the server with fieldValidation=Strict")
			default:
				t.Errorf("apply invalid: err %v, fieldValidation %q\n%s", err, fv, out)
			}
		})
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeAPIServer serves legacy discovery for resources, 404 on GET of
// objects and echoes created objects, recording the fieldValidation
// parameter of writes.
type fakeAPIServer struct {
	resources []Resource
	mu        sync.Mutex
	fv        []string
}

func (f *fakeAPIServer) reset() { f.mu.Lock(); f.fv = nil; f.mu.Unlock() }

func (f *fakeAPIServer) fieldValidation() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.fv, ",")
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write := func(code int, v interface{}) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	gvs := map[schema.GroupVersion][]metav1.APIResource{}
	for _, res := range f.resources {
		gv := res.GVK.GroupVersion()
		gvs[gv] = append(gvs[gv], metav1.APIResource{Name: res.Plural, Namespaced: res.Namespaced, Kind: res.GVK.Kind, Verbs: res.Verbs})
		for _, sub := range res.Subresources {
			gvs[gv] = append(gvs[gv], metav1.APIResource{Name: res.Plural + "/" + sub, Namespaced: res.Namespaced, Kind: res.GVK.Kind, Verbs: []string{"get"}})
		}
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/version":
		write(200, map[string]string{"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
	case p == "/api":
		write(200, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
	case p == "/apis":
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		groups := map[string]*metav1.APIGroup{}
		for gv := range gvs {
			if gv.Group == "" {
				continue
			}
			g := groups[gv.Group]
			if g == nil {
				g = &metav1.APIGroup{Name: gv.Group}
				groups[gv.Group] = g
			}
			v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
			g.Versions = append(g.Versions, v)
			if g.PreferredVersion.Version == "" || v.Version < g.PreferredVersion.Version {
				g.PreferredVersion = v
			}
		}
		for _, g := range groups {
			list.Groups = append(list.Groups, *g)
		}
		write(200, list)
	case r.Method == "GET":
		for gv, res := range gvs {
			if p == "/"+gvPath(gv) {
				write(200, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String(), APIResources: res})
				return
			}
		}
		write(404, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: 404, Message: "not found"})
	case r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH":
		f.mu.Lock()
		f.fv = append(f.fv, r.URL.Query().Get("fieldValidation"))
		f.mu.Unlock()
		var obj map[string]interface{}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &obj); err != nil {
			write(400, metav1.Status{Status: "Failure", Code: 400, Message: err.Error()})
			return
		}
		if md, ok := obj["metadata"].(map[string]interface{}); ok {
			md["uid"], md["resourceVersion"], md["namespace"] = "1", "1", "default"
		}
		write(201, obj)
	default:
		write(405, metav1.Status{Status: "Failure", Code: 405})
	}
}
