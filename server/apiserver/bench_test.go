package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labctl/datastore"
	"labctl/server/apiserver"
)

// BenchmarkList lists 500 ConfigMaps on a bbolt store: "client-go/..."
// through client-go over HTTP (client decoding included), "server/..."
// the handler alone, answering into a recorder.
//
//	go test ./server/apiserver -run '^$' -bench List
func BenchmarkList(b *testing.B) {
	ds, err := datastore.OpenBolt(filepath.Join(b.TempDir(), "state.db"), datastore.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	ctx := context.Background()
	cs := clients(b, start(b, ds))
	for i := 0; i < 500; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"key": strings.Repeat("v", 256)}}
		if _, err := cs["json"].CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for name, c := range cs {
		b.Run("client-go/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				l, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
				if err != nil || len(l.Items) != 500 {
					b.Fatal(err)
				}
			}
		})
	}
	api, err := apiserver.New(ctx, apiserver.Config{Store: ds})
	if err != nil {
		b.Fatal(err)
	}
	for name, accept := range map[string]string{"json": "application/json", "protobuf": "application/vnd.kubernetes.protobuf"} {
		b.Run("server/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/default/configmaps", nil)
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
