package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Aggregated discovery: kubectl reads every group, version and resource
// from /api and /apis alone, in the version its client-go asks for
// (apidiscovery.k8s.io/v2beta1 for kubectl 1.27 to 1.29, v2 from 1.30),
// revalidates its HTTP cache with the documents' ETags, and sees custom
// resources come and go.

const (
	aggregatedV2      = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
	aggregatedV2Beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
)

// aggregatedFor is the Content-Type kubectl of minor version minor must
// get for /api and /apis.
func aggregatedFor(minor int) string {
	if minor < 30 {
		return aggregatedV2Beta1
	}
	return aggregatedV2
}

// requestURL finds a request in kubectl's -v=6 (or higher) log:
// "GET https://host/path?query" up to kubectl 1.30,
// `verb="GET" url="https://host/path?query"` since.
var requestURL = regexp.MustCompile(`(?:GET|POST|PUT|PATCH|DELETE) https://[^/\s]+(/[^?\s]*)|verb="[A-Z]+" url="https://[^/"]+(/[^?"]*)`)

// requestedPaths are the paths kubectl requested, in order.
func requestedPaths(stderr string) []string {
	var out []string
	for _, m := range requestURL.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1]+m[2])
	}
	return out
}

// groupVersionPath matches legacy discovery's per-group-version
// documents: /api/v1, /apis/<group>/<version>.
var groupVersionPath = regexp.MustCompile(`^/api/v1$|^/apis/[^/]+/[^/]+$`)

// onlyAggregatedDiscovery checks that kubectl discovered through /api and
// /apis alone: both requested, and no per-group-version document.
func onlyAggregatedDiscovery(t *testing.T, r result) {
	t.Helper()
	paths := requestedPaths(r.stderr)
	var api, apis bool
	for _, p := range paths {
		switch {
		case p == "/api":
			api = true
		case p == "/apis":
			apis = true
		case groupVersionPath.MatchString(p):
			t.Errorf("kubectl read %s: want aggregated discovery (only /api and /apis)\n%s", p, r)
		}
	}
	if !api || !apis {
		t.Errorf("want kubectl to request /api and /apis, got %v\n%s", paths, r)
	}
}

// contentTypeHeader finds a Content-Type header in kubectl's -v=8 log.
var contentTypeHeader = regexp.MustCompile(`(?m)^\s*(?:I\S+\s+\S+\s+\S+\s+round_trippers\.go:\d+\]\s+)?Content-Type: (\S+)`)

func TestAggregatedDiscovery(t *testing.T) {
	c := startCluster(t)
	t.Run("http", func(t *testing.T) { aggregatedOverHTTP(t, c) })
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		want := aggregatedFor(k.minor)
		t.Run("api-resources", func(t *testing.T) {
			cache := t.TempDir()
			r := k.run(t, "--cache-dir", cache, "api-resources", "-o", "wide", "-v=8")
			headerCells(t, r, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES")
			verbs := "create,delete,deletecollection,get,list,patch,update,watch"
			row(t, r, "pods", "po", "v1", "true", "Pod", verbs, "all")
			row(t, r, "namespaces", "ns", "v1", "false", "Namespace", verbs)
			row(t, r, "deployments", "deploy", "apps/v1", "true", "Deployment", verbs, "all")
			row(t, r, "horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler", verbs, "all")
			row(t, r, "clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole", verbs)
			row(t, r, "selfsubjectaccessreviews", "authorization.k8s.io/v1", "false", "SelfSubjectAccessReview", "create")
			onlyAggregatedDiscovery(t, r)
			var types []string
			for _, m := range contentTypeHeader.FindAllStringSubmatch(r.stderr, -1) {
				types = append(types, m[1])
			}
			if len(types) != 2 || types[0] != want || types[1] != want {
				t.Errorf("want /api and /apis answered with Content-Type %s, got %q\n%s", want, types, r)
			}

			// Without the discovery cache, kubectl's HTTP cache sends the
			// ETags back; the server's 304s come out of the cache marked
			// X-From-Cache (a 200 would not be).
			if err := os.RemoveAll(filepath.Join(cache, "discovery")); err != nil {
				t.Fatal(err)
			}
			r = k.run(t, "--cache-dir", cache, "api-resources", "-v=8")
			row(t, r, "deployments", "deploy", "apps/v1", "true", "Deployment")
			onlyAggregatedDiscovery(t, r)
			if n := strings.Count(r.stderr, "X-From-Cache: 1"); n != 2 {
				t.Errorf("want /api and /apis revalidated from kubectl's HTTP cache (X-From-Cache: 1 twice), got %d\n%s", n, r)
			}
		})
		t.Run("get", func(t *testing.T) {
			ns := newNamespace(t, k, nsFor("aggregated", k))
			must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
			must(t, k, "-n", ns, "create", "cm", "cfg", "--from-literal=a=b")
			must(t, k, "-n", ns, "create", "svc", "clusterip", "web", "--tcp=80:8080")
			// Short names, kinds and categories come from the aggregated
			// document: a fresh cache each time, so kubectl discovers.
			r := k.run(t, "--cache-dir", t.TempDir(), "-n", ns, "get", "deploy,cm,svc", "-v=6")
			row(t, r, "deployment.apps/web", "0/1", "*", "0", age)
			row(t, r, "configmap/cfg", "1", age)
			row(t, r, "service/web", "ClusterIP", "*", "<none>", "80/TCP", age)
			onlyAggregatedDiscovery(t, r)
			r = k.run(t, "--cache-dir", t.TempDir(), "-n", ns, "get", "all", "-o", "name", "-v=6")
			okWith(t, r, "deployment.apps/web\n", "service/web\n")
			if strings.Contains(r.stdout, "configmap") {
				t.Errorf("configmaps are not in the category all\n%s", r)
			}
			onlyAggregatedDiscovery(t, r)
			r = k.run(t, "--cache-dir", t.TempDir(), "get", "ns", ns, "-o", "jsonpath={.metadata.name}", "-v=6")
			equals(t, r, ns)
			onlyAggregatedDiscovery(t, r)
			r = k.run(t, "--cache-dir", t.TempDir(), "get", "clusterroles.rbac.authorization.k8s.io", "-v=6")
			ok(t, r)
			onlyAggregatedDiscovery(t, r)
		})
		t.Run("custom-resource", func(t *testing.T) { aggregatedCustomResource(t, c, k) })
	})
}

