package apiserver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"labctl/datastore"
)

// BenchmarkList lists 500 ConfigMaps through the API (bbolt store,
// client-go over HTTP) in JSON and protobuf:
//
//	go test ./server/apiserver -run '^$' -bench List
func BenchmarkList(b *testing.B) {
	ds, err := datastore.OpenBolt(filepath.Join(b.TempDir(), "state.db"), datastore.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	t := &testing.T{}
	cfg := start(t, ds)
	ctx := context.Background()
	for name, cs := range clients(t, cfg) {
		if name != "json" {
			continue
		}
		for i := 0; i < 500; i++ {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"key": strings.Repeat("v", 256)}}
			if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for name, cs := range clients(t, cfg) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				l, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
				if err != nil || len(l.Items) != 500 {
					b.Fatal(err)
				}
			}
		})
	}
}
