package apiserver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"labctl/datastore"
)

// BenchmarkCRDServed measures, on a bbolt store through client-go, the
// time from creating a CRD (crontabCRD's, two versions with a schema) to
// its resource answering a list, polling every 100 µs; then the CRD is
// deleted. BENCHMARKS.md reports it as "CRD created to served".
//
//	go test ./server/apiserver -run '^$' -bench CRDServed -benchtime 50x
func BenchmarkCRDServed(b *testing.B) {
	ds, err := datastore.OpenBolt(filepath.Join(b.TempDir(), "state.db"), datastore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	cfg := start(b, ds)
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		crd := crontabCRD(apiextensionsv1.NamespaceScoped)
		group := fmt.Sprintf("g%d.example.com", i)
		crd.Name, crd.Spec.Group = "crontabs."+group, group
		started := time.Now()
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "crontabs"}
		for {
			if _, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{}); err == nil {
				break
			}
			if time.Since(started) > 10*time.Second {
				b.Fatalf("%s not served after 10 s", gvr)
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