// aggregatedCustomResource checks that the documents follow the registry
// while the server runs: a CustomResourceDefinition's resource appears in
// /apis (with its group and version in its responseKind, as
// apiextensions-apiserver has it) and kubectl finds it by its short name
// through aggregated discovery; once the CRD is deleted, its group is gone.
// Each kubectl version has a group of its own (they run in parallel).
func aggregatedCustomResource(t *testing.T, c *cluster, k *kubectl) {
	if r := k.run(t, "api-resources", "--api-group=apiextensions.k8s.io", "-o", "name"); !strings.Contains(r.stdout, "customresourcedefinitions") {
		t.Fatalf("the server does not serve CustomResourceDefinitions\n%s", r)
	}
	group := fmt.Sprintf("aggregated%d.example.com", k.minor)
	short := fmt.Sprintf("agw%d", k.minor)
	crd := "widgets." + group
	manifest := writeFile(t, t.TempDir(), "crd.yaml", fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %s
spec:
  group: %s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [%s]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, crd, group, short))
	must(t, k, "apply", "-f", manifest)
	t.Cleanup(func() { k.run(t, "delete", "crd", crd, "--ignore-not-found") })

	// kubectl with an empty cache each time, so that it discovers anew.
	fresh := func(check func(result) bool, args ...string) result {
		var r result
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			r = k.run(t, append([]string{"--cache-dir", t.TempDir()}, args...)...)
			if check(r) || time.Now().After(deadline) {
				return r
			}
		}
	}
	r := fresh(func(r result) bool { return r.code == 0 }, "get", short, "-v=6")
	if ok(t, r) {
		onlyAggregatedDiscovery(t, r)
	}
	kinds := aggregatedKinds(t, c, group)
	want := group + "/v1/Widget"
	if kinds["widgets"] != want || kinds["widgets/status"] != want {
		t.Errorf("/apis: the custom resource's responseKinds %v, want %s for widgets and widgets/status", kinds, want)
	}

	must(t, k, "delete", "crd", crd)
	r = fresh(func(r result) bool { return r.code != 0 }, "get", short)
	fails(t, r, fmt.Sprintf(`the server doesn't have a resource type %q`, short))
	if kinds := aggregatedKinds(t, c, group); kinds != nil {
		t.Errorf("/apis still has %s after the CRD's deletion: %v", group, kinds)
	}
}

