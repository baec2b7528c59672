package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"labctl/datastore"
	"labctl/server/apiserver"
)

// BenchmarkManagedFields measures server-side apply and what the
// managedFields bookkeeping adds to an ordinary update (PUT), through the
// handler alone (answering into a recorder) on a bbolt store without
// fsync, for a ConfigMap and a Deployment:
//
//   - update/managedFields: PUT changing one value, managedFields kept;
//   - update/none: the same with the bookkeeping off (objects without
//     managedFields, as before server-side apply);
//   - apply: PATCH application/apply-patch+yaml changing one value.
//
// The type converter is built before the timing starts (the first write
// builds it; BenchmarkTypeConverter in server/openapi measures that).
//
//	go test ./server/apiserver -run '^$' -bench ManagedFields -benchmem
func BenchmarkManagedFields(b *testing.B) {
	ds, err := datastore.OpenBolt(filepath.Join(b.TempDir(), "state.db"), datastore.Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api, err := apiserver.New(ctx, apiserver.Config{Store: ds})
	if err != nil {
		b.Fatal(err)
	}
	// do sends a request and returns the resourceVersion of the answer.
	do := func(b *testing.B, method, path, ctype, body string, want ...int) string {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("User-Agent", "bench/1.0")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if !slices.Contains(want, rec.Code) {
			b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		out := rec.Body.String()
		const key = `"resourceVersion":"`
		i := strings.Index(out, key)
		if i < 0 {
			b.Fatalf("no resourceVersion in %s", out)
		}
		out = out[i+len(key):]
		return out[:strings.IndexByte(out, '"')]
	}
	kinds := []struct {
		name, path string
		object     func(name, rv string, i int) string
	}{
		{"configmap", "/api/v1/namespaces/default/configmaps", func(name, rv string, i int) string {
			return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,%s"labels":{"app":"bench"}},"data":{"color":"blue","size":"L","count":"%d"}}`, name, rvField(rv), i)
		}},
		{"deployment", "/apis/apps/v1/namespaces/default/deployments", func(name, rv string, i int) string {
			return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,%s"labels":{"app":"bench"}},"spec":{"replicas":2,`+
				`"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":[`+
				`{"name":"app","image":"nginx:1.%d","ports":[{"containerPort":80,"name":"http"}],"env":[{"name":"A","value":"1"}],"resources":{"requests":{"cpu":"100m"}}},`+
				`{"name":"sidecar","image":"busybox","args":["sleep","3600"]}]}}}}`, name, rvField(rv), name, name, i)
		}},
	}
	for _, k := range kinds {
		for _, mode := range []string{"managedFields", "none"} {
			b.Run(k.name+"/update/"+mode, func(b *testing.B) {
				apiserver.SetManagedFields(api, mode == "managedFields")
				defer apiserver.SetManagedFields(api, true)
				name := fmt.Sprintf("update-%s-%d", strings.ToLower(mode), benchObjects.Add(1))
				rv := do(b, http.MethodPost, k.path, "application/json", k.object(name, "", 0), http.StatusCreated)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 1; i <= b.N; i++ {
					rv = do(b, http.MethodPut, k.path+"/"+name, "application/json", k.object(name, rv, i), http.StatusOK)
				}
			})
		}
		b.Run(k.name+"/apply", func(b *testing.B) {
			name := fmt.Sprintf("apply-%d", benchObjects.Add(1))
			do(b, http.MethodPatch, k.path+"/"+name+"?fieldManager=bench", "application/apply-patch+yaml", k.object(name, "", 0), http.StatusCreated)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 1; i <= b.N; i++ {
				do(b, http.MethodPatch, k.path+"/"+name+"?fieldManager=bench", "application/apply-patch+yaml", k.object(name, "", i), http.StatusOK)
			}
		})
	}
}

// benchObjects numbers the benchmarks' objects: each run makes its own.
var benchObjects atomic.Int64

// rvField is the resourceVersion member of an object's metadata, none for "".
func rvField(rv string) string {
	if rv == "" {
		return ""
	}
	return fmt.Sprintf(`"resourceVersion":%q,`, rv)
}
