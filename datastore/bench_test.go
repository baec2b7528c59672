package datastore_test

// Benchmarks for BENCHMARKS.md. All use the bbolt store with fsync on
// (durable) in a temporary directory, unless the name says otherwise:
//
//	go test ./datastore -run '^$' -bench . -benchtime 5s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"labctl/datastore"
)

func openBench(b *testing.B, cfg datastore.Config) (datastore.Interface, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := datastore.OpenBolt(path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, path
}

// parallel runs n ops spread over exactly c goroutines, goroutine g
// running worker(g) on each op number it takes, and reports ops/s.
func parallel(b *testing.B, c int, n int64, worker func(g int) func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < c; g++ {
		wg.Add(1)
		fn := worker(g)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "ops/s")
}

func BenchmarkCreateDurable(b *testing.B) {
	value := make([]byte, 1024)
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			s, _ := openBench(b, datastore.Config{})
			ctx := context.Background()
			parallel(b, c, int64(b.N), func(int) func(int64) error {
				return func(i int64) error {
					_, err := s.Create(ctx, fmt.Sprintf("/registry/configmaps/default/cm-%d", i), value, 0)
					return err
				}
			})
		})
	}
}

func BenchmarkUpdateCompareAndSwap(b *testing.B) {
	value := make([]byte, 1024)
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			s, _ := openBench(b, datastore.Config{})
			ctx := context.Background()
			revs := make([]int64, c)
			for k := range revs {
				var err error
				if revs[k], err = s.Create(ctx, fmt.Sprintf("/cas/%d", k), value, 0); err != nil {
					b.Fatal(err)
				}
			}
			// Each goroutine owns one key and swaps on the revision it
			// last saw, as the API server's GuaranteedUpdate does.
			parallel(b, c, int64(b.N), func(g int) func(int64) error {
				key, rev := fmt.Sprintf("/cas/%d", g), revs[g]
				return func(int64) error {
					r, _, err := s.Update(ctx, key, value, rev, 0)
					rev = r
					return err
				}
			})
		})
	}
}

func BenchmarkList10000x1KiB(b *testing.B) {
	s, _ := openBench(b, datastore.Config{NoSync: true}) // loading only; List reads
	ctx := context.Background()
	value := make([]byte, 1024)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 10000; i += 16 {
				if _, err := s.Create(ctx, fmt.Sprintf("/registry/pods/default/pod-%05d", i), value, 0); err != nil {
					b.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	s.Create(ctx, "/registry/services/x", value, 0) // a key outside the prefix
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := s.List(ctx, "/registry/pods/", datastore.ListOptions{})
		if err != nil || len(res.KVs) != 10000 {
			b.Fatalf("listed %d keys, %v", len(res.KVs), err)
		}
	}
}

// BenchmarkWatchLatency: one op is one create and its delivery to every
// watcher; ns/op is the time from the call to Create until the last
// watcher has the event. With fsync=off the commit costs no disk wait, so
// what remains is the delivery itself.
func BenchmarkWatchLatency(b *testing.B) {
	for _, bc := range []struct {
		watchers int
		noSync   bool
	}{{1, false}, {1000, false}, {1, true}, {1000, true}} {
		n := bc.watchers
		b.Run(fmt.Sprintf("watchers=%d/fsync=%v", n, !bc.noSync), func(b *testing.B) {
			s, _ := openBench(b, datastore.Config{NoSync: bc.noSync})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got sync.WaitGroup
			for w := 0; w < n; w++ {
				ch, err := s.Watch(ctx, "/w/", 0)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					for resp := range ch {
						for range resp.Events {
							got.Done()
						}
					}
				}()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got.Add(n)
				if _, err := s.Create(ctx, fmt.Sprintf("/w/%d", i), []byte("x"), 0); err != nil {
					b.Fatal(err)
				}
				got.Wait()
			}
		})
	}
}

// BenchmarkChurnFileSize makes 100,000 updates of the same keys (1 KiB
// values, 16 writers) with background compaction at the default settings
// (maxHistory=0), or with a fixed history cap, and reports the file size
// against the live data (keys and values). Run it with -benchtime 1x.
func BenchmarkChurnFileSize(b *testing.B) {
	const updates, size = 100000, 1024
	for _, bc := range []struct {
		keys       int
		maxHistory int64
	}{{1000, 0}, {10000, 0}, {1000, 1000}} {
		b.Run(fmt.Sprintf("keys=%d/maxHistory=%d", bc.keys, bc.maxHistory), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s, path := openBench(b, datastore.Config{MaxHistory: bc.maxHistory})
				ctx := context.Background()
				value := make([]byte, size)
				key := func(n int64) string {
					return fmt.Sprintf("/registry/leases/kube-node-lease/node-%05d", n%int64(bc.keys))
				}
				live := 0
				for k := 0; k < bc.keys; k++ {
					if _, err := s.Create(ctx, key(int64(k)), value, 0); err != nil {
						b.Fatal(err)
					}
					live += len(key(int64(k))) + size
				}
				parallel(b, 16, updates, func(int) func(int64) error {
					return func(n int64) error {
						_, _, err := s.Update(ctx, key(n), value, 0, 0)
						return err
					}
				})
				time.Sleep(200 * time.Millisecond) // let the last compaction finish
				st, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
				b.ReportMetric(float64(live)/(1<<20), "live-MiB")
				b.ReportMetric(float64(st.Size())/float64(live), "file/live")
				s.Close()
			}
		})
	}
}
