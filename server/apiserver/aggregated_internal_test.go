package apiserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestAggregatedDiscoveryCustomResourceKinds: a custom resource (a kind
// the scheme does not know, put straight into the registry as crd.go does)
// has its group and version named in its responseKinds, as
// apiextensions-apiserver's discovery has them, while built-in resources
// keep kube-apiserver's empty ones.
func TestAggregatedDiscoveryCustomResourceKinds(t *testing.T) {
	s := newServer(t)
	if err := s.reg.add(&Resource{GVK: schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"},
		Plural: "crontabs", Singular: "crontab", ShortNames: []string{"ct"}, Namespaced: true, Subresources: []string{"status", "scale"}}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/apis", nil)
	req.Header.Set("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var doc apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /apis: %d %v", rec.Code, err)
	}
	resources := map[string]apidiscoveryv2.APIResourceDiscovery{}
	for _, g := range doc.Items {
		for _, r := range g.Versions[0].Resources {
			resources[g.Name+"/"+r.Resource] = r
		}
	}
	want := apidiscoveryv2.APIResourceDiscovery{
		Resource: "crontabs", SingularResource: "crontab", Scope: apidiscoveryv2.ScopeNamespace,
		ResponseKind: &metav1.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"},
		Verbs:        defaultVerbs, ShortNames: []string{"ct"},
		Subresources: []apidiscoveryv2.APISubresourceDiscovery{
			{Subresource: "scale", ResponseKind: &metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, Verbs: []string{"get", "patch", "update"}},
			{Subresource: "status", ResponseKind: &metav1.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"}, Verbs: []string{"get", "patch", "update"}},
		},
	}
	if got := resources["stable.example.com/crontabs"]; !reflect.DeepEqual(got, want) {
		t.Errorf("the custom resource:\n got %+v\nwant %+v", got, want)
	}
	if got := resources["apps/deployments"].ResponseKind; got == nil || *got != (metav1.GroupVersionKind{Kind: "Deployment"}) {
		t.Errorf("deployments' responseKind %+v, want the kind alone", got)
	}
}

// BenchmarkAggregatedDocumentBuild is the part of serving /apis that a
// cache of the document would save besides the encoding: building it
// from the registry.
//
//	go test ./server/apiserver -run '^$' -bench AggregatedDocumentBuild -benchmem
func BenchmarkAggregatedDocumentBuild(b *testing.B) {
	s := newServer(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if len(s.aggregatedGroups(false)) == 0 {
			b.Fatal("no groups")
		}
	}
}