// aggregatedKinds returns the responseKinds (group/version/kind) of group's
// resources and subresources in the v2 document at /apis, by name; nil
// when /apis does not list the group.
func aggregatedKinds(t *testing.T, c *cluster, group string) map[string]string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+c.addr+"/apis", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", aggregatedV2)
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type kind struct{ Group, Version, Kind string }
	var doc struct {
		Items []struct {
			Metadata struct{ Name string }
			Versions []struct {
				Resources []struct {
					Resource     string
					ResponseKind kind
					Subresources []struct {
						Subresource  string
						ResponseKind kind
					}
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("GET /apis: %v", err)
	}
	str := func(k kind) string { return k.Group + "/" + k.Version + "/" + k.Kind }
	for _, g := range doc.Items {
		if g.Metadata.Name != group {
			continue
		}
		out := map[string]string{}
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				out[r.Resource] = str(r.ResponseKind)
				for _, s := range r.Subresources {
					out[r.Resource+"/"+s.Subresource] = str(s.ResponseKind)
				}
			}
		}
		return out
	}
	return nil
}

// aggregatedOverHTTP checks the server's answers themselves: the aggregated
// document by Accept in both versions and in protobuf, with Vary and an
// ETag that If-None-Match turns into 304, and legacy discovery unchanged
// for a plain Accept.
func aggregatedOverHTTP(t *testing.T, c *cluster) {
	do := func(path, accept, etag string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "https://"+c.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", accept)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	type doc struct {
		Kind, APIVersion string
		Items            []struct {
			Metadata struct{ Name string }
			Versions []struct {
				Version, Freshness string
				Resources          []struct {
					Resource, Scope string
					Subresources    []struct{ Subresource string }
				}
			}
		}
	}
	for _, tc := range []struct{ path, accept, contentType, apiVersion string }{
		{"/api", aggregatedV2 + ",application/json", aggregatedV2, "apidiscovery.k8s.io/v2"},
		{"/apis", aggregatedV2 + ",application/json", aggregatedV2, "apidiscovery.k8s.io/v2"},
		{"/apis", aggregatedV2Beta1 + ",application/json", aggregatedV2Beta1, "apidiscovery.k8s.io/v2beta1"},
	} {
		resp, body := do(tc.path, tc.accept, "")
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.contentType || resp.Header.Get("Vary") != "Accept" || etag == "" {
			t.Errorf("GET %s (Accept %s): %d Content-Type %q Vary %q ETag %q", tc.path, tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Vary"), etag)
			continue
		}
		var d doc
		if err := json.Unmarshal(body, &d); err != nil || d.Kind != "APIGroupDiscoveryList" || d.APIVersion != tc.apiVersion {
			t.Errorf("GET %s: %v, kind %q apiVersion %q", tc.path, err, d.Kind, d.APIVersion)
		}
		var groups, subs []string
		for _, g := range d.Items {
			groups = append(groups, g.Metadata.Name)
			for _, v := range g.Versions {
				if v.Freshness != "Current" {
					t.Errorf("%s/%s: freshness %q", g.Metadata.Name, v.Version, v.Freshness)
				}
				for _, r := range v.Resources {
					if r.Resource == "pods" {
						for _, s := range r.Subresources {
							subs = append(subs, s.Subresource)
						}
					}
				}
			}
		}
		if tc.path == "/api" {
			sort.Strings(subs)
			if len(groups) != 1 || groups[0] != "" || strings.Join(subs, ",") != "attach,binding,eviction,exec,log,portforward,status" {
				t.Errorf("/api: groups %q, pods' subresources %q", groups, subs)
			}
		} else if len(groups) < 10 || groups[0] == "" {
			t.Errorf("/apis: groups %q", groups)
		}
		if resp, body := do(tc.path, tc.accept, etag); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("GET %s with If-None-Match %s: %d, %d bytes; want 304 Not Modified", tc.path, etag, resp.StatusCode, len(body))
		}
	}
	resp, body := do("/apis", "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" || !bytes.HasPrefix(body, []byte("k8s\x00")) {
		t.Errorf("protobuf /apis: %d %q %q", resp.StatusCode, ct, body[:min(len(body), 16)])
	}
	for path, kind := range map[string]string{"/api": "APIVersions", "/apis": "APIGroupList"} {
		resp, body := do(path, "application/json, */*", "")
		var tm struct{ Kind string }
		_ = json.Unmarshal(body, &tm)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || tm.Kind != kind || resp.Header.Get("ETag") != "" {
			t.Errorf("legacy %s: %d %q kind %q ETag %q, want 200 application/json %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), tm.Kind, resp.Header.Get("ETag"), kind)
		}
	}
}
